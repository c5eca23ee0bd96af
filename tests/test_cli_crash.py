"""Process-level behaviour: concurrent CLI processes on one home, and SIGKILL mid-publish.

These run the real ``schoolmesh`` script; outcomes are then checked in-process (faster).
Every wait on a process is bounded by TIMEOUT, and every process is reaped even on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import block_digests
from crypto import CID_RAW, make_cid
from node.blockstore import BlockStore

_SCRIPT = Path(sys.executable).with_name("schoolmesh")
SCHOOLMESH = [str(_SCRIPT)] if _SCRIPT.exists() else \
    [sys.executable, "-c", "from cli.main import main; main()"]
TIMEOUT = 120  # seconds
MIB = 96  # size of the file killed mid-publish: big enough to still be writing when killed
KILL_AFTER = 8  # blocks it must have stored before the kill


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("SCHOOLMESH_HOME", "SCHOOLMESH_PASSPHRASE")}


def _argv(home: Path, args: tuple[Any, ...]) -> list[str]:
    return [*SCHOOLMESH, "--home", str(home), *map(str, args)]


@contextlib.contextmanager
def processes(home: Path, *commands: tuple[Any, ...]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start one schoolmesh process per command; on exit kill any still running and reap all."""
    with contextlib.ExitStack() as stack:
        procs = []
        for args in commands:
            p = stack.enter_context(subprocess.Popen(
                _argv(home, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=_env()))
            stack.callback(lambda p=p: p.poll() is None and p.kill())  # runs before the reap
            procs.append(p)
        yield procs


def finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=TIMEOUT)
    return p.returncode, out, err


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def stored_blocks(home: Path) -> list[str]:
    return list(block_digests(home))


