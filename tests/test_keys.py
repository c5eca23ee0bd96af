"""Key files: format 2 (scrypt + AES-GCM), format 1 still loads, weak passphrases, permissions,
damaged files (specs/records.md "Key files", specs/vectors/keyfiles.json)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from crypto import BadKeyFile, SchoolKey, WrongPassphrase, load_key
from crypto.keys import KEY_FILE_LABEL

V = json.loads((Path(__file__).parents[1] / "specs/vectors/keyfiles.json").read_text("utf-8"))
DATA = Path(__file__).parent / "data"
PASS = {"SCHOOLMESH_PASSPHRASE": "correct horse battery staple"}


def test_format2_vector_loads_and_is_reproduced():
    v = V["format2"]
    key = SchoolKey.from_pem(v["pem"].encode(), v["passphrase"].encode("utf-8"))
    assert key.school_id == v["school_id"] and key.seed.hex() == v["seed"]
    again = key.to_pem(v["passphrase"].encode("utf-8"), salt=bytes.fromhex(v["salt"]),
                       nonce=bytes.fromhex(v["nonce"]))
    assert again.decode("ascii") == v["pem"]


def test_format1_written_by_the_previous_version_still_loads():
    v = V["format1"]
    assert (DATA / "key-v1-encrypted.pem").read_text("ascii") == v["pem"]
    key = load_key(DATA / "key-v1-encrypted.pem", v["passphrase"].encode())
    assert key.school_id == v["school_id"]
    with pytest.raises(WrongPassphrase):
        load_key(DATA / "key-v1-encrypted.pem", b"not the legacy passphrase")


@pytest.mark.parametrize("bad", V["bad"], ids=lambda b: b["why"])
def test_bad_format2_files_are_refused(bad):
    with pytest.raises(BadKeyFile, match=bad["error"]):
        SchoolKey.from_pem(bad["pem"].encode(), bad["passphrase"].encode("utf-8"))


def test_init_encrypts_with_scrypt(cli):
    cli.json("init", "--name", "Locked", "--encrypt-key", env=PASS)
    lines = (cli.home / "key.pem").read_bytes().strip().splitlines()
    assert lines[0] == b"-----BEGIN " + KEY_FILE_LABEL + b"-----"
    version, log2_n, r, p = base64.b64decode(b"".join(lines[1:-1]))[:4]
    assert (version, 2 ** log2_n, r, p) == (2, 2 ** 17, 8, 1)
    # the backup uses the same format and passphrase
    cli.ok("key", "export", "-o", cli.home.parent / "backup.pem", env=PASS)
    backup = (cli.home.parent / "backup.pem").read_bytes()
    assert backup.startswith(b"-----BEGIN " + KEY_FILE_LABEL + b"-----")
    assert load_key(cli.home.parent / "backup.pem",
                    PASS["SCHOOLMESH_PASSPHRASE"].encode()).school_id == cli.json("id")[
                        "school_id"]


@pytest.mark.parametrize("passphrase", ["short", "123456789", "九个汉字的口令很短了"[:9]])
def test_short_passphrase_is_refused(cli, passphrase):
    message = cli.fail("init", "--name", "X", "--encrypt-key",
                       env={"SCHOOLMESH_PASSPHRASE": passphrase})
    assert "at least 10 characters" in message and f"has {len(passphrase)}" in message
    assert not cli.home.exists()


def test_ten_characters_are_enough(cli):
    ten = "十个汉字的口令就够了吧"[:10]
    cli.json("init", "--name", "X", "--encrypt-key", env={"SCHOOLMESH_PASSPHRASE": ten})


def test_key_readable_by_others_gives_one_warning(cli, home, tmp_path):
    key = home / "key.pem"
    os.chmod(key, 0o640)
    f = tmp_path / "a.txt"
    f.write_text("a")
    result = cli.ok("publish", f, "--title", "still works", "--json")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and str(key) in warnings[0] and "chmod 600" in warnings[0]
    assert json.loads(result.stdout)["resource_id"]
    os.chmod(key, 0o600)
    assert "warning" not in cli.ok("publish", f, "--title", "quiet").stderr


@pytest.mark.parametrize("damage", [
    lambda b: b[:len(b) // 2],                                  # truncated
    lambda b: b"\x00\xff" * 40,                                 # not PEM at all
    lambda b: b.replace(b"PRIVATE KEY", b"SCHOOLMESH ENCRYPTED PRIVATE KEY"),  # wrong armour
], ids=["truncated", "garbage", "armour"])
def test_damaged_key_file_names_the_file(cli, home, tmp_path, damage):
    key = home / "key.pem"
    key.write_bytes(damage(key.read_bytes()))
    f = tmp_path / "a.txt"
    f.write_text("a")
    message = cli.fail("publish", f, "--title", "x", env=PASS)
    assert str(key) in message
