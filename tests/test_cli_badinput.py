"""Bad input: every refusal is one line ``error: ...`` on stderr, exit 1 (2 for click usage
errors), no traceback unless --debug, and nothing already stored changes."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from crypto import CID_RAW, cid_from_str, cid_to_str, make_cid
from node import db, feeds
from conftest import corrupt_block, remove_block
from node.blockstore import BlockStore
from node.errors import NotFound
from protocol import vocab


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def published(cli, home, tmp_path) -> dict[str, Any]:
    """One resource (a.txt, sub/b.txt) already published; returns publish --json."""
    src = tmp_path / "published"
    write(src / "a.txt", "alpha")
    write(src / "sub" / "b.txt", "beta")
    return cli.json("publish", src, "--title", "Already here")


@pytest.fixture
def src(tmp_path) -> Path:
    """A valid folder to publish."""
    d = tmp_path / "src"
    write(d / "lesson.txt", "lesson")
    return d


# -- publish: paths ----------------------------------------------------------------------------

def test_missing_path(cli, home, published, src, tmp_path):
    before = cli.state()
    missing = tmp_path / "no-such-file.txt"
    message = cli.fail("publish", src, missing, "--title", "T")
    assert str(missing) in message and "no such file or folder" in message
    assert cli.state() == before


def test_unreadable_file(cli, home, published, src):
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    secret = write(src / "secret.txt", "secret")
    secret.chmod(0)
    try:
        before = cli.state()
        message = cli.fail("publish", src, "--title", "T")
        assert str(secret) in message and "permission denied" in message.lower()
        message = cli.fail("publish", secret, "--title", "T")
        assert str(secret) in message
        assert cli.state() == before
    finally:
        secret.chmod(0o644)


@pytest.mark.parametrize("hidden", [[], [".DS_Store"], [".git/config", ".hidden/x.txt"]],
                         ids=["empty", "hidden-file", "hidden-folders"])
def test_folder_without_publishable_files(cli, home, published, tmp_path, hidden):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "sub").mkdir()  # an empty subfolder does not count either
    for rel in hidden:
        write(folder / rel, "x")
    before = cli.state()
    assert "nothing to publish" in cli.fail("publish", folder, "--title", "T")
    assert cli.state() == before


def test_file_name_that_is_not_utf8_is_refused(cli, home, published, src):
    """A name whose bytes are not UTF-8 (copied from an old Windows/GBK disk) reaches us with
    lone surrogates; it is refused with one line, not a UnicodeEncodeError traceback."""
    (src / os.fsdecode(b"\xc0\xce\xca\xa6.txt")).write_bytes(b"GBK-named lesson")
    before = cli.state()
    assert "not valid UTF-8" in cli.fail("publish", src, "--title", "T")
    assert cli.state() == before


def test_no_path_at_all_is_a_usage_error(cli, home):
    result = cli.run("publish", "--title", "T")
    assert result.exit_code == 2 and "Missing argument" in result.stderr


def test_symlink_inside_published_folder_is_refused(cli, home, published, src, tmp_path):
    outside = write(tmp_path / "outside" / "private.txt", "not for publishing")
    (src / "link.txt").symlink_to(outside)
    before = cli.state()
    message = cli.fail("publish", src, "--title", "T")
    assert str(src / "link.txt") in message and "symbolic link" in message
    assert cli.state() == before


def test_symlinked_folder_inside_published_folder_is_refused(cli, home, src, tmp_path):
    write(tmp_path / "outside" / "private.txt", "not for publishing")
    (src / "docs").symlink_to(tmp_path / "outside", target_is_directory=True)
    before = cli.state()
    assert "symbolic link" in cli.fail("publish", src, "--title", "T")
    assert cli.state() == before


def test_symlink_given_on_the_command_line_is_refused(cli, home, src, tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(src / "lesson.txt")
    before = cli.state()
    assert "symbolic link" in cli.fail("publish", link, "--title", "T")
    assert cli.state() == before


def test_two_files_with_the_same_resource_path(cli, home, tmp_path):
    write(tmp_path / "one" / "x.txt", "1")
    write(tmp_path / "two" / "x.txt", "2")
    before = cli.state()
    assert "'x.txt'" in cli.fail("publish", tmp_path / "one", tmp_path / "two", "--title", "T")
    assert cli.state() == before


def test_reserved_file_name_is_refused(cli, home, src):
    write(src / "CON.txt", "windows would choke")
    before = cli.state()
    assert "reserved device name" in cli.fail("publish", src, "--title", "T")
    assert cli.state() == before


def test_control_character_in_file_name_gives_one_line_error(cli, home, src):
    write(src / "bad\nname.txt", "x")
    before = cli.state()
    message = cli.fail("publish", src, "--title", "T")
    assert "control character" in message
    assert cli.state() == before


# -- publish / update: metadata ----------------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "field", "allowed"), [
    ("--level", "grade-3", "level", list(vocab.LEVELS)),
    ("--license", "CC-BY-3.0", "license", list(vocab.LICENSES)),
    ("--type", "poster", "type", list(vocab.RESOURCE_TYPES)),
])
def test_unknown_vocabulary_value_lists_allowed_values(cli, home, published, src, option,
                                                       value, field, allowed):
    before = cli.state()
    message = cli.fail("publish", src, "--title", "T", option, value)
    assert message.startswith(f"unknown {field} {value!r}; allowed: ")
    assert message.endswith(", ".join(allowed))
    message = cli.fail("update", published["resource_id"], option, value)
    assert f"unknown {field} {value!r}" in message
    assert cli.state() == before


@pytest.mark.parametrize("value", ["chinese", "zh_CN", "z", "en-", "12"])
def test_bad_language(cli, home, published, src, value):
    before = cli.state()
    message = cli.fail("publish", src, "--title", "T", "--language", value)
    assert f"language {value!r} is not a BCP 47 tag" in message
    assert "not a BCP 47 tag" in cli.fail("update", published["resource_id"],
                                          "--language", value)
    assert cli.state() == before


def test_bad_language_on_init_is_a_usage_error(cli):
    result = cli.run("init", "--name", "X", "--language", "zh_CN")
    assert result.exit_code == 2
    assert "--language" in result.stderr and "not a BCP 47 tag" in result.stderr
    assert "Traceback" not in result.output
    assert not cli.home.exists()


@pytest.mark.parametrize("value", ["40 minutes", "40", "PT", "P", "PT40", "T40M", "pt40m",
                                   "PT-5M"])
def test_bad_time_required(cli, home, published, src, value):
    before = cli.state()
    message = cli.fail("publish", src, "--title", "T", "--time-required", value)
    assert f"time required {value!r} is not an ISO 8601 duration" in message
    assert cli.state() == before


@pytest.mark.parametrize(("args", "fragment"), [
    (["--title", ""], "title must be non-empty text"),
    (["--title", "   "], "title must be non-empty text"),
    (["--title", "x" * 201], "title is longer than 200 characters"),
    (["--title", "T", "--level", "tertiary", "--level", "tertiary"], "duplicates"),
    (["--title", "T", "--based-on", "not-a-resource-id"], "is not a resource id"),
    (["--title", "T", "--keyword", ""], "keywords must be a non-empty list"),
])
def test_bad_metadata(cli, home, published, src, args, fragment):
    before = cli.state()
    assert fragment in cli.fail("publish", src, *args)
    assert cli.state() == before


def test_bad_choice_options_are_usage_errors(cli, home, published, src):
    before = cli.state()
    for args in (["publish", src, "--title", "T", "--supply", "nobody"],
                 ["search", "--level", "grade-3"], ["search", "--type", "poster"],
                 ["search", "--limit", "0"], ["init", "--name", "X", "--role", "king"]):
        result = cli.run(*args)
        assert result.exit_code == 2, args
        assert "Error: Invalid value" in result.stderr and "Traceback" not in result.output
    assert "'lower-primary'" in cli.run("search", "--level", "grade-3").stderr
    assert cli.state() == before


# -- get: output folder ------------------------------------------------------------------------

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_get_refuses_symlink_at_target_path(cli, home, published, tmp_path, overwrite):
    outside = write(tmp_path / "outside" / "victim.txt", "must stay")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").symlink_to(outside)
    message = cli.fail("get", published["resource_id"], "-o", out, *overwrite)
    assert str(out / "a.txt") in message and "symbolic link" in message
    assert outside.read_bytes() == b"must stay"
    assert tree(tmp_path / "outside") == {"victim.txt": b"must stay"}
    assert (out / "a.txt").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # nothing else was written


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_get_refuses_symlinked_intermediate_folder(cli, home, published, tmp_path, overwrite):
    outside = tmp_path / "outside"
    write(outside / "keep.txt", "untouched")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    message = cli.fail("get", published["resource_id"], "-o", out, *overwrite)
    assert str(out / "sub") in message and "symbolic link" in message
    assert tree(outside) == {"keep.txt": b"untouched"}  # b.txt never written through it


def test_get_refuses_symlinked_intermediate_folder_over_existing_file(cli, home, published,
                                                                      tmp_path):
    outside = tmp_path / "outside"
    write(outside / "b.txt", "victim")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    for overwrite in ([], ["--overwrite"]):
        cli.fail("get", published["resource_id"], "-o", out, *overwrite)
        assert tree(outside) == {"b.txt": b"victim"}


def test_refused_get_leaves_output_folder_untouched(cli, home, published, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(tmp_path, target_is_directory=True)
    cli.fail("get", published["resource_id"], "-o", out)
    assert sorted(p.name for p in out.iterdir()) == ["sub"]


def test_get_refuses_symlink_as_output_folder(cli, home, published, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert "is not a folder" in cli.fail("get", published["resource_id"], "-o", link)
    assert list(real.iterdir()) == []


def test_get_refuses_existing_file_without_overwrite(cli, home, published, tmp_path):
    out = tmp_path / "out"
    write(out / "sub" / "b.txt", "mine")
    message = cli.fail("get", published["resource_id"], "-o", out)
    assert str(out / "sub" / "b.txt") in message and "--overwrite" in message
    assert tree(out) == {"sub/b.txt": b"mine"}  # a.txt was not written either
    cli.ok("get", published["resource_id"], "-o", out, "--overwrite")
    assert tree(out) == {"a.txt": b"alpha", "sub/b.txt": b"beta"}


def test_get_into_a_file_is_refused(cli, home, published, tmp_path):
    out = write(tmp_path / "out", "a file")
    assert "cannot create" in cli.fail("get", published["resource_id"], "-o", out)
    assert out.read_bytes() == b"a file"


def test_get_where_a_folder_is_a_file(cli, home, published, tmp_path):
    out = tmp_path / "out"
    write(out / "sub", "a file where the resource has a folder")
    assert "not a folder" in cli.fail("get", published["resource_id"], "-o", out,
                                      "--overwrite")
    assert (out / "sub").read_bytes() == b"a file where the resource has a folder"


# -- damaged stores ----------------------------------------------------------------------------

def test_corrupted_block(cli, home, published, tmp_path):
    other = cli.json("publish", write(tmp_path / "other.txt", "other resource"),
                     "--title", "Other")
    bad_cid = next(f["cid"] for f in published["files"] if f["path"] == "sub/b.txt")
    blocks_before = cli.state()["blocks"]
    corrupt_block(home, bad_cid)
    result = cli.run("verify")
    assert result.exit_code == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM:")]
    assert len(problems) == 1
    assert bad_cid in problems[0] and published["resource_id"] in problems[0]
    assert "1 problem(s) found" in result.stdout
    report = cli.run("verify", "--json")
    assert report.exit_code == 1
    assert json.loads(report.stdout)["problems"] == [problems[0][len("PROBLEM: "):]]
    out = tmp_path / "out"
    message = cli.fail("get", published["resource_id"], "-o", out)
    assert bad_cid in message and "corrupted" in message
    assert not (out / "sub" / "b.txt").exists()
    assert not [p for p in out.rglob(".*")]  # no partial file left behind
    message = cli.fail("get", bad_cid, "-o", tmp_path / "single")
    assert "corrupted" in message
    # the good data is untouched and still served
    cli.ok("get", other["resource_id"], "-o", tmp_path / "good")
    assert tree(tmp_path / "good") == {"other.txt": b"other resource"}
    blocks_after = cli.state()["blocks"]
    changed = {k for k in blocks_before if blocks_before[k] != blocks_after.get(k)}
    assert changed == {bad_cid}  # nothing repaired or deleted
    assert set(blocks_after) == set(blocks_before)


def test_missing_block(cli, home, published, tmp_path):
    gone_cid = next(f["cid"] for f in published["files"] if f["path"] == "a.txt")
    remove_block(home, gone_cid)
    # a block that is not here is incompleteness, not damage: listed, exit 0
    result = cli.ok("verify")
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("PROBLEM:")]
    incomplete = [line for line in lines if line.startswith("INCOMPLETE:")]
    assert len(incomplete) == 1 and published["resource_id"] in incomplete[0]
    report = cli.json("verify")
    assert report["ok"] and report["incomplete"][0]["missing"] == 1
    # --repair needs the running node to fetch it
    assert "start the node" in cli.fail("verify", "--repair")
    message = cli.fail("get", published["resource_id"], "-o", tmp_path / "out")
    assert gone_cid in message and "not in the local store" in message
    assert cli.json("show", published["resource_id"])["local"] is False


def _tamper(home: Path, seq: int, old: bytes, new: bytes) -> None:
    with contextlib.closing(sqlite3.connect(home / "schoolmesh.db")) as conn:
        (raw,) = conn.execute("SELECT raw FROM entries WHERE seq = ?", (seq,)).fetchone()
        assert raw.count(old) == 1 and len(old) == len(new)
        with conn:
            conn.execute("UPDATE entries SET raw = ? WHERE seq = ?",
                         (raw.replace(old, new), seq))


def test_tampered_feed_entry(cli, home, published, tmp_path):
    rid = published["resource_id"]
    _tamper(home, 2, b"Already here", b"Already HERE")
    result = cli.run("verify")
    assert result.exit_code == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM:")]
    assert len(problems) == 1
    assert f"feed {cli.identity['school_id']} entry 2" in problems[0]
    assert "signature" in problems[0]
    shown = cli.json("show", rid)
    assert shown["signature"] == "INVALID"
    assert shown["versions"][0]["signature"].startswith("INVALID")
    assert "signature INVALID" in cli.ok("show", rid).stdout
    assert "damaged" in cli.fail("feed")


def test_tampered_entry_bytes_that_no_longer_decode(cli, home, published):
    # a title byte changed into one that is not valid UTF-8: the msgpack does not decode
    _tamper(home, 2, b"Already here", b"Already her\xff")
    assert cli.run("verify").exit_code == 1
    assert cli.json("show", published["resource_id"])["signature"] == "INVALID"


# -- init --------------------------------------------------------------------------------------

def test_init_over_existing_home_is_refused(cli, home, published):
    before = cli.state()
    message = cli.fail("init", "--name", "Impostor")
    assert str(home) in message and "already exists" in message
    assert cli.state() == before
    assert cli.json("id")["name"] == "龙泉小学"


def test_init_into_a_non_empty_folder_is_refused(cli, tmp_path):
    folder = tmp_path / "stuff"
    write(folder / "thesis.docx", "important")
    message = cli.fail("init", "--name", "X", home=folder)
    assert "already exists" in message
    assert tree(folder) == {"thesis.docx": b"important"}


def test_init_with_an_empty_name_creates_nothing(cli, tmp_path):
    assert "name must be non-empty text" in cli.fail("init", "--name", " ")
    assert not cli.home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary folder left


# -- unknown targets ---------------------------------------------------------------------------

UNKNOWN_RID = "r" + "q" * 26


@pytest.mark.parametrize("args", [["show", UNKNOWN_RID], ["get", UNKNOWN_RID, "-o", "OUT"],
                                  ["update", UNKNOWN_RID, "--title", "x"],
                                  ["retract", UNKNOWN_RID], ["show", "nonsense"],
                                  ["update", "nonsense", "--title", "x"]],
                         ids=["show", "get", "update", "retract", "show-nonsense",
                              "update-nonsense"])
def test_unknown_resource_id(cli, home, published, tmp_path, args):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    before = cli.state()
    message = cli.fail(*args)
    assert "no resource" in message and args[1] in message
    assert cli.state() == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", ["hello", "r123", "bafyxyz", "Qm123", "rAAAAAAAAAAAAAAAAAAA"
                                    "AAAAAAA", "../etc/passwd"])
def test_get_target_neither_resource_id_nor_cid(cli, home, published, tmp_path, target):
    message = cli.fail("get", target, "-o", tmp_path / "out")
    assert f"{target!r} is neither a resource id" in message
    assert not (tmp_path / "out").exists()


def test_get_cid_not_in_store(cli, home, tmp_path):
    cid = cid_to_str(make_cid(CID_RAW, b"never stored"))
    message = cli.fail("get", cid, "-o", tmp_path / "out")
    assert cid in message and "not in the local store" in message


def test_feed_of_unknown_school(cli, home, tmp_path):
    other = cli.json("init", "--name", "Elsewhere", home=tmp_path / "other")["school_id"]
    assert "no feed for school" in cli.fail("feed", other)


# -- another school's resources ----------------------------------------------------------------

def _import_feed(dest: Path, src: Path) -> None:
    """Copy every entry of src's own feed into dest, as replication will."""
    from node.home import open_home
    source, target = open_home(src), open_home(dest)
    try:
        entries = feeds.entries(source.conn, source.feed)
        with db.write(target.conn) as conn:
            for e in entries:
                assert feeds.append(conn, e) == feeds.Appended.ADDED
    finally:
        source.close()
        target.close()


