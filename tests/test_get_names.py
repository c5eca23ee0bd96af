"""`schoolmesh get` onto file systems teachers use (FAT/exFAT USB sticks, NTFS): names those
refuse or that collide there are refused before anything is written, or renamed with
--safe-names (specs/content.md §5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto import cid_to_str
from node.blockstore import BlockStore
from protocol import dagpb, unixfs

# names a Linux folder holds and publish accepts, but FAT/exFAT/NTFS do not
AWKWARD = {
    "Lesson.pdf": b"upper",
    "lesson.pdf": b"lower",
    "Q&A: week 1/notes?.txt": b"notes",
    "Q&A: week 1/list.": b"list",
    "ok.txt": b"fine",
}
RENAMED = {
    "Lesson.pdf": "Lesson.pdf",
    "lesson.pdf": "lesson (2).pdf",
    "Q&A: week 1/notes?.txt": "Q&A_ week 1/notes_.txt",
    "Q&A: week 1/list.": "Q&A_ week 1/list_",
    "ok.txt": "ok.txt",
}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def awkward(cli, home, tmp_path):
    src = tmp_path / "src"
    for rel, data in AWKWARD.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    # publishing keeps the names as they are: they are valid resource paths (published on Linux)
    r = cli.json("publish", src, "--title", "Awkward names")
    assert sorted(f["path"] for f in r["files"]) == sorted(AWKWARD)
    return r


def test_get_refuses_unportable_names_and_writes_nothing(cli, awkward, tmp_path):
    out = tmp_path / "stick" / "lesson"
    message = cli.fail("get", awkward["resource_id"], "-o", out)
    assert "'Lesson.pdf' and 'lesson.pdf' differ only in letter case" in message
    assert "'Q&A: week 1' contains ':'" in message
    assert "'Q&A: week 1/notes?.txt' contains '?'" in message
    assert "'Q&A: week 1/list.' ends with a dot or a space" in message
    assert "--safe-names" in message and "nothing was written" in message
    assert not (tmp_path / "stick").exists()
    out.mkdir(parents=True)
    cli.fail("get", awkward["resource_id"], "-o", out)
    assert list(out.iterdir()) == []


def test_get_safe_names_writes_renamed_copies_and_reports(cli, awkward, tmp_path):
    out = tmp_path / "out"
    result = cli.ok("get", awkward["resource_id"], "-o", out, "--safe-names")
    assert tree(out) == {RENAMED[p]: data for p, data in AWKWARD.items()}
    lines = result.stdout.splitlines()
    assert lines[0].startswith("wrote 5 file(s)")
    assert lines[1] == "renamed 3 file(s) so that USB sticks and Windows can hold them:"
    assert lines[2:] == [f"  {p}  ->  {t}" for p, t in sorted(RENAMED.items()) if p != t]
    out2 = tmp_path / "out2"
    got = cli.json("get", awkward["resource_id"], "-o", out2, "--safe-names")
    assert got["renamed"] == [{"path": p, "written_as": t}
                              for p, t in sorted(RENAMED.items()) if p != t]
    assert {f["path"]: f.get("written_as", f["path"]) for f in got["files"]} == RENAMED
    assert tree(out2) == tree(out)
    assert not [p for p in out.rglob(".*")]
    # again into the same folder: the renamed targets exist, so --overwrite is needed
    assert "already exists" in cli.fail("get", awkward["resource_id"], "-o", out,
                                        "--safe-names")
    cli.ok("get", awkward["resource_id"], "-o", out, "--safe-names", "--overwrite")


def test_get_portable_resource_reports_no_renames(cli, home, tmp_path):
    (tmp_path / "src" / "数学").mkdir(parents=True)
    (tmp_path / "src" / "数学" / "第一课.txt").write_bytes(b"x")
    r = cli.json("publish", tmp_path / "src", "--title", "Fine")
    got = cli.json("get", r["resource_id"], "-o", tmp_path / "out")
    assert got["renamed"] == [] and "written_as" not in got["files"][0]
    result = cli.ok("get", r["resource_id"], "-o", tmp_path / "out2", "--safe-names")
    assert "renamed" not in result.stdout


def _hostile_directory(home: Path) -> str:
    """A UnixFS directory another program could build and a folder on disk cannot hold: two
    entries named ``a.txt`` and ``sub`` both as a file and as a folder. Stored in the home."""
    one, _ = unixfs.file_dag(b"one")
    two, _ = unixfs.file_dag(b"two")
    inner, _ = unixfs.file_dag(b"inner")
    sub = dagpb.encode_node([dagpb.Link(inner.cid, "x.txt", inner.dag_size)],
                            dagpb.UnixFSData(dagpb.DIRECTORY))
    sub_cid = dagpb.node_cid(sub)
    root = dagpb.encode_node([dagpb.Link(one.cid, "a.txt", one.dag_size),
                              dagpb.Link(two.cid, "a.txt", two.dag_size),
                              dagpb.Link(one.cid, "sub", one.dag_size),
                              dagpb.Link(sub_cid, "sub", len(sub))],
                             dagpb.UnixFSData(dagpb.DIRECTORY))
    root_cid = dagpb.node_cid(root)
    store = BlockStore(home / "blocks")
    try:
        for cid, data in ((one.cid, b"one"), (two.cid, b"two"), (inner.cid, b"inner"),
                          (sub_cid, sub), (root_cid, root)):
            store.put(cid, data)
    finally:
        store.close()
    return cid_to_str(root_cid)


def test_get_duplicate_names_and_file_and_folder(cli, home, tmp_path):
    cid = _hostile_directory(home)
    out = tmp_path / "out"
    message = cli.fail("get", cid, "-o", out)
    assert "'a.txt' is in the resource twice" in message
    assert "'sub' is both a file and a folder" in message
    assert not out.exists()
    got = cli.json("get", cid, "-o", out, "--safe-names")
    assert tree(out) == {"a.txt": b"one", "a (2).txt": b"two", "sub": b"one",
                         "sub (2)/x.txt": b"inner"}
    assert got["renamed"] == [{"path": "a.txt", "written_as": "a (2).txt"},
                              {"path": "sub/x.txt", "written_as": "sub (2)/x.txt"}]
