"""The rural-link emulator (bench/linkemu) itself: its model, and real TCP through it.

Bounds come from the link's parameters: nothing crosses faster than the rate and the delay
allow (lower bounds, physics), and a transfer that takes several times what they imply means
the emulator is broken (generous upper bounds).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from bench.linkemu import Link, LinkError, Shaper, available

needs_namespaces = pytest.mark.skipif(not available()[0], reason=available()[1])
KiB = 1024
IO_TIMEOUT = 20.0


def packet(src: int, dst: int, size: int = 1500) -> bytes:
    """An IPv4 header from 10.77.0.src+1 to 10.77.0.dst+1, padded to ``size`` bytes."""
    head = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 77, 0, src + 1, 10, 77, 0, dst + 1])
    return head + bytes(size - len(head))


def test_shaper_serialises_at_the_rate_and_adds_the_delay():
    s = Shaper(2, rate=96_000, delay=0.0625)      # a 1500-byte packet takes 0.125 s to send
    for _ in range(5):
        assert s.offer(0, packet(0, 1), now=0.0)
    assert s.pop_due(0.3124) == []
    # uplink 0.125 s + delay 0.0625 s + downlink 0.125 s; then one packet per 0.125 s
    for t in (0.3125, 0.4375, 0.5625, 0.6875, 0.8125):
        assert [dst for dst, _ in s.pop_due(t)] == [1]
    assert s.stats()["delivered"] == [[0, 7500], [0, 0]]
    assert s.stats()["sent"] == [[0, 7500], [0, 0]]
    assert not s.offer(0, b"\x45" + bytes(19), now=1.0)   # 0.0.0.0: not on the link


def test_shaper_tail_drops_a_full_queue_and_blackholes_in_flight_packets():
    s = Shaper(2, rate=96_000, delay=0.0625, queue_s=0.2)  # floor: 30 packets = 3.75 s
    accepted = sum(s.offer(0, packet(0, 1), now=0.0) for _ in range(40))
    assert accepted == 31 and s.dropped_queue == 9          # queue 0..3.75 s, then drops
    s.blackhole(now=0.5, seconds=1.0)
    assert s.dropped_blackhole == 31 and s.pop_due(100.0) == []
    assert not s.offer(1, packet(1, 0), now=1.4)
    assert s.offer(1, packet(1, 0), now=1.5)
    assert [dst for dst, _ in s.pop_due(1.8125)] == [0]


def _serve_count(srv: socket.socket, out: list) -> None:
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(IO_TIMEOUT)
        n = 0
        while data := conn.recv(65536):
            n += len(data)
        out.append((n, time.monotonic()))


@needs_namespaces
def test_tcp_transfer_takes_the_time_rate_and_delay_imply():
    rate, delay, size = 512_000, 0.150, 256 * KiB
    with Link(rate=rate, delay=delay) as link:
        srv = link.socket(1)
        srv.bind((link.address(1), 5001))
        srv.listen()
        got: list = []
        server = threading.Thread(target=_serve_count, args=(srv, got))
        server.start()
        client = link.socket(0)
        client.settimeout(IO_TIMEOUT)
        t0 = time.monotonic()
        client.connect((link.address(1), 5001))
        connected = time.monotonic() - t0
        client.sendall(bytes(size))
        client.close()
        server.join(IO_TIMEOUT)
        srv.close()
        stats = link.stats()
    assert got and got[0][0] == size
    took = got[0][1] - t0
    # SYN out and SYN-ACK back: one round trip, never less (how much more a loaded machine
    # adds is not the emulator's property, so there is no upper bound on time here)
    assert 2 * delay <= connected
    # the payload alone needs size*8/rate (4.1 s) plus a round trip: never less
    ideal = size * 8 / rate + 2 * delay
    assert ideal <= took
    # every payload byte crossed the link once, plus headers (~4 %) and any retransmission
    assert size < stats.wire_bytes(0, 1) < 1.5 * size
    assert 0 < stats.wire_bytes(1, 0) < 0.1 * size          # acknowledgements only


@needs_namespaces
def test_blackhole_keeps_sockets_open_and_reset_kills_them():
    with Link(rate="10mbit", delay=0.010) as link:
        srv = link.socket(1)
        srv.bind((link.address(1), 5002))
        srv.listen()
        client = link.socket(0)
        client.settimeout(IO_TIMEOUT)
        client.connect((link.address(1), 5002))
        conn, _ = srv.accept()
        conn.settimeout(IO_TIMEOUT)
        # blackhole: what is sent meanwhile arrives only after it ends (TCP retransmits)
        t0 = time.monotonic()
        link.blackhole(1.0)
        client.sendall(b"after the outage")
        assert conn.recv(100) == b"after the outage"
        assert time.monotonic() - t0 >= 1.0
        assert link.stats().dropped_blackhole >= 1
        # reset: both ends see the connection die
        link.reset_connections()
        with pytest.raises(OSError):
            for _ in range(10):
                if not conn.recv(100):
                    raise ConnectionResetError("closed")
        with pytest.raises(OSError):
            client.sendall(b"x")
            client.recv(100)
        for s in (client, conn, srv):
            s.close()


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@needs_namespaces
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_everything_is_removed_when_the_block_fails(error):
    with pytest.raises(error):
        with Link(rate="1mbit", delay=0.01, nodes=3) as link:
            names = list(link.names)
            assert all(n in _namespaces() for n in names)
            sleeper = link.popen(2, [sys.executable, "-c", "import time; time.sleep(600)"])
            raise error("boom")
    assert sleeper.poll() is not None
    assert not any(n in _namespaces() for n in names)
    with pytest.raises(LinkError):
        link.stats()
