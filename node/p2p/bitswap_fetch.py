"""One ``fetch_dag`` call: the want scheduler and the DAG walk (see node/p2p/bitswap.py).

Runs in the caller's task.  The engine's reader tasks deliver blocks, presences and drops to it
through methods that never block; :meth:`FetchSession.run` reacts: assigns queued blocks to the
providers with room, times wants out, and raises :class:`FetchError` when no provider is left
for some block.  specs/bitswap.md §5.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from crypto import CID_DAG_PB, cid_codec, cid_to_str
from protocol import bitswap as bs
from protocol import dagpb
from protocol.errors import ProtocolError

from ..blockstore import Batch, BlockStore
from ..errors import CorruptBlock, NodeError, NotFound, StoreError
from protocol import bitswap_flow as flow


class Link(Protocol):
    """What a fetch needs of one provider's link (node/p2p/bitswap.py ``_Link``)."""
    key: str
    rx: flow.RateMeter
    rx_last: float

    def rtt(self) -> float: ...


class Engine(Protocol):
    """What a fetch needs of the block exchange engine (node/p2p/bitswap.py
    ``BlockExchange``): its store, its window limits, and two calls."""
    store: BlockStore
    window: int
    window_bytes: int

    def cancel_want(self, link: Any, cid: bytes) -> None: ...

    def kick(self, link: Any) -> None: ...


log = logging.getLogger("node.p2p.bitswap")

UNKNOWN_BLOCK_SIZE = 256 * 1024  # size estimate of a block whose size no link tells us


class FetchError(NodeError):
    """A DAG could not be fetched: no provider could supply some block."""


class BudgetSpent(FetchError):
    """The monthly transfer budget is spent: content transfers wait (specs/limits.md)."""


@dataclass
class FetchStats:
    root: str
    blocks_fetched: int = 0     # received, verified and stored by this call
    bytes_fetched: int = 0
    blocks_local: int = 0       # already in the store (an earlier, interrupted fetch)
    duplicates: int = 0         # blocks received again after we had them
    wants_sent: int = 0
    per_peer: dict[str, int] = field(default_factory=dict)  # blocks received per provider
    dropped: dict[str, str] = field(default_factory=dict)   # provider -> why it was dropped
    seconds: float = 0.0


@dataclass(slots=True)
class _Inflight:
    link: Link
    sent_at: float
    size: int


