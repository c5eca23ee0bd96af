"""Happy paths of the schoolmesh CLI: identity, publish/update/retract, get, search, show, feed,
verify, key export, encrypted keys, and the help texts."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import click
import pytest

from cli.main import main
from conftest import block_digests
from crypto import CID_DAG_PB, CID_RAW, cid_codec, cid_from_str, load_key
from protocol import vocab

PASS = {"SCHOOLMESH_PASSPHRASE": "correct horse battery staple"}


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def tree(root: Path) -> dict[str, bytes]:
    """{relative posix path: bytes} of every regular file under root."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def block_files(home: Path) -> set[str]:
    """CIDs of every stored block (files and small.db)."""
    return set(block_digests(home))


def publish(cli: Any, *args: Any) -> dict[str, Any]:
    return cli.json("publish", *args)


# -- identity ----------------------------------------------------------------------------------

def test_init_then_id_json(cli, home):
    init = cli.identity
    assert init["school_id"].startswith("12D3KooW")
    assert init["name"] == "龙泉小学"
    assert init["role"] == "school"
    assert Path(init["home"]) == home
    assert cli.json("id") == {"school_id": init["school_id"], "name": "龙泉小学",
                              "role": "school"}
    assert stat.S_IMODE((home / "key.pem").stat().st_mode) == 0o600
    human = cli.ok("id").stdout
    assert "龙泉小学 (school)" in human and init["school_id"] in human


def test_init_demonstration_role(cli):
    out = cli.json("init", "--name", "Demo School", "--role", "demonstration")
    assert out["role"] == "demonstration"
    assert cli.json("id")["role"] == "demonstration"
    (profile,) = cli.json("feed")
    assert profile["kind"] == "profile"
    assert profile["body"] == {"name": "Demo School", "role": "demonstration"}


def test_two_homes_have_different_identities(cli, home, tmp_path):
    other = cli.json("init", "--name", "Other", home=tmp_path / "other")
    assert other["school_id"] != cli.identity["school_id"]


# -- publish -----------------------------------------------------------------------------------

def test_publish_single_file(cli, home, tmp_path):
    f = write(tmp_path / "notes.txt", "三角形的内角和\n")
    r = publish(cli, f, "--title", "三角形")
    assert r["version"] == 1
    assert r["resource_id"].startswith("r") and len(r["resource_id"]) == 27
    assert cid_codec(cid_from_str(r["content_cid"])) == CID_DAG_PB  # a UnixFS directory
    (entry,) = r["files"]
    assert entry["path"] == "notes.txt"
    assert entry["size"] == f.stat().st_size
    assert cid_codec(cid_from_str(entry["cid"])) == CID_RAW  # one chunk: the raw leaf itself
    assert entry["cid"] != r["content_cid"]
    human = cli.ok("publish", f, "--title", "again").stdout
    assert f"content: {r['content_cid']}" in human  # same bytes, same content root


def test_publish_nested_folder_with_chinese_names(cli, home, tmp_path):
    src = tmp_path / "分数的初步认识"
    files = {
        "教案.md": "# 分数的初步认识\n",
        "练习/第一课/题目.txt": "1/2 + 1/4 = ?\n",
        "练习/答案.txt": "3/4\n",
        "图片/pizza 🍕.svg": "<svg/>",
        "README": "plain ascii name",
    }
    for rel, text in files.items():
        write(src / rel, text)
    write(src / ".DS_Store", "hidden")
    write(src / ".git" / "config", "hidden folder")
    r = publish(cli, src, "--title", "分数的初步认识")
    paths = [f["path"] for f in r["files"]]
    assert sorted(paths) == sorted(files)  # hidden entries skipped, the folder name dropped
    assert paths == sorted(paths, key=lambda s: s.encode("utf-8"))
    out = tmp_path / "out"
    got = cli.json("get", r["resource_id"], "-o", out)
    assert got["resource_id"] == r["resource_id"]
    assert got["content_cid"] == r["content_cid"]
    assert tree(out) == {k: v.encode("utf-8") for k, v in files.items()}


