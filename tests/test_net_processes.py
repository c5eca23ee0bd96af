"""Three `schoolmesh start` daemons as separate processes on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "schoolmesh")
DEADLINE = 30.0


def run(home: Path, *args: str) -> dict | list:
    out = subprocess.run([EXE, "--home", str(home), *args, "--json"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_until(check, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


@pytest.fixture
def daemons(tmp_path):
    with ExitStack() as stack:
        def start(name: str) -> Path:
            home = tmp_path / name
            subprocess.run([EXE, "--home", str(home), "init", "--name", name], check=True,
                           capture_output=True, timeout=60)
            log = open(tmp_path / f"{name}.log", "w")
            stack.callback(log.close)
            proc = subprocess.Popen([EXE, "--home", str(home), "start", "--no-mdns", "--no-web",
                                     "--listen", "/ip4/127.0.0.1/tcp/0"],
                                    stdout=log, stderr=subprocess.STDOUT)

            def stop() -> None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            stack.callback(stop)
            wait_until(lambda: (home / "control.json").exists() or proc.poll() is not None,
                       f"{name} started")
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            start.procs[name] = proc
            return home
        start.procs = {}
        yield start


def test_three_daemons_replicate_and_stop_cleanly(daemons, tmp_path):
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    a_id = run(a, "id")["school_id"]
    src = tmp_path / "lesson"
    src.mkdir()
    (src / "教案.md").write_text("# 分数\n", "utf-8")
    run(a, "publish", str(src), "--title", "分数的初步认识")
    a_addr = run(a, "status")["listen"][0]
    run(b, "connect", a_addr)
    run(c, "connect", run(b, "status")["listen"][0])  # C knows only B
    run(b, "follow", a_id)
    run(c, "follow", a_id)
    found = lambda home: [r["title"] for r in run(home, "search", "分数")]  # noqa: E731
    wait_until(lambda: found(b) == ["分数的初步认识"], "B has A's resource")
    wait_until(lambda: found(c) == ["分数的初步认识"], "C has A's resource through B")
    # a second resource propagates by gossip to both, through B to C
    (src / "练习.txt").write_text("1/2\n", "utf-8")
    run(a, "publish", str(src / "练习.txt"), "--title", "分数练习")
    wait_until(lambda: "分数练习" in [r["title"] for r in run(c, "search", "练习")],
               "C has the second resource")
    # content moves by Bitswap: B fetches from A; then A stops, so C can only get it from B
    # (C may or may not have learnt A's address meanwhile: which peers it dials is not asserted)
    rid = run(c, "search", "分数的初步认识")[0]["resource_id"]
    for home in (b, c):
        out = tmp_path / f"got-{home.name}"
        got = run(home, "get", rid, "-o", str(out))
        assert [f["path"] for f in got["files"]] == ["教案.md"]
        assert (out / "教案.md").read_bytes() == (src / "教案.md").read_bytes()
        assert run(home, "verify")["ok"] is True
        if home == b:
            stop_cleanly(daemons.procs["a"], a)
    # SIGTERM: every daemon stops by itself, removes its control file, leaves a sound home
    for name, home in (("b", b), ("c", c)):
        stop_cleanly(daemons.procs[name], home)


def test_limits_show_says_which_connected_peers_count_as_lan(daemons):
    a, b = daemons("a"), daemons("b")
    run(b, "connect", run(a, "status")["listen"][0])
    a_id = run(a, "id")["school_id"]
    shown = run(b, "limits", "show")["peers"]
    assert [(p["peer_id"], p["remote"], p["lan"]) for p in shown] == [(a_id, "127.0.0.1", True)]
    text = subprocess.run([EXE, "--home", str(b), "limits", "show"], capture_output=True,
                          text=True, timeout=60).stdout
    assert f"# connected: {a_id} at 127.0.0.1 (school LAN, not limited)" in text


def stop_cleanly(proc: subprocess.Popen, home: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert not (home / "control.json").exists()
    assert run(home, "verify")["ok"] is True


def test_cli_needs_a_running_node_for_network_commands(tmp_path):
    home = tmp_path / "h"
    subprocess.run([EXE, "--home", str(home), "init", "--name", "h"], check=True,
                   capture_output=True, timeout=60)
    out = subprocess.run([EXE, "--home", str(home), "status"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: the node is not running (start it with 'schoolmesh start')"
