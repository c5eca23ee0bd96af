"""kill -9 of a daemon in the middle of a fetch: after a restart the transfer completes, the
bytes verify, and no block that was already stored is fetched again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

EXE = str(Path(sys.executable).parent / "schoolmesh")
DEADLINE = 60.0
MiB = 1024 * 1024


def cli(home: Path, *args: str) -> dict | list:
    out = subprocess.run([EXE, "--home", str(home), *args, "--json"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def api(home: Path, name: str, **args) -> dict | list:
    info = json.loads((home / "control.json").read_text())
    headers = {"authorization": f"Bearer {info['token']}"}
    url = f"{info['url']}/v1/{name}"
    r = (httpx.post(url, json=args, headers=headers, timeout=30) if args
         else httpx.get(url, headers=headers, timeout=30))
    assert r.status_code == 200, r.text
    return r.json()


def wait_until(check, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def test_kill_9_mid_fetch_then_restart_completes_without_refetching(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for home in (a, b):
        subprocess.run([EXE, "--home", str(home), "init", "--name", home.name], check=True,
                       capture_output=True, timeout=60)
    data = os.urandom(24 * MiB)
    (tmp_path / "lecture.bin").write_bytes(data)
    rid = cli(a, "publish", str(tmp_path / "lecture.bin"), "--title", "Lecture")["resource_id"]
    # slow B's downloads so the fetch can be interrupted half way (loopback is not exempt)
    cli(b, "limits", "set", "--down", "2MiB/s", "--no-lan-unlimited")
    cli(b, "follow", cli(a, "id")["school_id"])

    with ExitStack() as stack:
        def start(home: Path) -> subprocess.Popen:
            log = stack.enter_context(open(tmp_path / f"{home.name}.log", "a"))
            proc = subprocess.Popen([EXE, "--home", str(home), "start", "--no-mdns", "--no-web",
                                     "--listen", "/ip4/127.0.0.1/tcp/0"],
                                    stdout=log, stderr=subprocess.STDOUT)
            stack.callback(lambda: (proc.poll() is None and proc.kill(), proc.wait()))
            def ready() -> bool:  # control.json of *this* process (a killed one leaves its own)
                try:
                    return json.loads((home / "control.json").read_text())["pid"] == proc.pid
                except (FileNotFoundError, ValueError):
                    return False
            wait_until(lambda: ready() or proc.poll() is not None, f"{home.name} started")
            assert proc.poll() is None, (tmp_path / f"{home.name}.log").read_text()[-2000:]
            return proc

        start(a)
        a_addr = api(a, "status")["listen"][0]
        proc_b = start(b)
        api(b, "connect", addr=a_addr)
        wait_until(lambda: any(r["resource_id"] == rid for r in cli(b, "search", "Lecture")),
                   "B has A's catalog")
        tid = api(b, "fetch", target=rid)["id"]

        def transfer() -> dict:
            return next(t for t in api(b, "transfers") if t["id"] == tid)
        wait_until(lambda: transfer()["bytes_done"] >= len(data) // 2, "half the bytes arrived")
        proc_b.send_signal(signal.SIGKILL)
        proc_b.wait()

        from node.blockstore import BlockStore
        store = BlockStore(b / "blocks")
        stored_before = set(store)
        store.close()
        assert 0 < len(stored_before) < 26  # 24 leaves + file root + directory

        start(b)  # the running transfer is requeued; it waits for a provider
        api(b, "connect", addr=a_addr)
        wait_until(lambda: transfer()["state"] == "done", "the transfer completed")
        received = api(b, "status")["exchange"]["blocks_received"]
        # every block not stored before the kill arrived exactly once, nothing else
        assert received == 26 - len(stored_before)
        out = tmp_path / "out"
        cli(b, "get", rid, "-o", str(out))
        assert (out / "lecture.bin").read_bytes() == data
        assert cli(b, "verify")["ok"] is True
