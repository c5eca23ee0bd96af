"""export / wants / import through the CLI: the two-way USB round trip, parts, selection,
idempotence, atomic output, free-space checks and progress."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from crypto import cid_from_str
from node import bundle as nbundle
from node.errors import StoreError
from protocol import car

MiB = 1024 * 1024


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def two(cli, home, cli_at, tmp_path):
    """School A (``cli``, with two resources) and school B (a fresh home)."""
    rnd = random.Random(5)
    math = write_tree(tmp_path / "math", {
        "教案.md": "# 分数\n".encode(), "课件/slides.bin": rnd.randbytes(3 * MiB - 5),
        "练习/ex1.txt": b"1/2 + 1/4 = ?\n"})
    chinese = write_tree(tmp_path / "chinese", {"古诗.txt": "床前明月光\n".encode()})
    a_math = cli.json("publish", math, "--title", "分数的初步认识", "--subject", "数学",
                      "--level", "lower-primary")
    a_chinese = cli.json("publish", chinese, "--title", "古诗两首", "--subject", "语文",
                         "--level", "upper-primary")
    b = cli_at(tmp_path / "b")
    b.identity = b.json("init", "--name", "青山村小学")
    return {"a": cli, "b": b, "math": a_math, "chinese": a_chinese, "math_src": math,
            "chinese_src": chinese, "tmp": tmp_path}


def test_round_trip_between_two_schools_with_wants(two):
    a, b, tmp = two["a"], two["b"], two["tmp"]
    # B asks for mathematics; A exports just that (plus the whole catalog)
    w = b.json("wants", "-o", tmp / "b.wants", "--subject", "数学")
    assert w["asks"] == {"all": False, "subjects": ["数学"], "levels": []}
    out = a.json("export", "-o", tmp / "for-b.car", "--wants", tmp / "b.wants")
    assert out["resources"] == 1 and out["entries"] == 3 and out["parts"] == 1
    assert out["for_school"] == b.identity["school_id"]
    report = b.json("import", tmp / "for-b.car")
    assert report["invalid"] == [] and report["entries_added"] == 3
    assert [p["resource_id"] for p in report["pinned"]] == [two["math"]["resource_id"]]
    # B works with no network: search finds both (catalog), get works for the one carried
    found = {r["resource_id"] for r in b.json("search")}
    assert found == {two["math"]["resource_id"], two["chinese"]["resource_id"]}
    assert [r["resource_id"] for r in b.json("search", "分数")] == [two["math"]["resource_id"]]
    b.ok("get", two["math"]["resource_id"], "-o", tmp / "got")
    assert tree(tmp / "got") == tree(two["math_src"])
    assert b.json("show", two["chinese"]["resource_id"])["local"] is False
    assert b.json("verify")["ok"]
    pins = b.json("show", two["math"]["resource_id"])
    assert pins["local"] is True and pins["signature"] == "valid"

    # B adapts A's lesson; A asks for everything new; B exports only its own feed
    adapted = write_tree(tmp / "adapted", {"教案.md": "# 分数（村小版）\n".encode()})
    b_res = b.json("publish", adapted, "--title", "分数（村小版）", "--subject", "数学",
                   "--based-on", two["math"]["resource_id"])
    a.ok("wants", "-o", tmp / "a.wants", "--all")
    back = b.json("export", "-o", tmp / "for-a.car", "--wants", tmp / "a.wants")
    assert back["resources"] == 1 and back["entries"] == 2
    assert [f["school_id"] for f in back["feeds"]] == [b.identity["school_id"]]
    report = a.json("import", tmp / "for-a.car")
    assert report["invalid"] == [] and report["entries_added"] == 2
    assert [p["resource_id"] for p in report["pinned"]] == [b_res["resource_id"]]
    a.ok("get", b_res["resource_id"], "-o", tmp / "got-a")
    assert tree(tmp / "got-a") == tree(adapted)
    lineage = a.json("show", two["math"]["resource_id"])["lineage"]["adaptations"]
    assert [x["resource_id"] for x in lineage] == [b_res["resource_id"]]

    # importing the same bundle again changes nothing
    before = a.state()
    again = a.json("import", tmp / "for-a.car")
    assert again["blocks_added"] == again["entries_added"] == 0 and again["invalid"] == []
    assert a.state() == before
    # a second wants from B now asks for nothing A can add
    b.ok("wants", "-o", tmp / "b2.wants", "--subject", "数学")
    nothing = a.json("export", "-o", tmp / "nothing.car", "--wants", tmp / "b2.wants")
    assert nothing["resources"] == 0 and nothing["entries"] == 0


def test_export_everything_without_filters(two):
    a, tmp = two["a"], two["tmp"]
    out = a.json("export", "-o", tmp / "all.car")
    assert out["resources"] == 2 and out["entries"] == 3
    header, sections = car.read_car((tmp / "all.car").read_bytes())
    assert header.roots == (cid_from_str(out["library_folder"]), cid_from_str(out["index"]))
    assert sections[0].cid == header.roots[1]  # the index comes first
    # B imports with --json and gets everything
    report = two["b"].json("import", tmp / "all.car")
    assert len(report["pinned"]) == 2 and report["incomplete"] == []


def test_select_by_resource_and_school(two):
    a, b, tmp = two["a"], two["b"], two["tmp"]
    out = a.json("export", "-o", tmp / "one.car", "--resource", two["chinese"]["resource_id"])
    assert out["resources"] == 1 and out["entries"] == 3  # the feed is needed for the chain
    b.json("import", tmp / "one.car")
    b.ok("wants", "-o", tmp / "w", "--all")
    # B re-exports A's school by name: entries and the one resource it holds
    again = b.json("export", "-o", tmp / "school.car", "--school", "龙泉小学")
    assert again["resources"] == 1 and [f["first"] for f in again["feeds"]] == [1]
    message = a.fail("export", "-o", tmp / "x.car", "--resource", "r" + "a" * 26)
    assert "no resource" in message
    assert "no school" in a.fail("export", "-o", tmp / "x.car", "--school", "nobody")
    a.ok("retract", two["chinese"]["resource_id"])
    assert "retracted" in a.fail("export", "-o", tmp / "x.car", "--resource",
                                 two["chinese"]["resource_id"])
    assert not (tmp / "x.car").exists()


@pytest.mark.parametrize("order", [[1, 2, 3], [3, 1, 2], [2, 3, 1]])
def test_parts_import_in_any_order(two, order):
    a, b, tmp = two["a"], two["b"], two["tmp"]
    out = a.json("export", "-o", tmp / "lib.car", "--max-size", "1.1MiB",
                 "--resource", two["math"]["resource_id"])
    assert out["parts"] == 3
    names = [tmp / f"lib.part{i}.car" for i in (1, 2, 3)]
    assert out["output"] == [str(p) for p in names]
    assert not (tmp / "lib.car").exists() and not list(tmp.glob("*.partial"))
    for p in names:
        assert p.stat().st_size <= int(1.1 * MiB)
        header, _ = car.read_car(p.read_bytes())
        assert header.roots == (cid_from_str(out["library_folder"]), cid_from_str(out["index"]))
    rid = two["math"]["resource_id"]
    for n, i in enumerate(order, 1):
        report = b.json("import", names[i - 1])
        assert report["invalid"] == []
        done = [p["resource_id"] for p in report["pinned"]]
        assert done == ([rid] if n == 3 else []), (n, report)
    b.ok("get", rid, "-o", tmp / "got")
    assert tree(tmp / "got") == tree(two["math_src"])


def test_parts_together_and_small_enough_bundle_is_one_file(two):
    a, b, tmp = two["a"], two["b"], two["tmp"]
    out = a.json("export", "-o", tmp / "lib", "--max-size", "1200000")
    parts = [Path(p) for p in out["output"]]
    assert [p.name for p in parts] == [f"lib.part{i}.car" for i in range(1, len(parts) + 1)]
    report = b.json("import", *reversed(parts))
    assert len(report["pinned"]) == 2 and report["invalid"] == []
    one = a.json("export", "-o", tmp / "small.car", "--max-size", "4G")
    assert one["output"] == [str(tmp / "small.car")] and one["parts"] == 1


def test_max_size_too_small_is_refused_before_writing(two):
    a, tmp = two["a"], two["tmp"]
    message = a.fail("export", "-o", tmp / "x.car", "--max-size", "100k")
    assert "--max-size" in message and "too small" in message
    assert list(tmp.glob("x*")) == []
    message = a.fail("export", "-o", tmp / "x.car", "--max-size", "lots")
    assert "bad --max-size 'lots'" in message and "4000M, 500MB" in message
    message = a.fail("export", "-o", tmp / "x.car", "--max-size", "4Gbit")
    assert "bad --max-size" in message


def test_existing_output_is_not_replaced_without_overwrite(two):
    a, tmp = two["a"], two["tmp"]
    (tmp / "lib.part7.car").write_bytes(b"old part")
    assert "already exists" in a.fail("export", "-o", tmp / "lib.car")
    a.ok("export", "-o", tmp / "lib.car", "--overwrite")
    assert not (tmp / "lib.part7.car").exists()  # a stale part of an older export
    assert "already exists" in a.fail("wants", "-o", tmp / "lib.car")
    assert "not an existing folder" in a.fail("export", "-o", tmp / "no" / "such.car")


@pytest.mark.parametrize("max_size", [None, "1.1MiB"])
def test_a_failed_export_leaves_no_file(two, monkeypatch, max_size):
    """Parts are written as NAME.partial and renamed only when all are complete."""
    a, tmp = two["a"], two["tmp"]
    real_write, seen = nbundle._Part.write, []

    def failing_write(self, cid, data):
        seen.append(self.path.name)
        if "part2" in self.path.name if max_size else len(seen) == 14:
            assert self.path.exists() and self.path.name.endswith(".car.partial")
            raise StoreError("the disk went away")
        return real_write(self, cid, data)
    monkeypatch.setattr(nbundle._Part, "write", failing_write)
    args = ["--max-size", max_size] if max_size else []
    assert "the disk went away" in a.fail("export", "-o", tmp / "x.car", *args)
    assert len(set(seen)) == (2 if max_size else 1)
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("x")) == []


def test_not_enough_space_is_reported_before_writing(two, monkeypatch):
    a, b, tmp = two["a"], two["b"], two["tmp"]
    a.ok("export", "-o", tmp / "lib.car")
    size = (tmp / "lib.car").stat().st_size
    monkeypatch.setattr(nbundle, "free_bytes", lambda path: size // 2)
    message = a.fail("export", "-o", tmp / "again.car")
    assert "not enough free disk space" in message and not (tmp / "again.car").exists()
    before = b.state()
    message = b.fail("import", tmp / "lib.car")
    assert "not enough free disk space" in message
    assert b.state() == before


def test_progress_is_reported_for_every_byte(two, tmp_path):
    from node.bundle_import import plan_import, run_import
    from node.home import open_home
    a_home, b_home = open_home(two["a"].home), open_home(two["b"].home)
    try:
        plan = nbundle.plan_export(a_home)
        seen: list[int] = []
        out = nbundle.write_export(a_home, plan, tmp_path / "p.car", progress=seen.append)
        assert sum(seen) == out["bytes"] == plan.estimated_bytes
        scanned: list[int] = []
        with plan_import(b_home, [tmp_path / "p.car"], progress=scanned.append) as iplan:
            assert sum(scanned) == (tmp_path / "p.car").stat().st_size
            assert all(n >= 0 for n in scanned)
            got: list[int] = []
            report = run_import(iplan, got.append)
            assert sum(got) == iplan.bytes_needed == report["bytes_added"]
    finally:
        a_home.close()
        b_home.close()


def test_wants_options(two):
    b, tmp = two["b"], two["tmp"]
    result = b.run("wants", "-o", tmp / "w", "--all", "--subject", "数学")
    assert result.exit_code == 2 and "--all" in result.stderr
    result = b.run("wants", "-o", tmp / "w", "--level", "grade-3")
    assert result.exit_code == 2
    d = b.json("wants", "-o", tmp / "w", "--level", "lower-primary", "--subject", "数学",
               "--subject", "数学")
    assert d["asks"] == {"all": False, "subjects": ["数学"], "levels": ["lower-primary"]}
    assert d["feeds"] == 1 and d["roots"] == 0
    assert not (tmp / "w.partial").exists()
    plain = b.ok("wants", "-o", tmp / "w2").stdout
    assert "catalog entries only" in plain


def test_human_output(two):
    a, b, tmp = two["a"], two["b"], two["tmp"]
    text = a.ok("export", "-o", tmp / "h.car").stdout
    assert "wrote" in text and "2 resource(s)" in text and "library folder:" in text
    text = b.ok("import", tmp / "h.car").stdout
    assert "added" in text and "complete" in text
    assert json.loads(b.ok("import", tmp / "h.car", "--json").stdout)["blocks_added"] == 0


def test_equivocation_in_a_bundle_is_kept_as_evidence(cli, home, tmp_path):
    vectors = json.loads((Path(__file__).parents[1] / "specs/vectors/bundles.json")
                         .read_text("utf-8"))
    (tmp_path / "v.car").write_bytes(bytes.fromhex(vectors["bundle"]["hex"]))
    (tmp_path / "fork.car").write_bytes(bytes.fromhex(vectors["equivocation"]["hex"]))
    cli.json("import", tmp_path / "v.car")
    result = cli.run("import", tmp_path / "fork.car", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert "equivocation" in report["invalid"][0] and report["entries_added"] == 0
    flagged = [s for s in cli.state()["db"]["feeds"] if s[-1]]
    assert len(flagged) == 1 and "two different entries 2" in flagged[0][-1]
    assert bytes.fromhex(vectors["equivocation"]["entry_hash"]) in {
        row[2] for row in cli.state()["db"]["conflicts"]}
    # a flagged feed is not exported onwards
    out = cli.json("export", "-o", tmp_path / "out.car")
    assert vectors["keys"][0]["school_id"] in {s.get("school_id") for s in out["skipped"]}


def test_scratch_database_is_not_left_behind(two):
    """Import's scratch data lives in an unlinked temporary file: no new files in the home."""
    a, b, tmp = two["a"], two["b"], two["tmp"]
    a.ok("export", "-o", tmp / "lib.car")
    names_before = {p.name for p in b.home.rglob("*")}
    b.ok("import", tmp / "lib.car")
    new = {p.name for p in b.home.rglob("*")} - names_before
    assert all(not n.endswith((".tmp", ".partial", ".db")) for n in new), new
    assert os.listdir(b.home / "blocks" / "tmp") == []
