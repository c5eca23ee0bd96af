"""Storage within a budget (issue 14 point 4): gc, pin lifetimes, the cache quota with
least-recently-used eviction, teacher pins, and what `pins` says each reason costs."""

from __future__ import annotations

import os
import random
from pathlib import Path

from conftest import block_digests

MiB = 1024 * 1024


def _src(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    d = tmp_path / f"src-{name}"
    d.mkdir()
    for n, data in files.items():
        (d / n).write_bytes(data)
    return d


def _blob(seed: int, n: int = MiB) -> bytes:
    return random.Random(seed).randbytes(n)


def _cids(r: dict) -> dict[str, str]:
    return {f["path"]: f["cid"] for f in r["files"]}


def test_gc_frees_what_a_retract_left_and_keeps_the_rest(cli, home, tmp_path):
    shared = _blob(1)
    a = cli.json("publish", str(_src(tmp_path, "a", {"shared.bin": shared,
                                                     "a.bin": _blob(2)})), "--title", "A")
    b = cli.json("publish", str(_src(tmp_path, "b", {"shared.bin": shared,
                                                     "b.bin": _blob(3)})), "--title", "B")
    assert cli.json("gc", "--dry-run")["blocks_deleted"] == 0
    cli.json("retract", a["resource_id"])
    before = cli.state()
    costs = cli.json("pins")["costs"]
    plan = cli.json("gc", "--dry-run")
    assert cli.state() == before                      # a dry run deletes nothing
    assert plan["bytes_freed"] == costs["gc_would_free"]["bytes"]
    assert MiB <= plan["bytes_freed"] < MiB + 4096    # a.bin and A's folder node
    done = cli.json("gc")
    assert done["blocks_deleted"] == plan["blocks_deleted"]
    assert done["bytes_freed"] == plan["bytes_freed"]
    left = block_digests(home)
    assert _cids(a)["a.bin"] not in left and a["content_cid"] not in left
    assert _cids(b)["shared.bin"] in left and _cids(b)["b.bin"] in left
    assert cli.json("verify")["ok"] and cli.json("verify")["incomplete"] == []
    cli.ok("get", b["resource_id"], "-o", tmp_path / "out")
    assert (tmp_path / "out" / "shared.bin").read_bytes() == shared
    assert cli.json("gc")["blocks_deleted"] == 0      # nothing more to do


def test_gc_removes_stale_temporary_files_but_not_a_running_writers(cli, home):
    tmp = home / "blocks" / "tmp"
    stale = tmp / "bafkstale.4194305.tmp"            # above pid_max: no such writer runs
    stale.write_bytes(b"partial")
    mine = tmp / f"bafkmine.{os.getpid()}.tmp"        # this process is alive
    mine.write_bytes(b"partial")
    assert cli.json("gc")["temp_files_removed"] == 1
    assert not stale.exists() and mine.exists()
    mine.unlink()


def test_an_update_drops_the_old_versions_own_pin_when_no_seed_must_be_waited_for(
        cli, home, tmp_path):
    r = cli.json("publish", str(_src(tmp_path, "v1", {"x.bin": _blob(4)})), "--title", "V")
    cli.json("update", r["resource_id"], str(_src(tmp_path, "v2", {"x.bin": _blob(5)})))
    own = [p for p in cli.json("pins")["pins"] if p["reason"] == "own"]
    assert len(own) == 1 and own[0]["cid"] != r["content_cid"]
    assert cli.json("gc")["bytes_freed"] >= MiB
    assert _cids(r)["x.bin"] not in block_digests(home)


def test_cache_quota_drops_least_recently_used_copies_never_teacher_pins(
        cli, home, tmp_path, cli_at):
    author = cli_at(tmp_path / "author")
    author.json("init", "--name", "作者")
    cars = []
    for i in range(3):
        r = author.json("publish", str(_src(tmp_path, f"r{i}", {"v.bin": _blob(10 + i)})),
                        "--title", f"R{i}")
        car = tmp_path / f"r{i}.car"
        author.json("export", "-o", car, "--resource", r["resource_id"])
        cars.append((r, car))
    pinned = []                               # user copies, imported in order 0, 1, 2
    for r, car in cars:
        got = cli.json("import", car, "--content-only")
        pinned.append([p["content_cid"] for p in got["pinned"] if p["content_cid"] != "x"])
    roots = [r["content_cid"] for r, _ in cars]
    tops = [next(c for c in p if c.startswith("bafy")) for p in pinned]
    cli.ok("get", tops[0], "-o", tmp_path / "used")     # copy 0 is now the newest used
    cli.json("pin", roots[2])                            # copy 2 is kept for good
    cli.json("limits", "set", "--cache", "1.5MB")       # the teacher's copy costs it nothing
    got = cli.json("gc")
    assert tops[1] in {e["cid"] for e in got["evicted"]}             # least recently used
    assert not {tops[0], tops[2]} & {e["cid"] for e in got["evicted"]}
    left = block_digests(home)
    assert roots[1] not in left and roots[0] in left and roots[2] in left
    cli.json("limits", "set", "--cache", "1MB")
    got = cli.json("gc")                      # over the quota, but the newest copy stays
    assert tops[0] not in {e["cid"] for e in got["evicted"]}
    assert roots[0] in block_digests(home)
    r3 = author.json("publish", str(_src(tmp_path, "r3", {"v.bin": _blob(13)})), "--title", "R3")
    author.json("export", "-o", tmp_path / "r3.car", "--resource", r3["resource_id"])
    cli.json("import", tmp_path / "r3.car", "--content-only")   # now the newest
    got = cli.json("gc")
    assert tops[0] in {e["cid"] for e in got["evicted"]}
    left = block_digests(home)
    assert roots[2] in left and roots[0] not in left and r3["content_cid"] in left
    cache = cli.json("pins")["costs"]["cache"]
    assert cache["quota"] == 1_000_000 and MiB < cache["used"] < MiB + 4096   # only r3
    assert "not pinned by hand" in cli.fail("unpin", roots[0])
    cli.json("unpin", roots[2])
    assert "not (completely) here" in cli.fail("pin", roots[1])


def test_gc_waits_for_no_one_and_refuses_while_blocks_are_being_stored(cli, home):
    from node.blockstore import BlockStore
    store = BlockStore(home / "blocks")
    try:
        with store.writing():
            assert "storing blocks right now" in cli.fail("gc")
    finally:
        store.close()
    cli.json("gc")


def test_pins_say_what_each_reason_costs(cli, home, tmp_path):
    cli.json("publish", str(_src(tmp_path, "a", {"a.bin": _blob(20)})), "--title", "A")
    costs = cli.json("pins")["costs"]
    assert set(costs["reasons"]) == {"own"}
    own = costs["reasons"]["own"]
    assert MiB <= own["bytes"] == own["only_bytes"] < MiB + 4096
    assert costs["stored"]["bytes"] >= own["bytes"]
    assert "would free" in cli.ok("pins").stdout


def test_a_newer_version_from_a_bundle_replaces_the_old_ones_pin(cli, home, tmp_path, cli_at):
    author = cli_at(tmp_path / "author")
    author.json("init", "--name", "作者")
    r = author.json("publish", str(_src(tmp_path, "v1", {"x.bin": _blob(30)})), "--title", "V")
    author.json("export", "-o", tmp_path / "v1.car")
    cli.json("import", tmp_path / "v1.car")
    assert [p["cid"] for p in cli.json("pins")["pins"] if p["reason"] == "bundle"] == \
        [r["content_cid"]]
    v2 = author.json("update", r["resource_id"], str(_src(tmp_path, "v2", {"x.bin": _blob(31)})))
    author.json("export", "-o", tmp_path / "v2.car")
    cli.json("import", tmp_path / "v2.car")
    assert [p["cid"] for p in cli.json("pins")["pins"] if p["reason"] == "bundle"] == \
        [v2["content_cid"]]
    assert cli.json("gc")["bytes_freed"] >= MiB
    assert _cids(r)["x.bin"] not in block_digests(home)
    author.json("retract", r["resource_id"])
    author.json("export", "-o", tmp_path / "v3.car")
    cli.json("import", tmp_path / "v3.car")
    assert [p for p in cli.json("pins")["pins"] if p["reason"] == "bundle"] == []
    assert cli.json("gc")["bytes_freed"] >= MiB


def test_a_failed_writer_removes_its_blocks_unless_someone_else_may_need_them(home):
    from crypto import CID_RAW, make_cid
    from node import db, gc
    from node.blockstore import BlockStore
    from node.home import now_ms, open_home
    h = open_home(home)
    data = _blob(40, 4096)
    cid = make_cid(CID_RAW, data)
    created: list[bytes] = []
    since = now_ms()
    try:
        with h.blocks.writing() as lock:
            with h.blocks.batch(created) as b:
                b.put(cid, data)
            assert created == [cid]
            other = BlockStore(home / "blocks")        # another publish is at work
            try:
                with other.writing():
                    assert gc.discard_unpinned(h, lock, list(created), since) == 0
            finally:
                other.close()
            with db.write(h.conn) as c:                # a pin made meanwhile needs it
                db.pin(c, cid, "user", "fetched", now_ms())
            assert gc.discard_unpinned(h, lock, list(created), since) == 0
            assert h.blocks.has(cid)
            with db.write(h.conn) as c:
                c.execute("DELETE FROM pins WHERE cid = ?", (cid,))
            assert gc.discard_unpinned(h, lock, created, since) == 1
            assert not h.blocks.has(cid)
    finally:
        h.close()