def test_update_or_retract_of_another_schools_resource_is_refused(cli, home, tmp_path):
    other_home = tmp_path / "other"
    other = cli.json("init", "--name", "Mountain School", home=other_home)
    theirs = cli.json("publish", write(tmp_path / "t.txt", "theirs"), "--title", "Their lesson",
                      home=other_home)
    _import_feed(home, other_home)
    shown = cli.json("show", theirs["resource_id"])
    assert shown["school_id"] == other["school_id"] and shown["signature"] == "valid"
    assert shown["local"] is False  # entries came over, blocks did not
    before = cli.state()
    for args in (["update", theirs["resource_id"], "--title", "Mine now"],
                 ["update", theirs["resource_id"], write(tmp_path / "m.txt", "mine")],
                 ["retract", theirs["resource_id"], "--reason", "I do not like it"]):
        message = cli.fail(*args)
        assert "published by another school" in message and theirs["resource_id"] in message
    assert cli.state() == before
    assert cli.run("verify").exit_code == 0  # both feeds' chains are sound


def test_update_of_a_retracted_resource_is_refused(cli, home, published, src):
    cli.ok("retract", published["resource_id"])
    before = cli.state()
    assert "has been retracted" in cli.fail("update", published["resource_id"], "--title", "x")
    assert "has been retracted" in cli.fail("update", published["resource_id"], src)
    assert "has been retracted" in cli.fail("retract", published["resource_id"])
    assert cli.state() == before


