"""`schoolmesh start` refuses bad or unavailable options at once: one error line naming the
option, exit 1, the process gone by itself (real processes, 127.0.0.1 only)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import qr_decode
import pytest

from node.startup import teacher_urls

EXE = str(Path(sys.executable).parent / "schoolmesh")
EXIT_WITHIN = 60.0  # seconds: a refused start must end by itself well before this


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "home"
    subprocess.run([EXE, "--home", str(path), "init", "--name", "a"], check=True,
                   capture_output=True, timeout=60)
    return path


@pytest.fixture
def busy_port():
    """A port some other program listens on (a plain socket on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def refused(home: Path, *args: str, debug: bool = False) -> str:
    """Run `start` that must be refused; return its one error line."""
    cmd = [EXE, "--home", str(home), *(["--debug"] if debug else []), "start", "--no-mdns",
           *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=EXIT_WITHIN)
    assert out.returncode == 1, out.stderr
    if debug:
        return out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "unexpected" not in lines[0] and "Traceback" not in out.stderr
    return lines[0]


LOCAL = ("--listen", "/ip4/127.0.0.1/tcp/0")


@pytest.mark.parametrize("option", ["--listen", "--web", "--control"])
def test_port_in_use(home, busy_port, option):
    args = {"--listen": ["--listen", f"/ip4/127.0.0.1/tcp/{busy_port}", "--no-web"],
            "--web": [*LOCAL, "--web", f"127.0.0.1:{busy_port}"],
            "--control": [*LOCAL, "--no-web", "--control", f"127.0.0.1:{busy_port}"]}[option]
    line = refused(home, *args)
    assert line.startswith(f"error: {option} ") and str(busy_port) in line
    assert "already in use" in line
    assert not (home / "control.json").exists()


@pytest.mark.parametrize("args, expected", [
    (("--web", "nonsense"), "error: --web nonsense: expected HOST:PORT"),
    (("--web", "127.0.0.1:70000"), "error: --web 127.0.0.1:70000: port 70000 is out of range"),
    (("--web", "school:8080"), "error: --web school:8080: school is not an IP address"),
    (("--control", "127.0.0.1"), "error: --control 127.0.0.1: expected HOST:PORT"),
    (("--listen", "/ip4/127.0.0.1/tcp/99999"),
     "error: --listen /ip4/127.0.0.1/tcp/99999: port 99999 is out of range"),
    (("--listen", "garbage"), "error: --listen garbage: expected /ip4/ADDRESS/tcp/PORT"),
    (("--listen", "/ip4/::1/tcp/1"), "error: --listen /ip4/::1/tcp/1: ::1 is not an ip4"),
    (("--listen", "/ip4/127.0.0.1/udp/4004"), "error: --listen /ip4/127.0.0.1/udp/4004: expected"),
    (("--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/nonsense"),
     "error: --bootstrap /ip4/127.0.0.1/tcp/1/p2p/nonsense: not a valid multiaddr"),
    (("--bootstrap", "/ip4/127.0.0.1/tcp/1"),
     "error: --bootstrap /ip4/127.0.0.1/tcp/1: the address must end with /p2p/"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_bad_option(home, args, expected):
    assert refused(home, "--no-web", *LOCAL, *args).startswith(expected)


def test_debug_shows_the_whole_traceback(home, busy_port):
    stderr = refused(home, *LOCAL, "--web", f"127.0.0.1:{busy_port}", debug=True)
    assert "Traceback" in stderr
    assert f"NodeError: --web 127.0.0.1:{busy_port}: port already in use" in stderr


def wait_for(check, what: str) -> None:
    deadline = time.monotonic() + EXIT_WITHIN
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_second_node_on_the_same_port_is_refused(home, tmp_path):
    """py-libp2p binds with SO_REUSEPORT: a second node used to share the first one's port."""
    out = open(tmp_path / "a.out", "w+")
    first = subprocess.Popen([EXE, "--home", str(home), "start", "--no-mdns", *LOCAL,
                              "--web", "127.0.0.1:0"], stdout=out, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (home / "control.json").exists() and Path(out.name).read_text()
                 or first.poll() is not None, "the first node serves")
        assert first.poll() is None
        status = json.loads(subprocess.run([EXE, "--home", str(home), "status", "--json"],
                                           capture_output=True, text=True, timeout=60).stdout)
        port = status["listen"][0].split("/")[4]
        # start prints where teachers open the library, and it is there
        printed = Path(out.name).read_text().split()
        urls = [w for w in printed if w.startswith("http://")]
        assert urls == [status["web"] + "/"]
        assert status["web_urls"] == urls          # 'status' says where to go as well
        human = subprocess.run([EXE, "--home", str(home), "status"], capture_output=True,
                               text=True, timeout=60).stdout
        assert f"web library: {urls[0]}" in human.splitlines()
        # with a QR code of that address for phones, which a real decoder reads back
        assert qr_decode.decode(qr_decode.from_terminal(human)) == [urls[0]]
        assert httpx.get(urls[0], follow_redirects=True).status_code == 200

        other = tmp_path / "other"
        subprocess.run([EXE, "--home", str(other), "init", "--name", "b"], check=True,
                       capture_output=True, timeout=60)
        line = refused(other, "--listen", f"/ip4/127.0.0.1/tcp/{port}", "--no-web")
        assert line.startswith(f"error: --listen /ip4/127.0.0.1/tcp/{port}: port already in use")
        assert "--web" in line  # the hint names both options a second node must change
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=EXIT_WITHIN) == 0
        out.close()


def test_teacher_urls_are_this_computers_addresses():
    assert teacher_urls("http://127.0.0.1:8080") == ["http://127.0.0.1:8080/"]
    for wildcard in ("http://0.0.0.0:8080", "http://[::]:8080"):
        urls = teacher_urls(wildcard)
        assert urls and not any("0.0.0.0" in u or "[::]" in u for u in urls)
        for url in urls:
            host = httpx.URL(url).host
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
                s.bind((host, 0))  # an address of this computer (binding proves it)
            assert url.endswith(":8080/")