def wait_until(condition: Any, procs: list[subprocess.Popen[str]], what: str) -> None:
    """Poll ``condition`` until true, failing if a process ends first or TIMEOUT passes."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert all(p.poll() is None for p in procs), f"a process ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    p = subprocess.run(_argv(h, ("init", "--name", "Concurrent School")), capture_output=True,
                       text=True, timeout=TIMEOUT, env=_env())
    assert p.returncode == 0, p.stderr
    return h


def test_two_processes_publish_into_one_home_at_once(home, tmp_path, cli_at):
    shared = os.urandom(3 * 1024 * 1024)  # the same blocks, written by both at once
    own = {}
    for name in ("alpha", "beta"):
        write(tmp_path / name / "shared.bin", shared)
        own[name] = os.urandom(2 * 1024 * 1024 + 1)
        write(tmp_path / name / f"{name}.bin", own[name])
    with processes(home, *[("publish", tmp_path / name, "--title", f"Lesson {name}", "--json")
                           for name in own]) as procs:
        outcomes = [finish(p) for p in procs]
    for code, _, err in outcomes:
        assert code == 0 and err == "", err
    results = [json.loads(out) for _, out, _ in outcomes]

    cli = cli_at(home)
    entries = cli.json("feed")
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert [e["kind"] for e in entries] == ["profile", "resource.publish", "resource.publish"]
    for earlier, later in zip(entries, entries[1:]):
        assert later["prev"] == earlier["hash"]
    assert cli.json("verify")["problems"] == []  # and exit status 0 (checked by cli.json)
    for r, name in zip(results, own):
        assert [x["resource_id"] for x in cli.json("search", name)] == [r["resource_id"]]
        out = tmp_path / f"out-{name}"
        cli.ok("get", r["resource_id"], "-o", out)
        assert (out / "shared.bin").read_bytes() == shared
        assert (out / f"{name}.bin").read_bytes() == own[name]
    assert not list((home / "blocks" / "tmp").iterdir())


def test_sigkill_during_publish_leaves_no_half_resource(home, tmp_path, cli_at):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(MIB):
            f.write(os.urandom(1024 * 1024))
    assert stored_blocks(home) == []

    with processes(home, ("publish", big, "--title", "Big video lesson")) as (proc,):
        wait_until(lambda: len(stored_blocks(home)) >= KILL_AFTER, [proc],
                   f"{KILL_AFTER} blocks were stored")
        assert proc.poll() is None, "publish finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        finish(proc)
    assert proc.returncode == -signal.SIGKILL

    cli = cli_at(home)
    partial = len(stored_blocks(home))
    # really interrupted: some leaves stored, not all (leaves + file node + folder node)
    assert KILL_AFTER <= partial < MIB + 2
    assert cli.json("search") == []
    assert cli.json("search", "video") == []
    assert [e["kind"] for e in cli.json("feed")] == ["profile"]
    report = cli.json("verify")  # exits 0
    assert report["ok"] is True and report["unreferenced_blocks"] == partial
    # The kill rarely lands inside a block's write, so plant what it leaves then: a temp file
    # of the dead writer; and one of a live writer (pid 1 always runs) that must be kept.
    tmp_dir = home / "blocks" / "tmp"
    dead = write(tmp_dir / f"{'a' * 20}.{proc.pid}.tmp", b"half a block")
    live = write(tmp_dir / f"{'b' * 20}.1.tmp", b"being written")
    assert cli.json("verify")["ok"] is True

    r = cli.json("publish", big, "--title", "Big video lesson")
    assert r["files"][0]["size"] == MIB * 1024 * 1024
    assert [x["resource_id"] for x in cli.json("search", "video")] == [r["resource_id"]]
    assert [e["seq"] for e in cli.json("feed")] == [1, 2]
    assert len(stored_blocks(home)) == MIB + 2
    report = cli.json("verify")
    assert report["ok"] is True and report["unreferenced_blocks"] == 0
    assert cli.json("show", r["resource_id"])["local"] is True
    # the dead writer's temporary file was cleaned by the next publish, the live one kept
    assert list(tmp_dir.iterdir()) == [live]
    assert not dead.exists()


def test_two_concurrent_updates_of_one_resource_are_both_kept_or_one_refused(home, tmp_path,
                                                                            cli_at):
    cli = cli_at(home)
    rid = cli.json("publish", write(tmp_path / "v1.txt", b"v1"), "--title", "T")["resource_id"]
    leaves = {}
    for name in ("x", "y"):
        data = f"version from {name}".encode()
        write(tmp_path / name / f"{name}.txt", data)
        leaves[name] = make_cid(CID_RAW, data)
    store = BlockStore(home / "blocks")
    # Hold the database write lock until both updates are in flight: each has read the
    # resource and stored its file (its leaf is in the store) before either may commit.
    with contextlib.closing(sqlite3.connect(home / "schoolmesh.db", isolation_level=None)) as lock:
        lock.execute("BEGIN IMMEDIATE")
        try:
            with processes(home, *[("update", rid, tmp_path / n, "--title", f"by {n}", "--json")
                                   for n in leaves]) as procs:
                try:
                    wait_until(lambda: all(store.has(c) for c in leaves.values()), procs,
                               "both updates stored their files")
                finally:
                    lock.execute("COMMIT")
                outcomes = [finish(p) for p in procs]
        finally:
            if lock.in_transaction:
                lock.execute("ROLLBACK")
    for code, _, err in outcomes:
        assert code == 0 or (code == 1 and err.startswith("error: ")), err
    succeeded = [json.loads(out) for code, out, _ in outcomes if code == 0]
    assert succeeded, "neither update went through"
    versions = {v["version"]: v["content_cid"] for v in cli.json("show", rid)["versions"]}
    # every update reported as done is a distinct version that the library really has
    assert len({r["version"] for r in succeeded}) == len(succeeded)
    for r in succeeded:
        assert versions.get(r["version"]) == r["content_cid"]
    assert len([e for e in cli.json("feed") if e["kind"] == "resource.update"]) == len(succeeded)
