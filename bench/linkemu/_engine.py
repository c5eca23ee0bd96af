"""The emulator process: owns the namespaces and moves every packet between their TUN devices.

    python -m linkemu._engine '{"names": [...], "rate": 512000, "delay": 0.15}'

Started by ``linkemu.Link`` (never by hand).  It prints ``{"ready": true}`` once every namespace
exists, then answers one JSON command per line on stdin with one JSON line on stdout:
``stats``, ``zero``, ``blackhole`` (seconds), ``reset`` (kill TCP connections),
``configure`` (rate, delay).  End of stdin, SIGTERM, or the death of its parent
(PR_SET_PDEATHSIG) ends it; the namespaces are removed on every way out.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import select
import signal
import sys
import time

from . import netns
from .shaper import SUBNET, Shaper, address

PR_SET_PDEATHSIG = 1
READ_BATCH = 64            # packets read from one TUN device per wake-up
IDLE_POLL_MS = 100         # nothing scheduled: still wake up now and then
SUBNET_CIDR = ".".join(map(str, SUBNET)) + ".0/24"


class Engine:
    def __init__(self, names: list[str], rate: float, delay: float, queue_s: float,
                 wan: bool = False) -> None:
        self.names = names
        self.wan = wan
        self.shaper = Shaper(len(names), rate, delay, queue_s)
        self.fds: list[int] = []
        self.write_errors = 0
        self.t0 = time.monotonic()

    def setup(self) -> None:
        for k, name in enumerate(self.names):
            if self.wan:
                self.fds.append(netns.create(name, address(k), 32, SUBNET_CIDR))
            else:
                self.fds.append(netns.create(name, address(k)))

    def teardown(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        for name in self.names:
            netns.remove(name)

    def command(self, msg: dict) -> dict:
        now = time.monotonic()
        cmd = msg.get("cmd")
        if cmd == "stats":
            return {**self.shaper.stats(), "elapsed": now - self.t0,
                    "write_errors": self.write_errors,
                    "blackholed": self.shaper.blackholed(now)}
        if cmd == "zero":
            self.shaper.zero_counters()
            self.t0 = now
            return {"ok": True}
        if cmd == "blackhole":
            self.shaper.blackhole(now, float(msg["seconds"]))
            return {"ok": True}
        if cmd == "reset":
            for name in self.names:
                netns.kill_connections(name, SUBNET_CIDR)
            return {"ok": True}
        if cmd == "configure":
            self.shaper.configure(rate=msg.get("rate"), delay=msg.get("delay"))
            return {"ok": True}
        return {"error": f"unknown command {cmd!r}"}

    def run(self) -> None:
        poller = select.poll()
        node_of = {}
        for k, fd in enumerate(self.fds):
            poller.register(fd, select.POLLIN)
            node_of[fd] = k
        stdin = sys.stdin.fileno()
        os.set_blocking(stdin, False)
        poller.register(stdin, select.POLLIN)
        pending = b""
        print(json.dumps({"ready": True}), flush=True)
        while True:
            self._deliver(time.monotonic())
            due = self.shaper.next_due()
            wait_ms = IDLE_POLL_MS if due is None else math.ceil(
                max(0.0, due - time.monotonic()) * 1000)
            for fd, _ in poller.poll(wait_ms):
                if fd == stdin:
                    data = os.read(stdin, 65536)
                    if not data:
                        return  # Link closed the pipe: quit
                    pending += data
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        try:
                            reply = self.command(json.loads(line))
                        except (ValueError, KeyError, TypeError) as exc:
                            reply = {"error": str(exc)}
                        print(json.dumps(reply), flush=True)
                    continue
                k = node_of[fd]
                now = time.monotonic()
                for _ in range(READ_BATCH):
                    try:
                        packet = os.read(fd, 65535)
                    except BlockingIOError:
                        break
                    self.shaper.offer(k, packet, now)

    def _deliver(self, now: float) -> None:
        for dst, packet in self.shaper.pop_due(now):
            try:
                os.write(self.fds[dst], packet)
            except OSError:
                self.write_errors += 1


def main() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Link decides when to stop

    def stop(*_: object) -> None:
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    cfg = json.loads(sys.argv[1])
    engine = Engine(cfg["names"], cfg["rate"], cfg["delay"], cfg["queue_s"],
                    cfg.get("wan", False))
    try:
        if os.getppid() != cfg["parent"]:
            return  # the parent died before PR_SET_PDEATHSIG took effect
        engine.setup()
        engine.run()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the teardown
        engine.teardown()


if __name__ == "__main__":
    main()