def test_several_paths_make_one_resource(cli, home, tmp_path):
    a = write(tmp_path / "a.txt", "a")
    write(tmp_path / "folder" / "x" / "y.txt", "y")
    write(tmp_path / "folder" / "z.txt", "z")
    b = write(tmp_path / "b.bin", b"\x00\x01")
    r = publish(cli, a, tmp_path / "folder", b, "--title", "Mixed")
    assert [f["path"] for f in r["files"]] == ["a.txt", "b.bin", "x/y.txt", "z.txt"]
    assert [e["kind"] for e in cli.json("feed")] == ["profile", "resource.publish"]
    assert [s["resource_id"] for s in cli.json("search")] == [r["resource_id"]]


# -- get ---------------------------------------------------------------------------------------

def test_get_writes_byte_identical_files(cli, home, tmp_path):
    src = tmp_path / "src"
    write(src / "big.bin", os.urandom(2 * 1024 * 1024 + 12345))  # 3 chunks: a dag-pb file
    write(src / "empty.txt", b"")
    write(src / "sub" / "small.txt", "小")
    r = publish(cli, src, "--title", "Bytes")
    big = next(f for f in r["files"] if f["path"] == "big.bin")
    assert cid_codec(cid_from_str(big["cid"])) == CID_DAG_PB
    out = tmp_path / "out"
    got = cli.json("get", r["resource_id"], "-o", out)
    assert tree(out) == tree(src)
    assert sorted((f["path"], f["size"]) for f in got["files"]) == \
        sorted((p, len(b)) for p, b in tree(src).items())
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


def test_get_by_content_cid_and_by_file_cid(cli, home, tmp_path):
    src = tmp_path / "src"
    write(src / "one.txt", "one")
    write(src / "deep" / "two.txt", "two")
    big = os.urandom(1024 * 1024 + 1)
    write(src / "big.bin", big)
    r = publish(cli, src, "--title", "CIDs")
    got = cli.json("get", r["content_cid"], "-o", tmp_path / "by-root")
    assert got["resource_id"] is None
    assert tree(tmp_path / "by-root") == tree(src)
    cids = {f["path"]: f["cid"] for f in r["files"]}
    for path, expected in (("deep/two.txt", b"two"), ("big.bin", big)):
        out = tmp_path / ("file-" + path.replace("/", "_"))
        got = cli.json("get", cids[path], "-o", out)
        assert tree(out) == {cids[path]: expected}  # named after its CID
        assert got["files"] == [{"path": cids[path], "cid": cids[path], "size": len(expected)}]


# -- update / retract --------------------------------------------------------------------------

def test_update_title_keeps_file_cids(cli, home, tmp_path):
    write(tmp_path / "src" / "a.txt", "a")
    r = publish(cli, tmp_path / "src", "--title", "Old title", "--subject", "art")
    blocks = block_files(home)
    u = cli.json("update", r["resource_id"], "--title", "Brand new")
    assert u["resource_id"] == r["resource_id"]
    assert u["version"] == 2
    assert u["content_cid"] == r["content_cid"]
    assert u["files"] == r["files"]
    assert block_files(home) == blocks
    s = cli.json("show", r["resource_id"])
    assert s["version"] == 2
    assert s["meta"]["title"] == "Brand new"
    assert s["meta"]["about"] == ["art"]  # untouched metadata is kept
    assert [(v["version"], v["signature"]) for v in s["versions"]] == [(1, "valid"), (2, "valid")]
    assert [x["resource_id"] for x in cli.json("search", "brand")] == [r["resource_id"]]
    assert cli.json("search", "old") == []


def test_update_with_new_files_reuses_unchanged_blocks(cli, home, tmp_path):
    v1 = tmp_path / "v1"
    write(v1 / "same.txt", "unchanged content")
    write(v1 / "gone.txt", "only in version 1")
    r = publish(cli, v1, "--title", "Versions")
    before = block_files(home)
    v2 = tmp_path / "v2"
    write(v2 / "same.txt", "unchanged content")
    write(v2 / "new.txt", "only in version 2")
    u = cli.json("update", r["resource_id"], v2)
    assert u["version"] == 2 and u["content_cid"] != r["content_cid"]
    old = {f["path"]: f["cid"] for f in r["files"]}
    new = {f["path"]: f["cid"] for f in u["files"]}
    assert set(new) == {"same.txt", "new.txt"}
    assert new["same.txt"] == old["same.txt"]
    after = block_files(home)
    # exactly two new blocks: new.txt's leaf and the new directory node
    assert before <= after and len(after - before) == 2
    cli.ok("get", r["resource_id"], "-o", tmp_path / "out")
    assert tree(tmp_path / "out") == tree(v2)


