"""Bad bundles and wants files: one line ``error: ...``, a non-zero exit, and nothing already
stored changes.  The hostile files come from specs/vectors/bundles.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crypto import CID_DAG_PB, cid_from_str, cid_to_str
from node import bundle as nbundle
from protocol import car, dagpb, unixfs

V = json.loads((Path(__file__).parents[1] / "specs/vectors/bundles.json").read_text("utf-8"))


def kept(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Nothing already stored changed: every block, every row is still there, unchanged
    (FTS5's internal tables are rewritten when anything is indexed, so they are left out)."""
    return (after["key"] == before["key"]
            and all(after["blocks"].get(c) == d for c, d in before["blocks"].items())
            and all(set(rows) <= set(after["db"][t]) for t, rows in before["db"].items()
                    if not t.startswith("catalog_fts_")))


def partial(cli, *args: Any) -> dict[str, Any]:
    """An import that stored what was valid and reported the rest: exit 1, the report on
    stdout, one line ``error: ...`` on stderr, no traceback."""
    result = cli.run(*args, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "unexpected" not in lines[0]
    report = json.loads(result.stdout)
    assert report["invalid"] and report["invalid"][0] in lines[0]
    return report


@pytest.fixture
def library(cli, home, tmp_path) -> dict[str, Any]:
    """A home that already holds a resource of its own."""
    src = tmp_path / "own"
    src.mkdir()
    (src / "a.txt").write_text("our own lesson", "utf-8")
    return cli.json("publish", src, "--title", "Our own")


def put(tmp_path: Path, name: str, hexdata: str) -> Path:
    p = tmp_path / name
    p.write_bytes(bytes.fromhex(hexdata))
    return p


# -- files that are refused as a whole -------------------------------------------------------

@pytest.mark.parametrize("c", V["bad_cars"], ids=lambda c: c["why"])
@pytest.mark.parametrize("content_only", [False, True], ids=["bundle", "content-only"])
def test_not_a_car_or_wrong_version(cli, library, tmp_path, c, content_only):
    f = put(tmp_path, "bad.car", c["hex"])
    before = cli.state()
    message = cli.fail("import", f, *(["--content-only"] if content_only else []))
    assert message.startswith(f"{f} is not a readable CARv1 file: ") and c["error"] in message
    assert cli.state() == before


def test_wrong_car_version_names_it(cli, library, tmp_path):
    f = put(tmp_path, "v2.car", next(c["hex"] for c in V["bad_cars"] if c["why"] == "CARv2"))
    assert "unsupported CAR version 2" in cli.fail("import", f)


def test_missing_file_and_a_bad_file_among_good_ones(cli, library, tmp_path):
    good = put(tmp_path, "good.car", V["bundle"]["hex"])
    bad = put(tmp_path, "bad.car", V["bad_cars"][0]["hex"])
    before = cli.state()
    assert "not a readable CARv1 file" in cli.fail("import", good, bad)
    assert "cannot read" in cli.fail("import", good, tmp_path / "missing.car")
    assert cli.state() == before  # every file is checked before anything is stored


@pytest.mark.parametrize("c", [b for b in V["bad_bundles"] if "refused" in b["expect"]],
                         ids=lambda c: c["why"])
def test_bundles_refused_as_a_whole(cli, library, tmp_path, c):
    f = put(tmp_path, "x.car", c["hex"])
    before = cli.state()
    assert c["expect"]["refused"] in cli.fail("import", f)
    assert cli.state() == before


# -- bundles whose valid part is imported ----------------------------------------------------

@pytest.mark.parametrize("c", [b for b in V["bad_bundles"] if "refused" not in b["expect"]],
                         ids=lambda c: c["why"])
def test_bad_items_are_reported_the_rest_imported(cli, library, tmp_path, c):
    f = put(tmp_path, "x.car", c["hex"])
    before = cli.state()
    report = partial(cli, "import", f)
    expect = c["expect"]
    assert any(expect["invalid"] in p for p in report["invalid"]), report["invalid"]
    assert report["entries_added"] == expect["entries_added"]
    assert len(report["pinned"]) == expect["pinned"]
    assert len(report["incomplete"]) == expect["incomplete"]
    after = cli.state()
    assert kept(before, after)
    # a second import of the same file changes nothing more
    partial(cli, "import", f)
    assert cli.state() == after
    # what was stored is sound; an incomplete resource is pinned, its missing blocks listed
    verify = cli.json("verify")   # exits 0: missing blocks are incompleteness, not damage
    assert verify["ok"] and verify["problems"] == []
    assert len(verify["incomplete"]) == expect["incomplete"]


def test_block_not_matching_its_cid_is_not_stored(cli, library, tmp_path):
    c = next(b for b in V["bad_bundles"] if "do not match" in b["why"])
    report = partial(cli, "import", put(tmp_path, "x.car", c["hex"]))
    bad_cid = report["invalid"][0].split("block ")[1].split()[0]
    assert bad_cid not in cli.state()["blocks"]
    # the good copy arrives later (the valid bundle): the resource completes
    report = cli.json("import", put(tmp_path, "good.car", V["bundle"]["hex"]))
    assert [p["resource_id"] for p in report["pinned"]] == [V["bundle"]["resource_id"]]
    assert bad_cid in cli.state()["blocks"]


def test_unsafe_name_is_neither_pinned_nor_indexed_nor_stored(cli, library, tmp_path):
    c = next(b for b in V["bad_bundles"] if "path-escaping" in b["why"])
    before = cli.state()
    report = partial(cli, "import", put(tmp_path, "x.car", c["hex"]))
    assert "unsafe name" in report["invalid"][0] and report["blocks_added"] == 0
    after = cli.state()
    assert after["blocks"] == before["blocks"]
    assert after["db"]["pins"] == before["db"]["pins"]
    assert [r[1] for r in after["db"]["resources"]] == [r[1] for r in before["db"]["resources"]]
    assert cli.json("search") == cli.json("search", "--school", "龙泉小学")  # only our own


def test_unsafe_name_in_plain_content_is_refused(cli, library, tmp_path):
    leaf = unixfs.file_dag(b"evil")[0]
    node = dagpb.encode_node([dagpb.Link(leaf.cid, "../../etc/passwd", 4)],
                             dagpb.UnixFSData(dagpb.DIRECTORY))
    root = dagpb.node_cid(node)
    data = car.encode_header([root]) + car.encode_section(root, node) + \
        car.encode_section(leaf.cid, b"evil")
    f = tmp_path / "evil.car"
    f.write_bytes(data)
    before = cli.state()
    report = partial(cli, "import", "--content-only", f)
    assert "unsafe name" in report["invalid"][0] and report["pinned"] == []
    assert cli.state() == before


def test_blocks_with_unsupported_cids_are_reported(cli, library, tmp_path):
    dag_cbor_cid = bytes([1, 0x71, 0x12, 0x20]) + bytes(32)
    plain = bytes.fromhex(V["plain_car"]["hex"])
    data = plain + car.encode_section(dag_cbor_cid, b"\xa0")
    f = tmp_path / "mixed.car"
    f.write_bytes(data)
    report = partial(cli, "import", "--content-only", f)
    assert "unsupported CIDs" in report["invalid"][0]
    assert [p["content_cid"] for p in report["pinned"]] == [V["plain_car"]["root"]]


# -- wants files -----------------------------------------------------------------------------

@pytest.mark.parametrize("c", V["bad_wants"], ids=lambda c: c["why"])
def test_bad_wants_file_is_refused(cli, library, tmp_path, c):
    w = put(tmp_path, "w.wants", c["hex"])
    before = cli.state()
    message = cli.fail("export", "-o", tmp_path / "out.car", "--wants", w)
    assert message.startswith(f"{w} is not a valid wants file: ")
    assert not (tmp_path / "out.car").exists() and not list(tmp_path.glob("*.partial"))
    assert cli.state() == before


def test_wants_signed_by_someone_else(cli, library, tmp_path):
    c = next(c for c in V["bad_wants"] if c["why"] == "signed by someone else")
    message = cli.fail("export", "-o", tmp_path / "out.car",
                       "--wants", put(tmp_path, "w", c["hex"]))
    assert "signed by another school" in message


def test_missing_wants_file(cli, library, tmp_path):
    assert "cannot read the wants file" in cli.fail(
        "export", "-o", tmp_path / "out.car", "--wants", tmp_path / "nope")


# -- free disk space -------------------------------------------------------------------------

def test_bundle_larger_than_the_free_disk(cli, library, tmp_path, monkeypatch):
    f = put(tmp_path, "x.car", V["bundle"]["hex"])
    monkeypatch.setattr(nbundle, "free_bytes", lambda path: nbundle.SPACE_RESERVE + 10)
    before = cli.state()
    message = cli.fail("import", f)
    assert message.startswith("not enough free disk space in ") and "importing" in message
    assert cli.state() == before
    message = cli.fail("export", "-o", tmp_path / "out.car")
    assert "not enough free disk space" in message and not (tmp_path / "out.car").exists()
    monkeypatch.setattr(nbundle, "free_bytes", lambda path: 10**12)
    assert cli.json("import", f)["entries_added"] == 2


def test_plain_car_refused_without_content_only(cli, library, tmp_path):
    f = put(tmp_path, "plain.car", V["plain_car"]["hex"])
    message = cli.fail("import", f)
    assert "--content-only" in message
    report = cli.json("import", "--content-only", f)
    root = V["plain_car"]["root"]
    assert [p["content_cid"] for p in report["pinned"]] == [root]
    assert cid_from_str(root)[1] == CID_DAG_PB
    cli.ok("get", root, "-o", tmp_path / "out")
    assert (tmp_path / "out" / "教案.md").read_bytes() == bytes.fromhex(
        V["plain_car"]["files"]["教案.md"])
    pins = {(cid_to_str(r[0]), r[1], r[2]) for r in cli.state()["db"]["pins"]}
    assert (root, "user", "import") in pins
