"""Pacing of the block exchange by what each link actually carries (specs/bitswap.md §4–§6).

Pure logic, no I/O: the engine feeds it byte counts and times.  A link of 256 kbit/s and one of
1 Gbit/s differ by a factor of 4,000; fixed message sizes and windows cannot suit both (a 3 MiB
message takes 100 s at 256 kbit/s).  So:

* the sender measures how fast a peer accepts bytes (:class:`RateMeter`) and puts about
  :data:`MESSAGE_SECONDS` of that rate in one message (:func:`message_budget`) — one block per
  message on a slow link, up to ``MAX_MESSAGE_SIZE`` on a fast one;
* the fetcher measures how fast each provider's bytes arrive and keeps about twice the
  bandwidth-delay product in flight there (:func:`window_bytes`), never less than two blocks.
"""

from __future__ import annotations

import math

MESSAGE_SECONDS = 0.5      # a message carries about this long of the link's measured rate
INITIAL_MESSAGE = 256 * 1024   # bytes of blocks per message until the rate is measured
SAMPLE_SECONDS = 0.5       # a rate sample covers this much busy time...
SEND_SAMPLE_BYTES = 4 * 1024 * 1024     # ...or this many bytes written (more than Yamux's
#                            window and the socket buffer take at once, which a slow link
#                            would otherwise mistake for speed)
RECEIVE_SAMPLE_BYTES = 1024 * 1024      # ...or this many bytes received
SMOOTHING = 0.5            # weight of a new sample in the moving average
RECEIVE_IDLE_GAP = 2.0     # seconds without bytes that end a busy period at the receiver
LATENCY_FLOOR = 0.1        # seconds: the round trip assumed at least (disk reads, decoding)
BLOCK_MAX = 1024 * 1024 + 4096          # our largest block (1 MiB chunks, dag-pb nodes)
MIN_WINDOW_BYTES = 2 * BLOCK_MAX        # at least two blocks in flight per provider


class RateMeter:
    """Bytes per second of a link while it is busy.

    ``add(n, now)`` counts bytes; time between busy periods does not count: the sender calls
    :meth:`idle` when it has nothing to write, the receiver treats a gap of more than
    ``idle_gap`` seconds between arrivals as idle.  :attr:`rate` is 0 until the first sample
    (``sample`` seconds of busy time or ``sample_bytes``), then a moving average of the
    samples.
    """

    def __init__(self, *, idle_gap: float = math.inf, sample: float = SAMPLE_SECONDS,
                 sample_bytes: int = SEND_SAMPLE_BYTES) -> None:
        self.idle_gap = idle_gap
        self.sample = sample
        self.sample_bytes = sample_bytes
        self.rate = 0.0
        self.total = 0                      # every byte counted
        self.last: float | None = None      # time of the last add
        self._start: float | None = None    # start of the current sample
        self._bytes = 0

    def start(self, now: float) -> None:
        """A busy period begins (the sender took a message to write)."""
        if self._start is None:
            self._start, self._bytes = now, 0

    def idle(self) -> None:
        """Nothing to carry: the time until the next :meth:`start` or :meth:`add` is not
        counted (a partial sample is kept if it is long enough to mean something)."""
        self._start = None

    def add(self, n: int, now: float) -> None:
        self.total += n
        if self._start is None or (self.last is not None and now - self.last > self.idle_gap):
            # first bytes of a busy period: they cover the time before now, not after it
            self._start, self._bytes, self.last = now, 0, now
            return
        self._bytes += n
        self.last = now
        elapsed = now - self._start
        if elapsed >= self.sample or (self._bytes >= self.sample_bytes and elapsed > 0):
            sample = self._bytes / elapsed
            self.rate = sample if not self.rate else (
                (1 - SMOOTHING) * self.rate + SMOOTHING * sample)
            self._start, self._bytes = now, 0


def message_budget(rate: float, share: int) -> int:
    """Bytes of blocks the next message to a peer may carry: about MESSAGE_SECONDS at the
    peer's measured ``rate`` (0: not measured yet), at most ``share`` (the sender's memory
    divided among the peers it is sending to).  A message always carries at least one block,
    so 0 means "one block"; before the rate is measured, INITIAL_MESSAGE."""
    if rate <= 0:
        return min(share, INITIAL_MESSAGE)
    return max(0, min(share, int(rate * MESSAGE_SECONDS)))


def window_bytes(rate: float, rtt: float, cap: int) -> int:
    """Estimated bytes to keep wanted at one provider: twice the bandwidth-delay product of
    its measured ``rate`` and round trip ``rtt`` (at least LATENCY_FLOOR), at least two blocks,
    at most ``cap``.  Before the rate is measured, two blocks."""
    bdp2 = 2 * rate * max(rtt, LATENCY_FLOOR)
    return int(max(min(cap, MIN_WINDOW_BYTES), min(cap, bdp2)))


# -- sharing one uplink among peers (specs/links.md §8) ---------------------------------------

SHARE_INTERVAL = 1.0       # seconds between two shares of the uplink
SHARE_HEADROOM = 1.25      # the caps add up to this times what the links carried together
SHARE_GROWTH = 1.5         # a link may carry this much more than last interval under its cap
SHARE_FLOOR = 16 * 1024    # bytes/s: a link carrying less is not capped (it just began, waits
#                            for wants, or is slow for reasons of its own)


def fair_caps(carried: dict[str, float], new: int = 0) -> dict[str, float]:
    """Pacing caps (bytes/s) for the links that share one uplink, from the bytes/s each carried
    in the last interval: max-min fair.  A link may grow by SHARE_GROWTH per interval (its
    demand); the capacity is SHARE_HEADROOM times the total carried, so the uplink stays full
    and can grow.  Links that want less than an equal part of what is left get their demand;
    the others share the rest equally.  ``new`` links began during the interval: they are not
    capped (not measured yet) but each is owed an equal part at once, so a fetch that had the
    uplink to itself makes room the moment others begin.  Links under SHARE_FLOOR get no cap
    (and no key in the result); with fewer than two links, nobody is capped.

    Without caps, 30 TCP connections through a modem's drop-tail queue share it unequally (a
    few keep large windows, others wait out retransmission timeouts): the fastest of 30 villages
    finished in a third of the slowest's time.  With caps, a link that takes more than its part
    is paced down and leaves room for the others."""
    if len(carried) + new < 2:
        return {}
    left = SHARE_HEADROOM * sum(carried.values())
    demands = []
    for key, rate in carried.items():
        if rate < SHARE_FLOOR:
            left -= SHARE_HEADROOM * rate    # uncapped; its part of the headroom
        else:
            demands.append((SHARE_GROWTH * rate, key))
    demands.sort()
    caps: dict[str, float] = {}
    for i, (demand, key) in enumerate(demands):
        level = max(SHARE_FLOOR, left / (len(demands) - i + new))
        caps[key] = min(demand, level)
        left -= caps[key]
    return caps