def test_retract_hides_from_search_but_show_says_retracted(cli, home, tmp_path):
    f = write(tmp_path / "old.txt", "old")
    keep = publish(cli, write(tmp_path / "keep.txt", "keep"), "--title", "Rainbow colours")
    r = publish(cli, f, "--title", "Rainbow physics")
    assert len(cli.json("search", "rainbow")) == 2
    out = cli.json("retract", r["resource_id"], "--reason", "errors in the diagram")
    assert out["retracted"] is True and out["resource_id"] == r["resource_id"]
    assert [x["resource_id"] for x in cli.json("search", "rainbow")] == [keep["resource_id"]]
    assert [x["resource_id"] for x in cli.json("search")] == [keep["resource_id"]]
    s = cli.json("show", r["resource_id"])
    assert s["retracted"] is True
    assert s["retract_reason"] == "errors in the diagram"
    assert "RETRACTED: errors in the diagram" in cli.ok("show", r["resource_id"]).stdout
    assert cli.json("feed")[-1]["kind"] == "resource.retract"


# -- search ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def library(tmp_path_factory, cli_at) -> dict[str, str]:
    """A home with four resources; returns {short name: resource id}."""
    tmp = tmp_path_factory.mktemp("library")
    cli = cli_at(tmp / "home")
    cli.ok("init", "--name", "Search School")
    specs = {
        "fractions_zh": ["--title", "分数的初步认识", "--subject", "数学", "--level",
                         "lower-primary", "--type", "lesson-plan", "--keyword", "分数"],
        "water_en": ["--title", "The water cycle", "--description", "Rivers, clouds and rain",
                     "--subject", "science", "--level", "upper-primary", "--type",
                     "worksheet", "--language", "en", "--keyword", "evaporation"],
        "fractions_en": ["--title", "Counting fractions", "--subject", "Mathematics",
                         "--level", "lower-primary", "--level", "upper-primary", "--type",
                         "exercise", "--language", "en-GB"],
        "water_zh": ["--title", "水的循环", "--subject", "科学", "--level", "upper-primary",
                     "--type", "worksheet", "--description", "蒸发和降水"],
    }
    ids = {}
    for name, args in specs.items():
        f = write(tmp / name / "file.txt", name)
        ids[name] = cli.json("publish", f, *args)["resource_id"]
    ids["_home"] = str(cli.home)
    return ids


@pytest.mark.parametrize(("args", "expected"), [
    (["分数"], {"fractions_zh"}),                  # two-character Chinese word
    (["初步认识"], {"fractions_zh"}),               # longer Chinese phrase
    (["数"], {"fractions_zh"}),                    # single Chinese character
    (["水"], {"water_zh"}),
    (["蒸发"], {"water_zh"}),                       # in the description
    (["认识分数"], set()),                          # same characters, not a phrase of the text
    (["分母"], set()),
    (["fraction"], {"fractions_en"}),              # stemmed plural
    (["river"], {"water_en"}),                     # stemmed, from the description
    (["evaporation"], {"water_en"}),               # keyword
    (["cycles"], {"water_en"}),                    # plural query, singular text
    (["water rain"], {"water_en"}),                # every term must match
    (["water snow"], set()),
    (["--level", "lower-primary"], {"fractions_zh", "fractions_en"}),
    (["--level", "upper-primary"], {"water_en", "fractions_en", "water_zh"}),
    (["--subject", "数学"], {"fractions_zh"}),
    (["--subject", "mathematics"], {"fractions_en"}),  # case-insensitive subject
    (["--language", "en"], {"water_en", "fractions_en"}),  # en matches en-GB
    (["--language", "en-GB"], {"fractions_en"}),
    (["--language", "zh"], {"fractions_zh", "water_zh"}),
    (["--type", "worksheet"], {"water_en", "water_zh"}),
    (["--type", "game"], set()),
    (["fraction", "--language", "zh"], set()),
    (["--level", "upper-primary", "--type", "worksheet", "--language", "zh-CN"], {"water_zh"}),
    ([], {"fractions_zh", "water_en", "fractions_en", "water_zh"}),
    (["--school", "Search School"], {"fractions_zh", "water_en", "fractions_en", "water_zh"}),
    (['" * ()'], set()),                           # FTS5 syntax in user text is inert
    (["NOT OR"], set()),
    (["fractions OR water"], set()),              # OR is a word, not an operator
])
def test_search(library, cli_at, args, expected):
    cli = cli_at(Path(library["_home"]))
    rows = cli.json("search", *args)
    by_id = {v: k for k, v in library.items()}
    assert {by_id[r["resource_id"]] for r in rows} == expected
    assert len(rows) == len(expected)