# -- no home -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["id"], ["search"], ["show", UNKNOWN_RID], ["verify"],
                                  ["feed"], ["get", UNKNOWN_RID, "-o", "OUT"],
                                  ["publish", "SRC", "--title", "T"],
                                  ["update", UNKNOWN_RID, "--title", "T"],
                                  ["retract", UNKNOWN_RID], ["key", "export", "-o", "OUT"]],
                         ids=lambda a: a[0] if a[0] != "key" else "key-export")
def test_commands_on_a_missing_home(cli, src, tmp_path, args):
    args = [str(tmp_path / "out") if a == "OUT" else str(src) if a == "SRC" else a
            for a in args]
    message = cli.fail(*args)
    assert f"no schoolmesh home at {cli.home}" in message and "schoolmesh init" in message
    assert not cli.home.exists()
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(cli, home):
    result = cli.run("--debug", "show", UNKNOWN_RID)
    assert result.exit_code != 0
    assert isinstance(result.exception, NotFound)
    plain = cli.run("show", UNKNOWN_RID)
    assert isinstance(plain.exception, SystemExit) and "Traceback" not in plain.output


# -- key export --------------------------------------------------------------------------------

def test_key_export_onto_a_folder_is_a_usage_error(cli, home, tmp_path):
    result = cli.run("key", "export", "-o", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_key_export_into_a_missing_folder(cli, home, tmp_path):
    target = tmp_path / "no-such-folder" / "key.pem"
    message = cli.fail("key", "export", "-o", target)
    assert str(target) in message and ".tmp" not in message
    assert not target.parent.exists()