class FetchSession:
    """One fetch_dag call: the want scheduler and the DAG walk, in the caller's task; blocks
    are written by a storer task through a worker thread (SQLite commits and file writes never
    stall the event loop), with its own connection to the block store."""

    def __init__(self, engine: Engine, root: bytes, links: list[Link],
                 stats: FetchStats, progress: Callable[[int], None] | None,
                 want_timeout: float) -> None:
        self.engine = engine
        self.root = root
        self.stats = stats
        self.progress = progress
        self.want_timeout = want_timeout
        self.active: dict[str, Link] = {link.key: link for link in links}
        self.load: dict[str, list[int]] = {k: [0, 0] for k in self.active}   # [count, bytes]
        self.asked: dict[str, set[bytes]] = {k: set() for k in self.active}
        self.queue: deque[tuple[bytes, int]] = deque()   # to want, in order (may hold stale
        self.queued: set[bytes] = set()                   # entries: a CID counts if queued)
        self.inflight: dict[bytes, _Inflight] = {}
        self.excluded: dict[bytes, dict[str, str]] = {}  # cid -> {peer: why it cannot supply it}
        self.refusals: dict[str, int] = {}               # DONT_HAVE answers per provider
        self.seen: set[bytes] = set()
        self.error: BaseException | None = None
        self.wake = trio.Event()
        self._next_check = math.inf
        # Storage: verified blocks wait in ``to_store`` for the storer task.
        self.writer = BlockStore(engine.store.root)
        self.batch = Batch(self.writer)
        self.to_store: list[tuple[bytes, bytes]] = []
        self.storing: list[tuple[bytes, bytes]] = []   # taken by the storer, being written
        self.backlog = 0                  # bytes accepted and not yet stored
        self.closing = False
        self.store_wake = trio.Event()
        self.store_limiter = trio.CapacityLimiter(1)
        self.fetched: list[bytes] = []    # stored by this session
        self.progressed: list[int] = []   # sizes of stored blocks not yet reported

    # -- events from the engine (reader tasks); never block ------------------------------------

    def on_block(self, peer: str, cid: bytes | None, data: bytes) -> bool:
        """A block (``cid`` computed from ``data``); True if this session needs or asked for
        it.  A block still waiting in the queue is taken too (for instance one asked for by an
        earlier, cancelled fetch and arriving late): it is verified, and saves a want."""
        if cid is not None and (cid in self.inflight or cid in self.queued):
            inf = self.inflight.pop(cid, None)
            self.queued.discard(cid)
            if inf is not None:
                self._unload(inf)
                if inf.link.key != peer:
                    self.engine.cancel_want(inf.link, cid)
            self.stats.per_peer[peer] = self.stats.per_peer.get(peer, 0) + 1
            try:
                self._accept(cid, data)
            except (NodeError, ProtocolError) as exc:
                self.fail(exc if isinstance(exc, NodeError) else FetchError(
                    f"block {cid_to_str(cid)} is not a UnixFS node we can read: {exc}"))
            self.wake.set()
            return True
        if cid is not None and (cid in self.asked.get(peer, ()) or cid in self.seen):
            self.stats.duplicates += 1
            return True
        return False

    def on_presence(self, peer: str, cid: bytes | None, kind: bs.PresenceType) -> None:
        if kind != bs.PresenceType.DONT_HAVE or cid is None:
            return
        inf = self.inflight.get(cid)
        if inf is not None and inf.link.key == peer:
            self.refusals[peer] = self.refusals.get(peer, 0) + 1
            self._requeue(cid, peer, "does not have it")
            self.wake.set()

    def drop(self, peer: str, reason: str) -> None:
        """Stop using ``peer`` for this transfer; its wants go to the others."""
        link = self.active.pop(peer, None)
        if link is None:
            return
        log.warning("bitswap: dropping provider %s from the fetch of %s: %s", peer,
                    self.stats.root, reason)
        self.stats.dropped[peer] = reason
        for cid, inf in list(self.inflight.items()):
            if inf.link is link:
                self._requeue(cid, peer, reason)
                self.engine.cancel_want(link, cid)
        self.wake.set()

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.wake.set()

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch what is missing; whatever happens, what arrived is stored durably on return."""
        ok = False
        try:
            await trio.to_thread.run_sync(self.writer.clean_tmp, limiter=self.store_limiter)
            self._walk_local(self.root, UNKNOWN_BLOCK_SIZE)
            failure: Exception | None = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._storer)
                try:
                    await self._schedule()
                except Exception as exc:  # raised below as is, not inside an ExceptionGroup
                    failure = exc
                    nursery.cancel_scope.cancel()
                self.closing = True   # the storer drains to_store and returns
                self.store_wake.set()
            if failure is not None:
                raise failure
            ok = True
        finally:
            self.close()
            # Blocks the storer had taken when it was cancelled may be stored already:
            # putting them again is a no-op, and they are counted once.
            items, self.storing, self.to_store = self.storing + self.to_store, [], []
            with trio.CancelScope(shield=True):
                try:
                    await trio.to_thread.run_sync(self._finish, items,
                                                  limiter=self.store_limiter)
                    self._stored(items)
                except StoreError as exc:
                    if ok:
                        raise
                    log.warning("bitswap: could not save the partial fetch of %s: %s",
                                self.stats.root, exc)
                finally:
                    self.writer.close()
        self._report()

    async def _schedule(self) -> None:
        while True:
            self._report()
            if self.error is not None:
                raise self.error
            if not self.queued and not self.inflight:
                return
            now = trio.current_time()
            if now >= self._next_check:
                self._check_timeouts(now)
            self._assign(now)
            if self.error is not None:
                continue
            with trio.move_on_at(self._next_check):
                await self.wake.wait()
            self.wake = trio.Event()

    def _report(self) -> None:
        reported, self.progressed = self.progressed, []
        if self.progress is not None:
            for n in reported:
                self.progress(n)

    async def _storer(self) -> None:
        while self.to_store or not self.closing:
            if not self.to_store:
                self.store_wake = trio.Event()
                await self.store_wake.wait()
                continue
            self.storing, self.to_store = self.to_store, []
            try:
                await trio.to_thread.run_sync(self._put_all, self.storing,
                                              limiter=self.store_limiter)
            except StoreError as exc:  # disk full, permissions: the fetch fails with it
                self.fail(exc)
                return
            items, self.storing = self.storing, []
            self._stored(items)
            self.wake.set()

    def _put_all(self, items: list[tuple[bytes, bytes]]) -> None:
        """Worker thread. ``cid`` was computed from ``data`` by the engine and matched one of
        our wants: the block is verified, so it is stored as trusted."""
        for cid, data in items:
            self.batch.put_trusted(cid, data)

    def _finish(self, items: list[tuple[bytes, bytes]]) -> None:
        """Worker thread: store the last blocks and make the whole batch durable."""
        try:
            self._put_all(items)
            self.batch.commit()
        except BaseException:
            self.batch.abort()
            raise

    def _stored(self, items: list[tuple[bytes, bytes]]) -> None:
        for cid, data in items:
            self.fetched.append(cid)
            self.stats.blocks_fetched += 1
            self.stats.bytes_fetched += len(data)
            self.backlog -= len(data)
            self.progressed.append(len(data))

    def close(self) -> None:
        """Cancel our outstanding wants (sent by the peers' sender tasks)."""
        inflight, self.inflight = self.inflight, {}
        for cid, inf in inflight.items():
            self.engine.cancel_want(inf.link, cid)

    # -- the scheduler -------------------------------------------------------------------------

    def _assign(self, now: float) -> None:
        kicked: set[Link] = set()
        windows: dict[str, int] = {}
        # Blocks arrive faster than the disk takes them: wait for the storer to catch up.
        while self.queue and self.backlog <= 2 * self.engine.window_bytes:
            cid, size = self.queue[0]
            if cid not in self.queued:   # arrived before we asked for it
                self.queue.popleft()
                continue
            best, best_rank = None, (True, 0)
            possible = False
            for key, link in self.active.items():
                if key in self.excluded.get(cid, ()):
                    continue
                possible = True
                n, nbytes = self.load[key]
                if n < self.engine.window and (
                        n == 0 or nbytes + size <= windows.setdefault(key, self._window(link))):
                    rank = (self._doubtful(key), nbytes)
                    if best is None or rank < best_rank:
                        best, best_rank = link, rank
            if not possible:
                why = self.excluded.get(cid, {})
                detail = "; ".join(f"{p}: {r}" for p, r in {**why, **self.stats.dropped}.items())
                self.fail(FetchError(f"no provider could supply block {cid_to_str(cid)}"
                                     + (f" ({detail})" if detail else " (no providers)")))
                return
            if best is None:
                break
            self.queue.popleft()
            self.queued.discard(cid)
            self.inflight[cid] = _Inflight(best, now, size)
            load = self.load[best.key]
            load[0] += 1
            load[1] += size
            self.asked[best.key].add(cid)
            best.entries[cid] = bs.Entry(cid=cid, want_type=bs.WantType.BLOCK, send_dont_have=True)
            self.stats.wants_sent += 1
            kicked.add(best)
            self._next_check = min(self._next_check, now + self.want_timeout)
        for link in kicked:
            self.engine.kick(link)

    def _window(self, link: Link) -> int:
        """Estimated bytes to keep wanted at ``link``: twice its bandwidth-delay product as
        measured (at least two blocks), at most the engine's ``window_bytes``."""
        return flow.window_bytes(link.rx.rate, link.rtt(), self.engine.window_bytes)

    def _doubtful(self, peer: str) -> bool:
        """A provider that said DONT_HAVE more often than it delivered probably lacks this DAG
        (the caller may simply have listed every connected peer): it gets wants only when the
        others are full."""
        return self.refusals.get(peer, 0) > self.stats.per_peer.get(peer, 0)

    def _check_timeouts(self, now: float) -> None:
        self._next_check = math.inf
        stalled: set[str] = set()
        for cid, inf in list(self.inflight.items()):
            peer, last = inf.link.key, inf.link.rx_last   # its last byte, of anything
            deadline = max(inf.sent_at, last) + self.want_timeout
            if deadline > now:
                self._next_check = min(self._next_check, deadline)
            elif last < inf.sent_at:
                stalled.add(peer)  # not a byte from it since we asked
            else:
                self._requeue(cid, peer, f"no answer within {self.want_timeout:g} s")
                self.engine.cancel_want(inf.link, cid)
        for peer in stalled:
            self.drop(peer, f"answered nothing within {self.want_timeout:g} s")
        if self.queued:
            self._next_check = min(self._next_check, now + self.want_timeout)

    def _requeue(self, cid: bytes, peer: str, reason: str) -> None:
        inf = self.inflight.pop(cid, None)
        if inf is not None:
            self._unload(inf)
            self.queue.appendleft((cid, inf.size))
            self.queued.add(cid)
        self.excluded.setdefault(cid, {})[peer] = reason

    def _unload(self, inf: _Inflight) -> None:
        load = self.load.get(inf.link.key)
        if load is not None:
            load[0] -= 1
            load[1] -= inf.size

    # -- the DAG -------------------------------------------------------------------------------

    def _want(self, cid: bytes, size: int) -> None:
        if cid not in self.seen:
            self.seen.add(cid)
            self.queue.append((cid, size))
            self.queued.add(cid)

    def _walk_local(self, root: bytes, size: int) -> None:
        """Queue the missing blocks under ``root``, walking nodes we already hold."""
        stack = [(root, size)]
        store = self.engine.store
        while stack:
            cid, size = stack.pop()
            if cid in self.seen:
                continue
            if not store.has(cid):
                self._want(cid, size)
                continue
            self.seen.add(cid)
            self.stats.blocks_local += 1
            if cid_codec(cid) == CID_DAG_PB:
                try:
                    node = dagpb.decode_node(store.get(cid))
                except (NotFound, CorruptBlock):
                    self.seen.discard(cid)
                    self.stats.blocks_local -= 1
                    self._want(cid, size)
                    continue
                except ProtocolError as exc:
                    raise FetchError(f"stored node {cid_to_str(cid)} is unreadable: {exc}"
                                     ) from None
                stack.extend((link.cid, _size_hint(link.tsize)) for link in node.links)

    def _accept(self, cid: bytes, data: bytes) -> None:
        """A wanted block arrived: queue it for storage and its links for fetching."""
        self.to_store.append((cid, data))
        self.backlog += len(data)
        self.store_wake.set()
        if cid_codec(cid) == CID_DAG_PB:
            for link in dagpb.decode_node(data).links:
                if link.cid not in self.seen:
                    self._walk_local(link.cid, _size_hint(link.tsize))


def _size_hint(tsize: int) -> int:
    """Estimated size of one block from a link's Tsize (the size of its whole sub-DAG)."""
    return max(1, min(tsize, 1024 * 1024 + 4096)) if tsize else UNKNOWN_BLOCK_SIZE