def test_search_limit_and_human_output(library, cli_at):
    cli = cli_at(Path(library["_home"]))
    assert len(cli.json("search", "--limit", "2")) == 2
    human = cli.ok("search", "分数").stdout
    assert library["fractions_zh"] in human and "分数的初步认识" in human
    assert cli.ok("search", "nothingmatches").stdout.strip() == "no resources found"


def test_search_language_is_case_insensitive(library, cli_at):
    cli = cli_at(Path(library["_home"]))
    zh = {r["resource_id"] for r in cli.json("search", "--language", "zh-CN")}
    assert {r["resource_id"] for r in cli.json("search", "--language", "zh-cn")} == zh


# -- show / lineage / feed / verify ------------------------------------------------------------

def test_show_json_versions_and_lineage(cli, home, tmp_path):
    a = publish(cli, write(tmp_path / "a.txt", "a"), "--title", "Original lesson",
                "--level", "lower-primary", "--time-required", "PT40M", "--creator", "王老师")
    b = publish(cli, write(tmp_path / "b.txt", "b"), "--title", "Adapted lesson",
                "--based-on", a["resource_id"])
    sa = cli.json("show", a["resource_id"])
    assert sa["school_id"] == cli.identity["school_id"]
    assert sa["school"] == "龙泉小学"
    assert sa["signature"] == "valid" and sa["retracted"] is False and sa["local"] is True
    assert [(v["version"], v["signature"], v["content_cid"]) for v in sa["versions"]] == \
        [(1, "valid", a["content_cid"])]
    assert sa["meta"]["timeRequired"] == "PT40M" and sa["meta"]["creator"] == "王老师"
    assert sa["meta"]["license"] == vocab.DEFAULT_LICENSE
    assert sa["meta"]["inLanguage"] == "zh-CN"
    assert sa["lineage"]["based_on"] == []
    assert [x["resource_id"] for x in sa["lineage"]["adaptations"]] == [b["resource_id"]]
    sb = cli.json("show", b["resource_id"])
    assert sb["lineage"]["adaptations"] == []
    assert sb["lineage"]["based_on"] == [{"resource_id": a["resource_id"],
                                          "title": "Original lesson",
                                          "school_id": cli.identity["school_id"],
                                          "known": True}]
    human = cli.ok("show", b["resource_id"]).stdout
    assert f"based on: {a['resource_id']} Original lesson" in human
    assert "signature valid" in human
    assert f"adapted as: {b['resource_id']} Adapted lesson" in \
        cli.ok("show", a["resource_id"]).stdout


def test_based_on_a_resource_not_in_this_library(cli, home, tmp_path):
    unknown = "r" + "a" * 26
    r = publish(cli, write(tmp_path / "a.txt", "a"), "--title", "Adapted",
                "--based-on", unknown)
    s = cli.json("show", r["resource_id"])
    assert s["lineage"]["based_on"] == [{"resource_id": unknown, "title": None,
                                         "school_id": None, "known": False}]
    assert "(not in this library)" in cli.ok("show", r["resource_id"]).stdout


def test_feed_json(cli, home, tmp_path):
    r = publish(cli, write(tmp_path / "a.txt", "a"), "--title", "Feed me")
    cli.ok("update", r["resource_id"], "--title", "Feed me more")
    cli.ok("retract", r["resource_id"])
    entries = cli.json("feed")
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert [e["kind"] for e in entries] == ["profile", "resource.publish", "resource.update",
                                            "resource.retract"]
    assert entries[0]["prev"] is None
    for earlier, later in zip(entries, entries[1:]):
        assert later["prev"] == earlier["hash"]
    assert {e["school_id"] for e in entries} == {cli.identity["school_id"]}
    assert entries[2]["body"]["resource"] == r["resource_id"]
    assert cli.json("feed", cli.identity["school_id"]) == entries
    assert len(cli.ok("feed").stdout.splitlines()) == 4


