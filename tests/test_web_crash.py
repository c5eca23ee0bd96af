"""A real `schoolmesh start` killed in the middle of a browser upload, then started again.

Every wait on a process is bounded, and every process is reaped even on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import block_digests

EXE = str(Path(sys.executable).parent / "schoolmesh")
TIMEOUT = 60.0
PASSWORD = "correct horse battery"
SENT = 4 * 1024 * 1024          # file bytes sent before the kill (of a much bigger upload)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SCHOOLMESH_HOME", "SCHOOLMESH_PASSPHRASE")}
    return {**env, **extra}


def run(home: Path, *args: str, **env: str) -> str:
    out = subprocess.run([EXE, "--home", str(home), *args], capture_output=True, text=True,
                         timeout=TIMEOUT, env=_env(**env))
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait_until(check, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        assert proc.poll() is None, f"the node ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


@contextlib.contextmanager
def node(home: Path, log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A running node with its web library on 127.0.0.1; yields the process and its URL."""
    with open(log, "a") as out, subprocess.Popen(
            [EXE, "--home", str(home), "start", "--no-mdns", "--web", "127.0.0.1:0",
             "--listen", "/ip4/127.0.0.1/tcp/0"], stdout=out, stderr=subprocess.STDOUT,
            env=_env()) as proc:
        try:
            def started() -> bool:  # the control file of *this* process (a killed one stays)
                try:
                    return json.loads((home / "control.json").read_text())["pid"] == proc.pid
                except (FileNotFoundError, ValueError):
                    return False
            wait_until(started, proc, "the node started")
            yield proc, json.loads(run(home, "status", "--json"))["web"]
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=TIMEOUT)


def uploaded_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_upload_cut_by_a_kill_leaves_nothing_after_restart(tmp_path):
    home = tmp_path / "home"
    run(home, "init", "--name", "Crash School")
    run(home, "teacher", "add", "wang", SCHOOLMESH_TEACHER_PASSWORD=PASSWORD)
    blocks_before = block_digests(home)
    uploads = home / "web-uploads"
    log = tmp_path / "node.log"

    with node(home, log) as (proc, url):
        with httpx.Client(base_url=url, timeout=TIMEOUT) as c:
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            r = c.post("/login", data={"csrf": token, "name": "wang", "password": PASSWORD})
            assert r.status_code == 303, r.text
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/publish").text).group(1)
            cookie = c.cookies["sm_session"]
        boundary = "----crashboundary"
        head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                       f"{v}\r\n" for k, v in (("csrf", token), ("title", "Cut off lesson"),
                                               ("inLanguage", "en"), ("license", "CC-BY-4.0")))
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                 f'filename="video.mp4"\r\nContent-Type: video/mp4\r\n\r\n')
        host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
            s.sendall((f"POST /publish HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       f"Cookie: sm_session={cookie}\r\n"
                       f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                       f"Content-Length: {len(head) + 64 * 1024 * 1024}\r\n\r\n{head}"
                       ).encode())
            chunk = os.urandom(64 * 1024)
            for _ in range(SENT // len(chunk)):
                s.sendall(chunk)
            wait_until(lambda: uploads.is_dir() and uploaded_bytes(uploads) >= SENT // 2, proc,
                       "the upload is being written")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
    assert uploaded_bytes(uploads) >= SENT // 2  # really cut off: half an upload on disk
    # a folder of an upload that a running process (pid 1 always runs) is receiving: kept
    live = uploads / "0123456789abcdef.1"
    (live / "files").mkdir(parents=True)

    with node(home, log):
        assert sorted(p.name for p in uploads.iterdir()) == [live.name], log.read_text()
        # nothing of it reached the library
        assert block_digests(home) == blocks_before
        assert json.loads(run(home, "search", "--json")) == []
        # the feed holds the profile and the teacher's certificate, no resource entry
        assert [e["kind"] for e in json.loads(run(home, "feed", "--json"))] == [
            "profile", "teacher.certificate"]
