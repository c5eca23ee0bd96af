"""Which provider is asked for which block, and when a want has waited too long
(specs/bitswap.md §5).

Pure logic, no I/O and no clock of its own: the fetch session (node/p2p/bitswap_fetch.py)
tells it what is wanted, what arrived, what was refused and what time it is, and carries out
what it decides (send the wants, cancel the ones it withdraws, drop the providers it gives up
on).  Providers are named by opaque keys (peer ids); blocks by CID bytes.

The rules:

* blocks are asked for in the order they were wanted (a DAG walk: parents before children);
  a block that came back to the queue (refused, timed out, its provider dropped) goes first;
* each provider has a window: at most ``max_count`` wants and about ``window(key)`` bytes in
  flight (always at least one want, so a block larger than the window still moves);
* among providers with room, the least loaded in bytes is asked, but a *doubtful* provider
  (one that answered DONT_HAVE more often than it delivered) only when the others are full;
* a provider that answered nothing at all since a want was sent, for ``want_timeout``, is
  stalled and given up on; one that is busy with other bytes only loses that want;
* a block that no remaining provider could supply fails the fetch (:class:`NoProvider`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Want:
    """A want in flight: sent to ``peer`` at ``sent_at``; ``size`` is the expected size."""
    peer: str
    sent_at: float
    size: int


class NoProvider(Exception):
    """No remaining provider can supply ``cid``; ``why`` says, per provider, why not."""

    def __init__(self, cid: bytes, why: dict[str, str]) -> None:
        super().__init__(cid, why)
        self.cid = cid
        self.why = why


@dataclass
class Timeouts:
    """What :meth:`WantScheduler.check_timeouts` decided: wants withdrawn from busy providers
    (to be cancelled on the wire) and providers to give up on (nothing at all from them)."""
    withdrawn: list[tuple[str, bytes]] = field(default_factory=list)
    stalled: set[str] = field(default_factory=set)


class WantScheduler:
    def __init__(self, peers: Iterable[str], *, want_timeout: float, max_count: int) -> None:
        self.want_timeout = want_timeout
        self.max_count = max_count
        self.load: dict[str, list[int]] = {p: [0, 0] for p in peers}   # [count, bytes]
        self.asked: dict[str, set[bytes]] = {p: set() for p in self.load}
        self.queue: deque[tuple[bytes, int]] = deque()   # in order; may hold stale entries:
        self.queued: set[bytes] = set()                   # a CID counts only if queued
        self.inflight: dict[bytes, Want] = {}
        self.excluded: dict[bytes, dict[str, str]] = {}  # cid -> {peer: why it cannot}
        self.refusals: dict[str, int] = {}               # DONT_HAVE answers per provider
        self.delivered: dict[str, int] = {}              # wanted blocks received per provider
        self.dropped: dict[str, str] = {}                # provider -> why it was given up on
        self.next_check = math.inf                       # when check_timeouts is next due

    # -- what the session tells it -----------------------------------------------------------

    @property
    def providers(self) -> list[str]:
        return list(self.load)

    def done(self) -> bool:
        return not self.queued and not self.inflight

    def want(self, cid: bytes, size: int) -> None:
        """Queue ``cid`` (expected ``size`` bytes) behind what is already wanted."""
        if cid not in self.queued and cid not in self.inflight:
            self.queue.append((cid, size))
            self.queued.add(cid)

    def wanted(self, cid: bytes) -> bool:
        return cid in self.inflight or cid in self.queued

    def waits_at(self, cid: bytes, peer: str) -> bool:
        """True if our want for ``cid`` is in flight at ``peer``."""
        w = self.inflight.get(cid)
        return w is not None and w.peer == peer

    def was_asked(self, peer: str, cid: bytes) -> bool:
        return cid in self.asked.get(peer, ())

    def received(self, peer: str, cid: bytes) -> str | None:
        """``cid`` arrived from ``peer`` and is no longer wanted. Returns the provider whose
        want for it is now pointless (asked someone else: cancel it there), or None."""
        self.queued.discard(cid)
        self.delivered[peer] = self.delivered.get(peer, 0) + 1
        w = self.inflight.pop(cid, None)
        if w is None:
            return None
        self._unload(w)
        return w.peer if w.peer != peer else None

    def refused(self, peer: str, cid: bytes) -> bool:
        """``peer`` answered DONT_HAVE for ``cid``; True if that was our want there (it goes
        back to the queue for the other providers)."""
        if not self.waits_at(cid, peer):
            return False
        self.refusals[peer] = self.refusals.get(peer, 0) + 1
        self._requeue(cid, peer, "does not have it")
        return True

    def drop(self, peer: str, reason: str) -> list[bytes] | None:
        """Give up on ``peer``: its wants go back to the queue. Returns those CIDs (to cancel
        on the wire), or None if ``peer`` was not a provider any more."""
        if self.load.pop(peer, None) is None:
            return None
        self.dropped[peer] = reason
        back = [cid for cid, w in self.inflight.items() if w.peer == peer]
        for cid in back:
            self._requeue(cid, peer, reason)
        return back

    # -- what it decides ---------------------------------------------------------------------

    def assign(self, now: float, window: Callable[[str], int]) -> list[tuple[str, bytes]]:
        """Give queued blocks to providers with room; returns the wants to send, in order.
        ``window(peer)`` is the bytes a provider may have in flight (asked at most once per
        provider per call). Raises :class:`NoProvider` for a block nobody left can supply."""
        out: list[tuple[str, bytes]] = []
        windows: dict[str, int] = {}
        while self.queue:
            cid, size = self.queue[0]
            if cid not in self.queued:   # arrived before we asked for it
                self.queue.popleft()
                continue
            best, best_rank = None, (True, 0)
            possible = False
            for peer, (n, nbytes) in self.load.items():
                if peer in self.excluded.get(cid, ()):
                    continue
                possible = True
                if n < self.max_count and (
                        n == 0 or nbytes + size <= windows.setdefault(peer, window(peer))):
                    rank = (self.doubtful(peer), nbytes)
                    if best is None or rank < best_rank:
                        best, best_rank = peer, rank
            if not possible:
                raise NoProvider(cid, {**self.excluded.get(cid, {}), **self.dropped})
            if best is None:
                break   # everyone's window is full
            self.queue.popleft()
            self.queued.discard(cid)
            self.inflight[cid] = Want(best, now, size)
            load = self.load[best]
            load[0] += 1
            load[1] += size
            self.asked[best].add(cid)
            out.append((best, cid))
            self.next_check = min(self.next_check, now + self.want_timeout)
        return out

    def doubtful(self, peer: str) -> bool:
        """A provider that said DONT_HAVE more often than it delivered probably lacks this DAG
        (the caller may simply have listed every connected peer): it gets wants only when the
        others are full."""
        return self.refusals.get(peer, 0) > self.delivered.get(peer, 0)

    def check_timeouts(self, now: float, last_byte: Callable[[str], float]) -> Timeouts:
        """Wants older than ``want_timeout``: withdrawn from a provider that sent other bytes
        since (``last_byte(peer)``: the time of its last byte of anything), and the provider
        given up on if it sent nothing at all since we asked. The caller cancels the withdrawn
        wants and calls :meth:`drop` for the stalled providers."""
        self.next_check = math.inf
        out = Timeouts()
        for cid, w in list(self.inflight.items()):
            last = last_byte(w.peer)
            deadline = max(w.sent_at, last) + self.want_timeout
            if deadline > now:
                self.next_check = min(self.next_check, deadline)
            elif last < w.sent_at:
                out.stalled.add(w.peer)   # not a byte from it since we asked
            else:
                self._requeue(cid, w.peer, f"no answer within {self.want_timeout:g} s")
                out.withdrawn.append((w.peer, cid))
        if self.queued:
            self.next_check = min(self.next_check, now + self.want_timeout)
        return out

    def withdraw_all(self) -> list[tuple[str, bytes]]:
        """The fetch ends: every want in flight, to cancel on the wire."""
        inflight, self.inflight = self.inflight, {}
        for w in inflight.values():
            self._unload(w)
        return [(w.peer, cid) for cid, w in inflight.items()]

    # -- internals ---------------------------------------------------------------------------

    def _requeue(self, cid: bytes, peer: str, reason: str) -> None:
        w = self.inflight.pop(cid, None)
        if w is not None:
            self._unload(w)
            self.queue.appendleft((cid, w.size))
            self.queued.add(cid)
        self.excluded.setdefault(cid, {})[peer] = reason

    def _unload(self, w: Want) -> None:
        load = self.load.get(w.peer)
        if load is not None:
            load[0] -= 1
            load[1] -= w.size
