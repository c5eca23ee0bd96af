"""Backup files (specs/backup.md, specs/vectors/backup.json) and `backup` / `init --restore` /
`init --restore-key` on the command line (issue 14 points 1 and 2)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from crypto import SchoolKey, seal, unseal
from node import backup
from node.errors import NodeError
from protocol import backup as pb

V = json.loads((Path(__file__).parents[1] / "specs/vectors/backup.json").read_text("utf-8"))
PASS = {"SCHOOLMESH_BACKUP_PASSPHRASE": "山高水长-backup-2026"}


def test_vector_seals_and_opens():
    plain = bytes.fromhex(V["plaintext"])
    sealed = seal(V["passphrase"].encode(), plain, V["magic"].encode(),
                  salt=bytes.fromhex(V["salt"]), nonce=bytes.fromhex(V["nonce"]))
    assert sealed.hex() == V["file"]
    assert unseal(bytes.fromhex(V["file"]), V["passphrase"].encode(), pb.MAGIC) == plain
    b = pb.decode(plain)
    assert len(b.feed) == V["entries"]
    assert SchoolKey.from_pem(b.key).school_id == V["school_id"] == b.settings["school_id"]
    assert pb.encode(b) == plain


def test_vector_file_is_read(tmp_path):
    f = tmp_path / "v.smb"
    f.write_bytes(bytes.fromhex(V["file"]))
    b, key = backup.read_backup(f, V["passphrase"].encode())
    assert key.school_id == V["school_id"]
    assert b.tables["teachers"][0]["name"] == "王老师"


@pytest.mark.parametrize("case", V["bad"], ids=[c["why"] for c in V["bad"]])
def test_bad_vectors_are_refused(tmp_path, case):
    f = tmp_path / "bad.smb"
    f.write_bytes(bytes.fromhex(case["file"]))
    with pytest.raises(NodeError, match=case["error"]):
        backup.read_backup(f, case["passphrase"].encode())


def _lesson(tmp_path: Path, name: str) -> Path:
    d = tmp_path / f"src-{name}"
    d.mkdir(exist_ok=True)
    (d / "lesson.md").write_text(f"# {name}\n", "utf-8")
    return d


def test_backup_and_restore_carry_what_cannot_be_fetched(cli, home, tmp_path, cli_at):
    cli.json("teacher", "add", "wang", env={"SCHOOLMESH_TEACHER_PASSWORD": "粉笔和黑板-2026"})
    cid = cli.json("community", "create", "青山片区")["community_id"]
    cli.json("community", "invite", "--seed", "/ip4/127.0.0.1/tcp/4004/p2p/"
             + cli.identity["school_id"])
    cli.json("subscribe", "--subject", "数学")
    cli.json("limits", "set", "--up", "1MiB/s")
    r = cli.json("publish", str(_lesson(tmp_path, "一")), "--title", "一")
    out = tmp_path / "b.smb"
    made = cli.json("backup", "-o", out, env=PASS)
    assert made["teachers"] == 1 and made["communities"] == 1 and made["invites"] == 1 and made["subscriptions"] == 1
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert b"SCHOOLMESH BACKUP" in out.read_bytes()[:32]
    assert cli.identity["school_id"].encode() not in out.read_bytes()  # encrypted
    # never overwritten
    assert "already exists" in cli.fail("backup", "-o", out, env=PASS)

    other = cli_at(tmp_path / "restored")
    got = other.json("init", "--restore", out, env=PASS)
    assert got["school_id"] == cli.identity["school_id"] and got["own_head"] == "learning"
    assert other.json("id") == cli.json("id")
    before, after = cli.state()["db"], other.state()["db"]
    for table in ("teachers", "teacher_keys", "teacher_certs", "communities", "invites",
                  "subscriptions", "feeds"):
        assert after[table] == before[table], table
    assert sorted(e[:6] for e in after["entries"]) == sorted(e[:6] for e in before["entries"])
    assert [r for r in after["settings"] if r[0] not in ("own_head",)] == \
        [r for r in before["settings"] if r[0] not in ("own_head",)]
    assert (tmp_path / "restored" / "key.pem").read_bytes() != b""
    assert other.json("community", "list")[0]["community_id"] == cid
    assert [x["resource_id"] for x in other.json("search")] == [r["resource_id"]]
    # its head is unknown: it signs nothing, and makes no backup of itself
    assert "restored" in other.fail("publish", str(_lesson(tmp_path, "二")), "--title", "二")
    assert "restored" in other.fail("retract", r["resource_id"])
    assert "start the node" in other.fail("backup", "-o", tmp_path / "c.smb", env=PASS)
    assert other.state()["db"]["entries"] == after["entries"]


def test_restore_refuses_bad_input_and_leaves_nothing(cli, home, tmp_path, cli_at):
    out = tmp_path / "b.smb"
    cli.json("backup", "-o", out, env=PASS)
    target = cli_at(tmp_path / "new")
    assert "wrong passphrase" in target.fail(
        "init", "--restore", out, env={"SCHOOLMESH_BACKUP_PASSPHRASE": "wrong one entirely"})
    assert "cannot read" in target.fail("init", "--restore", tmp_path / "nope", env=PASS)
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".new")] == []
    # an existing home is never touched
    assert "already exists" in cli.fail("init", "--restore", out, env=PASS)
    assert "at least 10" in cli.fail("backup", "-o", tmp_path / "weak.smb",
                                     env={"SCHOOLMESH_BACKUP_PASSPHRASE": "short"})
    assert not (tmp_path / "weak.smb").exists()


def test_restore_key_fresh_or_learning(cli, home, tmp_path, cli_at):
    key_file = tmp_path / "key.pem"
    cli.ok("key", "export", "-o", key_file)
    fresh = cli_at(tmp_path / "fresh")
    got = fresh.json("init", "--restore-key", key_file, "--name", "龙泉小学", "--fresh")
    assert got["school_id"] == cli.identity["school_id"] and got["own_head"] == "known"
    assert got["feed_seq"] == 1
    fresh.json("publish", str(_lesson(tmp_path, "一")), "--title", "一")
    learning = cli_at(tmp_path / "learning")
    got = learning.json("init", "--restore-key", key_file, "--name", "龙泉小学")
    assert got["own_head"] == "learning" and got["feed_seq"] == 0
    assert "restored" in learning.fail("publish", str(_lesson(tmp_path, "二")), "--title", "二")


def test_a_bundle_of_its_feed_teaches_a_restored_school_its_head(cli, home, tmp_path, cli_at):
    first = cli.json("publish", str(_lesson(tmp_path, "一")), "--title", "一")
    out = tmp_path / "b.smb"
    cli.json("backup", "-o", out, env=PASS)
    second = cli.json("publish", str(_lesson(tmp_path, "二")), "--title", "二")
    car = tmp_path / "all.car"
    cli.json("export", "-o", car)
    restored = cli_at(tmp_path / "restored")
    restored.json("init", "--restore", out, env=PASS)
    assert "restored" in restored.fail("publish", str(_lesson(tmp_path, "三")), "--title", "三")
    restored.json("import", car)
    third = restored.json("publish", str(_lesson(tmp_path, "三")), "--title", "三")
    seqs = [e["seq"] for e in restored.json("feed")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 4
    assert {r["resource_id"] for r in restored.json("search")} == \
        {first["resource_id"], second["resource_id"], third["resource_id"]}
    assert restored.json("verify")["ok"]
