"""Shared fixtures for the CLI tests: a fresh node home and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

from cli.main import main

# Property tests (tests/test_properties_*.py) run the same examples on every machine and every
# run: no random seed, no example database left behind, no timing (a loaded 2-core machine must
# not fail a test). A failure prints the blob that reproduces it (@reproduce_failure).
settings.register_profile("schoolmesh", derandomize=True, database=None, deadline=None,
                          max_examples=200, print_blob=True)
settings.load_profile("schoolmesh")

# The CLI speaks the locale's language (cli/i18n.py); the tests read its English unless they set
# a locale themselves (tests/test_cli_i18n.py), whatever the machine's locale is.
for _var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
    os.environ.pop(_var, None)
os.environ["LANG"] = "C.UTF-8"

class Cli:
    """Runs ``schoolmesh --home HOME ...`` in-process, never touching the user's real home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.identity: dict[str, Any] = {}

    def run(self, *args: Any, env: dict[str, str | None] | None = None,
            home: Path | None = None) -> Result:
        full_env: dict[str, str | None] = {"SCHOOLMESH_HOME": None,
                                           "SCHOOLMESH_PASSPHRASE": None}
        full_env.update(env or {})
        return CliRunner().invoke(main, ["--home", str(home or self.home), *map(str, args)],
                                  env=full_env)

    def ok(self, *args: Any, **kw: Any) -> Result:
        result = self.run(*args, **kw)
        assert result.exit_code == 0, (
            f"{args} exited {result.exit_code}\nstdout: {result.stdout}\n"
            f"stderr: {result.stderr}\nexception: {result.exception!r}")
        return result

    def json(self, *args: Any, **kw: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kw).stdout)

    def fail(self, *args: Any, **kw: Any) -> str:
        """Run a command that must be refused as a user error; return the error message.

        The contract: exit status 1, exactly one line ``error: ...`` on stderr, no traceback,
        nothing on stdout.
        """
        result = self.run(*args, **kw)
        assert result.exit_code == 1, (
            f"{args} exited {result.exit_code}\nstdout: {result.stdout}\n"
            f"stderr: {result.stderr}\nexception: {result.exception!r}")
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert lines[0] != "error: " and "unexpected" not in lines[0], lines[0]
        assert result.stdout == ""
        return lines[0][len("error: "):]

    def state(self) -> dict[str, Any]:
        """Everything stored in the home: key bytes, every block file's hash, every DB row."""
        blocks = block_digests(self.home)
        with contextlib.closing(sqlite3.connect(self.home / "schoolmesh.db")) as conn:
            tables = [t for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            rows = {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                    for t in tables}
        return {"key": (self.home / "key.pem").read_bytes(), "blocks": blocks, "db": rows}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A CLI bound to ``tmp_path/home`` (not created yet)."""
    return Cli(tmp_path / "home")


@pytest.fixture
def home(cli: Cli) -> Path:
    """A freshly initialised school home; ``cli.identity`` holds what ``init --json`` printed."""
    cli.identity = cli.json("init", "--name", "龙泉小学")
    return cli.home


@pytest.fixture(scope="session")
def cli_at() -> type[Cli]:
    """``cli_at(path)``: a CLI bound to any home folder (for module-scoped or extra homes)."""
    return Cli


# -- the block store as tests see it: blocks live in files or in small.db --------------------

def block_digests(home: Path) -> dict[str, str]:
    """{CID string: sha256 of the stored bytes} for every block, read without verification."""
    from crypto import cid_to_str
    from node.blockstore import BlockStore
    store = BlockStore(home / "blocks")
    try:
        return {cid_to_str(c): hashlib.sha256(store.get(c, verify=False)).hexdigest()
                for c in store}
    finally:
        store.close()


def corrupt_block(home: Path, cid: str) -> None:
    """Flip one bit in the middle of a stored block, wherever it is kept."""
    from crypto import cid_from_str
    from node.blockstore import BlockStore
    store = BlockStore(home / "blocks")
    try:
        c = cid_from_str(cid)
        data = bytearray(store.get(c, verify=False))
        data[len(data) // 2] ^= 0x01
        if store.is_small(c):
            with contextlib.closing(sqlite3.connect(home / "blocks" / "small.db")) as db:
                db.execute("UPDATE small SET data = ? WHERE cid = ?", (bytes(data), c))
                db.commit()
        else:
            store.path(c).write_bytes(bytes(data))
    finally:
        store.close()


def remove_block(home: Path, cid: str) -> None:
    from crypto import cid_from_str
    from node.blockstore import BlockStore
    store = BlockStore(home / "blocks")
    try:
        c = cid_from_str(cid)
        if store.is_small(c):
            with contextlib.closing(sqlite3.connect(home / "blocks" / "small.db")) as db:
                db.execute("DELETE FROM small WHERE cid = ?", (c,))
                db.commit()
        else:
            store.path(c).unlink()
    finally:
        store.close()