def test_verify_clean_home(cli, home, tmp_path):
    write(tmp_path / "src" / "big.bin", os.urandom(1024 * 1024 + 7))
    write(tmp_path / "src" / "a.txt", "a")
    publish(cli, tmp_path / "src", "--title", "Sound")
    result = cli.ok("verify")
    assert "all sound" in result.stdout and "PROBLEM" not in result.stdout
    d = cli.json("verify")
    assert d["ok"] is True and d["problems"] == []
    assert d["entries_checked"] == 2
    # directory + big.bin's node and two leaves + a.txt's leaf
    assert d["blocks_checked"] == 5 and d["unreferenced_blocks"] == 0


# -- keys --------------------------------------------------------------------------------------

def test_key_export(cli, home, tmp_path):
    target = tmp_path / "backup" / "school-key.pem"
    target.parent.mkdir()
    result = cli.ok("key", "export", "-o", target)
    assert "NOT encrypted" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = target.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_key(target).school_id == cli.identity["school_id"]
    message = cli.fail("key", "export", "-o", target)
    assert "already exists" in message and str(target) in message
    assert target.read_bytes() == data


def test_encrypted_key(cli, tmp_path):
    cli.json("init", "--name", "Locked", "--encrypt-key", env=PASS)
    assert b"ENCRYPTED PRIVATE KEY" in (cli.home / "key.pem").read_bytes()
    f = write(tmp_path / "a.txt", "a")
    r = cli.json("publish", f, "--title", "With passphrase", env=PASS)
    before = cli.state()
    message = cli.fail("publish", f, "--title", "Without passphrase")
    assert "passphrase" in message and "SCHOOLMESH_PASSPHRASE" in message
    message = cli.fail("publish", f, "--title", "Wrong passphrase",
                       env={"SCHOOLMESH_PASSPHRASE": "wrong"})
    assert "wrong passphrase" in message
    assert cli.state() == before
    # reading needs no key
    assert cli.json("show", r["resource_id"])["meta"]["title"] == "With passphrase"
    assert len(cli.json("search")) == 1
    # the backup is encrypted with the same passphrase
    cli.fail("key", "export", "-o", tmp_path / "k1.pem")
    assert not (tmp_path / "k1.pem").exists()
    assert "encrypted with the same passphrase" in \
        cli.ok("key", "export", "-o", tmp_path / "k2.pem", env=PASS).stderr
    assert load_key(tmp_path / "k2.pem", PASS["SCHOOLMESH_PASSPHRASE"].encode()).school_id \
        == cli.json("id")["school_id"]


def test_encrypt_key_without_passphrase_or_terminal_is_refused(cli):
    result = cli.run("init", "--name", "X", "--encrypt-key")
    assert result.exit_code == 2
    assert "SCHOOLMESH_PASSPHRASE" in result.stderr and "Traceback" not in result.output
    assert not cli.home.exists()


# -- help --------------------------------------------------------------------------------------

def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


COMMANDS = [((), main), *_commands(main)]
# Options whose missing help text is a known, reported bug.
def _option_cases():
    for path, cmd in COMMANDS:
        # cmd.params, not get_params(): that would build and cache a --help option from a
        # bare Context, dropping the group's "-h" alias for every later test.
        for param in cmd.params:
            if isinstance(param, click.Option):
                case = (" ".join(path), max(param.opts, key=len))
                yield pytest.param(cmd, param, id=f"{case[0] or 'main'} {case[1]}")


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "main")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0(path, flag, tmp_path, cli_at):
    result = cli_at(tmp_path / "no-home").run(*path, flag)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert not (tmp_path / "no-home").exists()  # help never creates a home


@pytest.mark.parametrize("path_cmd", COMMANDS, ids=lambda pc: " ".join(pc[0]) or "main")
def test_every_command_has_help(path_cmd):
    _, cmd = path_cmd
    assert (cmd.help or "").strip()
    assert cmd.get_short_help_str().strip()


@pytest.mark.parametrize(("cmd", "param"), list(_option_cases()))
def test_every_option_has_help(cmd, param):
    assert (param.help or "").strip(), f"{param.opts} of {cmd.name} has no help text"


def test_update_help_does_not_call_title_required(tmp_path, cli_at):
    out = cli_at(tmp_path / "h").ok("update", "--help").stdout
    assert "(required)" not in out


def test_version(tmp_path, cli_at):
    result = cli_at(tmp_path / "h").ok("--version")
    assert "0.1.0" in result.stdout
