"""The link model, without I/O: which IP packet leaves the link when.

A packet that node ``src`` sends to node ``dst`` is serialised on ``src``'s uplink at the link
rate, travels for the one-way delay, then is serialised on ``dst``'s downlink at the same rate.
The uplink queue drops the packet at its tail when it already holds more than ``queue_s``
seconds of data (at least ``QUEUE_MIN_PACKETS`` full-size packets), as a modem's buffer would.
During a blackhole every packet is dropped and nothing already in flight arrives.

Times are plain floats (seconds on any monotonic clock); the caller feeds packets with
``offer(src, packet, now)`` and collects what is due with ``pop_due(now)``.
"""

from __future__ import annotations

import heapq
import itertools

SUBNET = bytes((10, 77, 0))        # node k has the address 10.77.0.(k+1)
QUEUE_S = 0.2                      # uplink buffer, in seconds of data at the link rate
QUEUE_MIN_PACKETS = 30             # ... but never fewer than this many 1500-byte packets
MTU = 1500


def address(k: int) -> str:
    return ".".join(map(str, SUBNET)) + f".{k + 1}"


def parse_rate(text: str | int | float) -> float:
    """Bits per second from 512000, '512kbit', '2mbit', '1gbit'."""
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip().lower()
    for suffix, mul in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * mul
    return float(s)


class Shaper:
    def __init__(self, nodes: int, rate: float, delay: float, queue_s: float = QUEUE_S) -> None:
        if nodes < 2 or nodes > 250:
            raise ValueError("a link joins 2 to 250 nodes")
        if rate <= 0 or delay < 0:
            raise ValueError("the rate must be positive and the delay not negative")
        self.nodes = nodes
        self.rate = float(rate)
        self.delay = float(delay)
        self.queue_s = queue_s
        self._up_free = [0.0] * nodes     # when each uplink finishes what it already holds
        self._down_free = [0.0] * nodes
        self._heap: list[tuple[float, int, int, int, bytes]] = []
        self._seq = itertools.count()
        self._blackhole_until = 0.0
        self.zero_counters()

    def zero_counters(self) -> None:
        n = self.nodes
        self.sent = [[0] * n for _ in range(n)]       # bytes offered to the link, src -> dst
        self.delivered = [[0] * n for _ in range(n)]  # bytes that came out at dst
        self.packets = [[0] * n for _ in range(n)]    # packets delivered
        self.dropped_queue = 0                        # packets dropped by a full uplink queue
        self.dropped_blackhole = 0                    # packets lost to a blackhole

    def configure(self, *, rate: float | None = None, delay: float | None = None) -> None:
        if rate is not None:
            if rate <= 0:
                raise ValueError("the rate must be positive")
            self.rate = float(rate)
        if delay is not None:
            if delay < 0:
                raise ValueError("the delay must not be negative")
            self.delay = float(delay)

    def blackhole(self, now: float, seconds: float) -> None:
        """Drop every packet for ``seconds`` from ``now``, including those in flight."""
        self._blackhole_until = max(self._blackhole_until, now + seconds)
        self.dropped_blackhole += len(self._heap)
        self._heap.clear()
        self._up_free = [0.0] * self.nodes
        self._down_free = [0.0] * self.nodes

    def blackholed(self, now: float) -> bool:
        return now < self._blackhole_until

    def destination(self, packet: bytes) -> int | None:
        """The node an IPv4 packet is addressed to, or None if it is not for the link."""
        if len(packet) < 20 or packet[0] >> 4 != 4 or packet[16:19] != SUBNET:
            return None
        k = packet[19] - 1
        return k if 0 <= k < self.nodes else None

    def offer(self, src: int, packet: bytes, now: float) -> bool:
        """Node ``src`` sends ``packet``; False if the link drops (or ignores) it."""
        dst = self.destination(packet)
        if dst is None or dst == src:
            return False
        size = len(packet)
        self.sent[src][dst] += size
        if self.blackholed(now):
            self.dropped_blackhole += 1
            return False
        start = max(now, self._up_free[src])
        if start - now > max(self.queue_s, QUEUE_MIN_PACKETS * MTU * 8 / self.rate):
            self.dropped_queue += 1
            return False
        serialise = size * 8 / self.rate
        self._up_free[src] = start + serialise
        arrive = start + serialise + self.delay
        out = max(arrive, self._down_free[dst]) + serialise
        self._down_free[dst] = out
        heapq.heappush(self._heap, (out, next(self._seq), src, dst, packet))
        return True

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[int, bytes]]:
        """Packets whose time has come, in order, as (destination node, packet); they count
        as delivered."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, src, dst, packet = heapq.heappop(self._heap)
            self.delivered[src][dst] += len(packet)
            self.packets[src][dst] += 1
            out.append((dst, packet))
        return out

    def stats(self) -> dict:
        return {"rate": self.rate, "delay": self.delay, "sent": self.sent,
                "delivered": self.delivered, "packets": self.packets,
                "dropped_queue": self.dropped_queue,
                "dropped_blackhole": self.dropped_blackhole}
