"""One ``fetch_dag`` call: the DAG walk, the storer, and the wire side of the want scheduler
(see node/p2p/bitswap.py).

Runs in the caller's task.  The engine's reader tasks deliver blocks, presences and drops to it
through methods that never block; :meth:`FetchSession.run` reacts: asks the want scheduler
(protocol/want_scheduler.py, pure logic) which provider gets which block and which wants timed
out, sends and cancels those wants through the engine's public calls, and raises
:class:`FetchError` when no provider is left for some block.  specs/bitswap.md §5.
"""

from __future__ import annotations

import logging
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
from protocol.want_scheduler import NoProvider, WantScheduler


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
        self.wants = WantScheduler(self.active, want_timeout=want_timeout,
                                   max_count=engine.window)
        self.seen: set[bytes] = set()
        self.error: BaseException | None = None
        self.wake = trio.Event()
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
        if cid is not None and self.wants.wanted(cid):
            elsewhere = self.wants.received(peer, cid)
            if elsewhere is not None and elsewhere in self.active:
                self.engine.cancel_want(self.active[elsewhere], cid)
            self.stats.per_peer[peer] = self.stats.per_peer.get(peer, 0) + 1
            try:
                self._accept(cid, data)
            except (NodeError, ProtocolError) as exc:
                self.fail(exc if isinstance(exc, NodeError) else FetchError(
                    f"block {cid_to_str(cid)} is not a UnixFS node we can read: {exc}"))
            self.wake.set()
            return True
        if cid is not None and (self.wants.was_asked(peer, cid) or cid in self.seen):
            self.stats.duplicates += 1
            return True
        return False

    def on_presence(self, peer: str, cid: bytes | None, kind: bs.PresenceType) -> None:
        if kind != bs.PresenceType.DONT_HAVE or cid is None:
            return
        if self.wants.refused(peer, cid):
            self.wake.set()

    def waits_at(self, cid: bytes, peer: str) -> bool:
        """True if this session's want for ``cid`` is in flight at ``peer``."""
        return self.wants.waits_at(cid, peer)

    def drop(self, peer: str, reason: str) -> None:
        """Stop using ``peer`` for this transfer; its wants go to the others."""
        link = self.active.pop(peer, None)
        back = self.wants.drop(peer, reason)
        if link is None or back is None:
            return
        log.warning("bitswap: dropping provider %s from the fetch of %s: %s", peer,
                    self.stats.root, reason)
        self.stats.dropped[peer] = reason
        for cid in back:
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
            if self.wants.done():
                return
            now = trio.current_time()
            if now >= self.wants.next_check:
                self._check_timeouts(now)
            self._assign(now)
            if self.error is not None:
                continue
            with trio.move_on_at(self.wants.next_check):
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
        for peer, cid in self.wants.withdraw_all():
            link = self.active.get(peer)
            if link is not None:
                self.engine.cancel_want(link, cid)

    # -- carrying out the want scheduler's decisions (protocol/want_scheduler.py) --------------

    def _assign(self, now: float) -> None:
        # Blocks arrive faster than the disk takes them: wait for the storer to catch up.
        if self.backlog > 2 * self.engine.window_bytes:
            return
        try:
            sent = self.wants.assign(now, lambda peer: self._window(self.active[peer]))
        except NoProvider as exc:
            detail = "; ".join(f"{p}: {r}" for p, r in {**exc.why, **self.stats.dropped}.items())
            self.fail(FetchError(f"no provider could supply block {cid_to_str(exc.cid)}"
                                 + (f" ({detail})" if detail else " (no providers)")))
            return
        kicked: dict[str, Link] = {}
        for peer, cid in sent:
            link = self.active[peer]
            link.entries[cid] = bs.Entry(cid=cid, want_type=bs.WantType.BLOCK, send_dont_have=True)
            self.stats.wants_sent += 1
            kicked[peer] = link
        for link in kicked.values():
            self.engine.kick(link)

    def _window(self, link: Link) -> int:
        """Estimated bytes to keep wanted at ``link``: twice its bandwidth-delay product as
        measured (at least two blocks), at most the engine's ``window_bytes``."""
        return flow.window_bytes(link.rx.rate, link.rtt(), self.engine.window_bytes)

    def _check_timeouts(self, now: float) -> None:
        out = self.wants.check_timeouts(now, lambda peer: self.active[peer].rx_last)
        for peer, cid in out.withdrawn:
            self.engine.cancel_want(self.active[peer], cid)
        for peer in out.stalled:
            self.drop(peer, f"answered nothing within {self.wants.want_timeout:g} s")

    # -- the DAG -------------------------------------------------------------------------------

    def _want(self, cid: bytes, size: int) -> None:
        if cid not in self.seen:
            self.seen.add(cid)
            self.wants.want(cid, size)

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
