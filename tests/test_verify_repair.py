"""`verify` tells damage from incompleteness, and `verify --repair` fetches corrupt and missing
blocks again from other schools (issue 14 point 5), with real `schoolmesh` processes."""

from __future__ import annotations

import json
import random

from conftest import corrupt_block, remove_block
from test_net_processes import run, wait_until
from test_restore_process import cli, daemons, ok_json  # noqa: F401  (daemons: fixture)


def test_verify_repair_fetches_damaged_and_missing_blocks_again(daemons, tmp_path):
    a, b = daemons("a"), daemons("b")
    src = tmp_path / "lesson"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(14).randbytes(3 * 2**20))  # file blocks
    (src / "note.md").write_text("# 注意\n", "utf-8")              # a small block
    r = ok_json(a, "publish", str(src), "--title", "修复")
    run(b, "connect", run(a, "status")["listen"][0])
    run(b, "follow", run(a, "id")["school_id"])
    wait_until(lambda: [x["title"] for x in run(b, "search")] == ["修复"], "B has A's catalog")
    assert cli(b, "get", r["resource_id"], "-o", str(tmp_path / "first")).returncode == 0
    assert ok_json(b, "verify")["ok"]

    cids = {f["path"]: f["cid"] for f in r["files"]}
    big = ok_json(b, "show", r["resource_id"])["files"]
    assert {f["path"] for f in big} == {"big.bin", "note.md"}
    corrupt_block(b, cids["note.md"])
    leaf = _a_leaf_of(b, cids["big.bin"])
    remove_block(b, leaf)

    damaged = cli(b, "verify")
    assert damaged.returncode == 1
    problems = [x for x in damaged.stdout.splitlines() if x.startswith("PROBLEM:")]
    incomplete = [x for x in damaged.stdout.splitlines() if x.startswith("INCOMPLETE:")]
    assert len(problems) == 1 and cids["note.md"] in problems[0]
    assert len(incomplete) == 1 and "1 block(s)" in incomplete[0]

    repaired = cli(b, "verify", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    d = json.loads(repaired.stdout)
    assert d["repaired"]["resources"] == [r["content_cid"]]
    assert d["repaired"]["corrupt_removed"] == 1 and d["repaired"]["not_repaired"] == {}
    assert d["ok"] and d["problems"] == [] and d["incomplete"] == []
    out = tmp_path / "again"
    assert cli(b, "get", r["resource_id"], "-o", str(out)).returncode == 0
    assert (out / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    assert (out / "note.md").read_text("utf-8") == "# 注意\n"


def _a_leaf_of(home, file_cid: str) -> str:
    """One raw leaf under a file's root node."""
    from crypto import cid_from_str, cid_to_str
    from node.blockstore import BlockStore
    from protocol import unixfs
    store = BlockStore(home / "blocks")
    try:
        node = unixfs.dagpb.decode_node(store.get(cid_from_str(file_cid)))
        return cid_to_str(node.links[1].cid)
    finally:
        store.close()
