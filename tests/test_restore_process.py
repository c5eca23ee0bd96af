"""The restore story with real `schoolmesh` processes (issue 14 points 1 and 2): a member
school publishes, its disk dies, it is restored from a backup older than its last entries,
and it learns those entries from its community's demonstration school before it signs a new
one: its feed never forks, it is still a member, and its content comes back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from test_net_processes import run, wait_until

EXE = str(Path(sys.executable).parent / "schoolmesh")
PASS = {"SCHOOLMESH_BACKUP_PASSPHRASE": "山高水长-backup-2026"}



@pytest.fixture
def daemons(tmp_path):
    """``daemons(name, role)`` inits (unless the home exists) and starts a node process;
    ``daemons.stop(name)`` stops it. Every process is stopped at the end."""
    import signal
    procs: dict[str, subprocess.Popen] = {}
    logs = []

    def stop(name: str) -> None:
        proc = procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def start(name: str, role: str = "school", home: Path | None = None) -> Path:
        home = home or tmp_path / name
        if not home.exists():
            ok_json(home, "init", "--name", name, "--role", role)
        log = open(tmp_path / f"{name}.log", "a")
        logs.append(log)
        (home / "control.json").unlink(missing_ok=True)
        procs[name] = proc = subprocess.Popen(
            [EXE, "--home", str(home), "start", "--no-mdns", "--no-web",
             "--listen", "/ip4/127.0.0.1/tcp/0"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: (home / "control.json").exists() or proc.poll() is not None,
                   f"{name} started")
        assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
        return home
    start.stop = stop
    try:
        yield start
    finally:
        for name in list(procs):
            stop(name)
        for log in logs:
            log.close()


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "--home", str(home), *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **PASS, **(env or {})})


def ok_json(home: Path, *args: str) -> dict | list:
    out = cli(home, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def publish(home: Path, tmp_path: Path, title: str) -> dict:
    src = tmp_path / f"src-{title}"
    src.mkdir()
    (src / "教案.md").write_text(f"# {title}\n" * 3000, "utf-8")
    return ok_json(home, "publish", str(src), "--title", title)


def db_rows(home: Path, sql: str, *args) -> list:
    with contextlib.closing(sqlite3.connect(f"file:{home / 'schoolmesh.db'}?mode=ro",
                                            uri=True)) as conn:
        return conn.execute(sql, args).fetchall()


def entries_of(home: Path, school_id: str) -> list[dict]:
    out = cli(home, "feed", school_id, "--json")
    return json.loads(out.stdout) if out.returncode == 0 else []


def test_restored_school_learns_its_head_before_it_signs_and_never_forks(daemons, tmp_path):
    # the demonstration school founds a community; the school joins it
    demo = daemons("demo", "demonstration")
    ok_json(demo, "community", "create", "青山片区")
    school = daemons("school")
    sid = run(school, "id")["school_id"]
    code = ok_json(demo, "community", "invite")["code"]
    ok_json(school, "community", "join", code)

    r1 = publish(school, tmp_path, "第一课")
    backup_file = tmp_path / "school.smb"
    made = ok_json(school, "backup", "-o", str(backup_file))
    s1 = made["entries"]
    r2 = publish(school, tmp_path, "第二课")
    r3 = publish(school, tmp_path, "第三课")
    # the school also signs holdings summaries now and then (specs/oversight.md §2): count
    # its publications, and take the head from the feed itself
    assert [e["kind"] for e in entries_of(school, sid)[s1:]].count("resource.publish") == 2
    wait_until(lambda: len(entries_of(demo, sid)) == len(entries_of(school, sid)),
               "the seed holds the school's feed")
    wait_until(lambda: {p["resource_id"] for p in ok_json(demo, "pins")["pins"]
                        if p["reason"] == "community"} >= {r1["resource_id"], r2["resource_id"],
                                                           r3["resource_id"]},
               "the seed holds the school's content")

    # the disk dies
    daemons.stop("school")
    s3 = len(entries_of(school, sid))
    wait_until(lambda: len(entries_of(demo, sid)) == s3, "the seed holds the school's feed")
    shutil.rmtree(school)

    restored = ok_json(school, "init", "--restore", str(backup_file))
    assert restored["school_id"] == sid and restored["feed_seq"] == s1
    assert restored["own_head"] == "learning"
    # until it has learnt its head it signs nothing: entry s1 + 1 exists already
    src = tmp_path / "too-early"
    src.mkdir()
    (src / "a.txt").write_text("a", "utf-8")
    refused = cli(school, "publish", str(src), "--title", "太早")
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused.stderr
    assert "restored" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert len(entries_of(school, sid)) == s1

    # the node starts again (same home path): it dials its community's seed from the backup
    daemons("school")
    wait_until(lambda: run(school, "status")["own_head"] == "known", "the head is learnt")
    assert run(school, "status")["feed_seq"] == s3
    r4 = publish(school, tmp_path, "第四课")
    wait_until(lambda: len(entries_of(demo, sid)) == len(entries_of(school, sid)) > s3,
               "the seed has the new entry")
    mine = entries_of(school, sid)
    assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))
    assert r4["resource_id"] in {e.get("resource_id") for e in mine} or \
        "resource.publish" in [e["kind"] for e in mine[s3:]]
    assert entries_of(demo, sid) == mine        # one chain, the same everywhere
    feed = bytes.fromhex(db_rows(school, "SELECT value FROM settings WHERE key = 'feed'")[0][0])
    for home in (demo, school):
        assert db_rows(home, "SELECT seq FROM conflicts") == []
        assert db_rows(home, "SELECT flagged FROM feeds WHERE feed = ?", feed) == [(None,)]

    # still a member; its resources are found and its own content comes back and is pinned
    members = {m["school_id"]: m for m in ok_json(school, "community", "members")["members"]}
    assert members[sid]["status"] == "active"
    titles = {r["title"] for r in ok_json(school, "search")}
    assert {"第一课", "第二课", "第三课", "第四课"} <= titles
    want = {r["resource_id"] for r in (r1, r2, r3, r4)}
    wait_until(lambda: {p["resource_id"] for p in ok_json(school, "pins")["pins"]
                        if p["reason"] == "own"} == want, "own content re-pinned")
    report = ok_json(school, "verify")
    assert report["ok"], report
    out = tmp_path / "out"
    ok_json(school, "get", r2["resource_id"], "-o", str(out))
    assert (out / "教案.md").read_text("utf-8") == "# 第二课\n" * 3000
