"""``Link``: N network namespaces joined by one emulated slow, far link."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from . import netns
from .shaper import QUEUE_S, address, parse_rate

START_TIMEOUT_S = 30.0      # the engine has made every namespace
COMMAND_TIMEOUT_S = 30.0    # one command answered (reset runs `ss` in each namespace)
STOP_TIMEOUT_S = 20.0       # a process we started stops after SIGTERM (then SIGKILL)
_serial = itertools.count()  # namespace names: pid and serial, unique on the machine


class LinkError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LinkStats:
    """Counters since the link started (or since ``zero_counters``).  Bytes are whole IPv4
    packets (IP + TCP headers + payload) as they crossed the link; ``sent`` counts what a node
    offered, ``delivered`` what came out at the other end."""
    elapsed: float
    sent: list[list[int]]
    delivered: list[list[int]]
    packets: list[list[int]]
    dropped_queue: int
    dropped_blackhole: int

    def wire_bytes(self, src: int, dst: int) -> int:
        """Bytes delivered from node ``src`` to node ``dst``."""
        return self.delivered[src][dst]

    def total(self) -> int:
        return sum(map(sum, self.delivered))


class Link:
    """``with Link(rate=512_000, delay=0.15) as link:`` — two (or ``nodes``) namespaces whose
    only route to each other is the emulated link: ``rate`` bit/s each way, ``delay`` seconds
    one way (RTT = 2 x delay).  Node k has address ``link.address(k)`` (10.77.0.k+1), on a /24
    shared by all nodes; with ``wan=True`` a /32 and a route to the others, so no node finds
    another on the subnet of one of its interfaces (schoolmesh then counts them as WAN peers,
    not LAN: specs/links.md §1).

    Everything it makes (namespaces, the engine process, processes started with ``popen``) is
    removed when the block exits, also on errors and KeyboardInterrupt.
    """

    def __init__(self, *, rate: float | str, delay: float, nodes: int = 2,
                 queue_s: float = QUEUE_S, prefix: str | None = None,
                 wan: bool = False) -> None:
        self.rate = parse_rate(rate)
        self.delay = float(delay)
        self.nodes = nodes
        self.queue_s = queue_s
        self.wan = wan
        tag = prefix or f"lk{os.getpid()}x{next(_serial)}"
        self.names = [f"{tag}n{k}" for k in range(nodes)]
        self._engine: subprocess.Popen | None = None
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    # lifecycle
    def __enter__(self) -> Link:
        ok, why = netns.available()
        if not ok:
            raise LinkError(why)
        cfg = {"names": self.names, "rate": self.rate, "delay": self.delay,
               "queue_s": self.queue_s, "parent": os.getpid(), "wan": self.wan}
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        self._engine = subprocess.Popen(
            [sys.executable, "-m", "linkemu._engine", json.dumps(cfg)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            ready = self._read_reply(START_TIMEOUT_S)
            if not ready.get("ready"):
                raise LinkError(f"the link emulator did not start: {ready}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop our processes, then the engine (which removes the namespaces); idempotent."""
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(OSError):
                engine.stdin.close()         # the engine quits and removes the namespaces
            try:
                engine.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
            engine.stdout.close()
        for name in self.names:              # whatever the engine could not remove
            netns.remove(name)

    # where things are
    def address(self, k: int) -> str:
        return address(k)

    def namespace(self, k: int) -> str:
        return self.names[k]

    # processes and sockets inside a namespace
    def command(self, k: int, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside node k's namespace."""
        return ["ip", "netns", "exec", self.names[k], *argv]

    def popen(self, k: int, argv: list[str], **kw: Any) -> subprocess.Popen:
        """Start ``argv`` in node k's namespace; it is stopped (SIGTERM, then SIGKILL) when the
        link closes, if it still runs."""
        proc = subprocess.Popen(self.command(k, argv), **kw)
        self._procs.append(proc)
        return proc

    def run(self, k: int, argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(k, argv), **kw)

    def socket(self, k: int, family: int = socket.AF_INET,
               type: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket that lives in node k's namespace (made there by this thread)."""
        with netns.inside(self.names[k]):
            return socket.socket(family, type)

    # runtime controls
    def stats(self) -> LinkStats:
        r = self._call({"cmd": "stats"})
        return LinkStats(elapsed=r["elapsed"], sent=r["sent"], delivered=r["delivered"],
                         packets=r["packets"], dropped_queue=r["dropped_queue"],
                         dropped_blackhole=r["dropped_blackhole"])

    def zero_counters(self) -> None:
        self._call({"cmd": "zero"})

    def blackhole(self, seconds: float) -> None:
        """From now, drop every packet (both ways) for ``seconds``; sockets stay open.  Returns
        at once."""
        self._call({"cmd": "blackhole", "seconds": seconds})

    def reset_connections(self) -> None:
        """Kill every TCP connection across the link (both ends get a reset)."""
        self._call({"cmd": "reset"})

    def configure(self, *, rate: float | str | None = None, delay: float | None = None) -> None:
        self._call({"cmd": "configure", "rate": None if rate is None else parse_rate(rate),
                    "delay": delay})
        if rate is not None:
            self.rate = parse_rate(rate)
        if delay is not None:
            self.delay = delay

    def _call(self, msg: dict) -> dict:
        with self._lock:
            if self._engine is None or self._engine.poll() is not None:
                raise LinkError("the link emulator is not running")
            self._engine.stdin.write(json.dumps(msg) + "\n")
            self._engine.stdin.flush()
            reply = self._read_reply(COMMAND_TIMEOUT_S)
        if "error" in reply:
            raise LinkError(reply["error"])
        return reply

    def _read_reply(self, timeout: float) -> dict:
        assert self._engine is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self._engine.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if not box:
            raise LinkError("the link emulator did not answer")
        if not box[0]:
            raise LinkError(f"the link emulator exited ({self._engine.wait()})")
        return json.loads(box[0])


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
