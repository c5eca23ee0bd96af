"""Bitswap 1.2.0 block exchange on a running libp2p host (specs/bitswap.md).

:class:`BlockExchange` serves our blocks to any Bitswap peer (Helia, kubo, other schools) and
fetches whole UnixFS DAGs from several providers at once.  The wire codec is sans-IO in
``protocol/bitswap.py``; this module moves bytes and owns the tasks.

Streams.  A peer sends us messages on streams it opens; we answer — blocks, HAVE / DONT_HAVE —
on one stream *we* open to that peer and keep while it is busy (Helia reads replies only on
streams the responder opens; py-libp2p's own bitswap answers on the requester's stream, which
Helia never reads).  Our wants to a peer travel on that same outbound stream.  An outbound
stream idle for :data:`SEND_IDLE_CLOSE` seconds is closed (Helia resets an inbound stream that
has been idle for 10 s), and a fresh one is opened when there is something to send again.

Tasks.  ``serve`` owns a nursery; everything else runs in it: one reader task per inbound
stream (py-libp2p calls our stream handler in its own task, which only hands the stream over
and waits) and one sender task per peer with something to send.  ``fetch_dag`` runs in the
caller's task (a :class:`~node.p2p.bitswap_fetch.FetchSession`): it assigns wants and reacts to
the blocks and presences that the reader tasks deliver to it.

Pacing (protocol/bitswap_flow.py).  Each link measures how fast the peer takes our bytes and
how fast its bytes reach us.  A message carries about half a second of the peer's measured
rate (one block on a slow link), within a memory budget shared by every peer we send to; a
message is written in pieces of one Yamux/Noise frame, and a write fails only when the peer has
accepted nothing for the write timeout — then the whole connection is closed, since a frame may
have been cut (a connection left half-written carries no stream any more).

Fetching.  Wants are pipelined (about twice the bandwidth-delay product measured at each
provider, at least two blocks, at most :data:`MAX_WANTS_PER_PEER` blocks /
:data:`MAX_WANT_BYTES_PER_PEER` estimated bytes) and spread over the providers by load.  A block is
accepted only if the CID computed from its bytes is one we asked for, and is stored at once;
an interrupted fetch therefore resumes where it stopped (the DAG is first walked over local
blocks).  DONT_HAVE, or a provider that has sent no byte at all for ``want_timeout`` seconds,
sends the want to another provider; a provider that sends a block we did not ask for, or that
sends nothing at all within ``want_timeout`` of a want, is dropped from the transfer.  Progress
is bytes arriving, not whole blocks: a 1 MiB block takes 33 s at 256 kbit/s.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from crypto import cid_to_str
from protocol import bitswap as bs
from protocol.errors import RemoteProtocolError

from ..blockstore import BlockStore
from ..errors import NodeError, NotFound, StoreError
from ..peerlog import PeerLog
from protocol import bitswap_flow as flow
from .bitswap_fetch import BudgetSpent, FetchError, FetchSession, FetchStats
from . import ratelimit
from .host import connect
from .streams import DIAL_TIMEOUT, close_stream, log_stream_error, reset_stream
from .yamux_tuning import set_max_frame, wait_send_window, widen_receive_window

__all__ = ["BlockExchange", "BudgetSpent", "FetchError", "FetchStats"]

log = logging.getLogger(__name__)

WANT_TIMEOUT = 15.0            # seconds a provider may send no byte at all before we ask another
MAX_WANTS_PER_PEER = 512       # blocks in flight at one provider, at most
MAX_WANT_BYTES_PER_PEER = 16 * 1024 * 1024  # estimated bytes in flight at one provider, at most
MAX_ENTRIES_PER_SEND = 1024    # wantlist entries we put in one message
MAX_LEDGER_WANTS = 2048        # wants we keep per peer (Helia keeps 1,024)
SEND_IDLE_CLOSE = 5.0          # close our outbound stream after this long with nothing to send
INBOUND_IDLE_TIMEOUT = 60.0    # drop an inbound stream silent for this long
STREAM_OPEN_TIMEOUT = DIAL_TIMEOUT  # seconds without a byte from the peer while opening
WRITE_TIMEOUT = 30.0           # seconds a peer may accept no byte of a message we write
SEND_MEMORY = 64 * 1024 * 1024  # blocks read for sending, all peers together (about)
# A message is written in pieces of one Yamux frame each, about PIECE_SECONDS of the measured
# rate: every other frame on the connection (a stream opening, a window update) waits for the
# piece being written (a 64 KiB piece takes 2 s at 256 kbit/s).  Until the rate is measured a
# piece fits one Noise message (65,519 bytes of plaintext, minus the 12-byte Yamux header); on
# a fast link it grows to BULK_PIECE (a frame over several Noise messages; the receiver pays
# per frame, node/p2p/yamux_tuning.py), on a slow one it shrinks to MIN_PIECE.
WRITE_PIECE = 65_519 - 12
BULK_PIECE = 1024 * 1024
MIN_PIECE = 8 * 1024
PIECE_SECONDS = 0.25
# Seconds between looks at a full Yamux send window (py-libp2p has no event for its updates):
# about a quarter of the time one piece takes at the measured rate, within these bounds.  A
# window update frees half a window (128 KiB or more), so a late look costs no throughput.
WINDOW_POLL_MIN, WINDOW_POLL_MAX = 0.005, 0.1
# A block served is read back and verified against its CID; one verified within VERIFY_TTL is
# sent without hashing it again (a seed serving one course to 30 villages hashes each block
# once, not 30 times; the receiver verifies every block anyway, specs/bitswap.md §4).
VERIFY_TTL = 600.0
VERIFY_MEMORY = 16_384         # CIDs remembered as verified, at most (~3 MB)
FALLBACK_RTT = 0.3             # round trip assumed until the connection has measured one
# Yamux receive window of an inbound stream (peers send us blocks on it), node/p2p/yamux_tuning.py
RECEIVE_WINDOW = 4 * 1024 * 1024
READ_SIZE = RECEIVE_WINDOW     # one read takes all the stream holds: one copy out of Yamux


@dataclass(slots=True)
class _PeerWant:
    wire: bytes                 # the CID as the peer wrote it (v0 or v1)
    want_type: bs.WantType
    send_dont_have: bool


class _Link:
    """Everything about one remote peer: what it wants from us, what we send it."""

    def __init__(self, peer_id: Any) -> None:
        self.peer_id = peer_id
        self.key: str = peer_id.to_string()
        self.ledger: dict[bytes, _PeerWant] = {}    # its wants we still have to answer
        self.waiting: dict[bytes, _PeerWant] = {}   # its wants for blocks we lack (yet)
        self.presences: list[bs.Presence] = []
        self.entries: dict[bytes, bs.Entry] = {}    # our wants / cancels to send
        self.carry: list[tuple[bytes, _PeerWant, bytes]] = []  # read but not yet sent
        self.wake = trio.Event()
        self.running = False                       # a sender task exists
        self.tx = flow.RateMeter()                 # how fast the peer takes our bytes
        self.rx = flow.RateMeter(idle_gap=flow.RECEIVE_IDLE_GAP,      # how fast its bytes
                                 sample_bytes=flow.RECEIVE_SAMPLE_BYTES)  # arrive
        self.rx_last = -math.inf                   # trio time of its last byte to us
        self.conn: Any = None                      # the muxed connection it last used
        self.opening: trio.CancelScope | None = None  # a stream being opened to it

    def rtt(self) -> float:
        """The connection's measured round trip (Yamux pings), or FALLBACK_RTT."""
        measure = getattr(self.conn, "rtt", None)
        rtt = measure() if callable(measure) else 0.0
        return rtt if isinstance(rtt, float) and rtt > 0 else FALLBACK_RTT

    def has_work(self) -> bool:
        return bool(self.entries or self.presences or self.ledger or self.carry)

    def add_want(self, cid: bytes, want: _PeerWant) -> None:
        self.waiting.pop(cid, None)
        self.ledger[cid] = want
        while len(self.ledger) > MAX_LEDGER_WANTS:   # drop the oldest
            del self.ledger[next(iter(self.ledger))]


class BlockExchange:
    """Bitswap on ``host`` backed by ``blockstore``; ``serve`` must run for fetches to work."""

    def __init__(self, host: Any, blockstore: BlockStore, *,
                 want_timeout: float = WANT_TIMEOUT, window: int = MAX_WANTS_PER_PEER,
                 window_bytes: int = MAX_WANT_BYTES_PER_PEER,
                 over_budget: Callable[[], str | None] | None = None,
                 write_timeout: Callable[[int], float] | None = None) -> None:
        self.host = host
        # Seconds one message write of n bytes may take: WRITE_TIMEOUT, or longer on a slow
        # upload (the daemon stretches it with the rate limit, as it does the want timeout).
        self.write_timeout = write_timeout or (lambda n: WRITE_TIMEOUT)
        # The monthly budget (node/limits.py): a sentence while it is spent, else None. While
        # spent, no fetch starts, running fetches fail, and wants from peers get DONT_HAVE.
        self.over_budget = over_budget or (lambda: None)
        self.store = blockstore
        self.peer_log = PeerLog(log)   # warnings caused by peers, bounded
        self.want_timeout = want_timeout
        self.window = window                # blocks in flight per provider
        self.window_bytes = window_bytes    # estimated bytes in flight per provider
        self._links: dict[str, _Link] = {}
        self._sessions: set[FetchSession] = set()
        self._spawn: trio.MemorySendChannel[Callable[[], Awaitable[None]]] | None = None
        self._parked: set[trio.Event] = set()
        self._reader: BlockStore | None = None          # serving reads, in a worker thread
        self._read_limiter = trio.CapacityLimiter(1)
        self._verified = _VerifiedBlocks(VERIFY_TTL, VERIFY_MEMORY)   # used by _read_blocks
        self._share_wake = trio.Event()               # a link began sending
        self._paced: dict[str, Any] = {}              # link key -> its paced LimitedStream
        self._stats = dict.fromkeys(
            ("wants_received", "blocks_sent", "bytes_sent", "presences_sent", "blocks_received",
             "bytes_received", "unwanted_blocks", "messages_sent", "messages_received",
             "streams_opened", "bad_messages", "write_stalls"), 0)

    def statistics(self) -> dict[str, int]:
        return dict(self._stats)

    # -- the service -------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Register the Bitswap protocols and run every exchange task until cancelled."""
        if self._spawn is not None:
            raise RuntimeError("BlockExchange.serve is already running")
        send, recv = trio.open_memory_channel[Callable[[], Awaitable[None]]](math.inf)
        self._reader = BlockStore(self.store.root)
        try:
            async with trio.open_nursery() as nursery:
                self._spawn = send
                for proto in bs.PROTOCOLS:
                    self.host.set_stream_handler(proto, self._handle_stream)
                nursery.start_soon(self._share_uplink)
                task_status.started()
                async for task in recv:
                    nursery.start_soon(task)
        finally:
            self._spawn = None
            send.close()
            for proto in bs.PROTOCOLS:
                self.host.remove_stream_handler(proto)
            for ev in self._parked:
                ev.set()
            for session in list(self._sessions):
                session.fail(FetchError("the block exchange stopped"))
            for link in self._links.values():
                link.running = False
            for stream in self._paced.values():
                ratelimit.pace(stream, None)
            self._paced.clear()
            self._reader.close()
            self._reader = None

    def _start(self, task: Callable[[], Awaitable[None]]) -> bool:
        """Have ``serve``'s nursery run ``task``; False if the service is not running."""
        if self._spawn is None:
            return False
        try:
            self._spawn.send_nowait(task)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def _link(self, peer_id: Any) -> _Link:
        key = peer_id.to_string()
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = _Link(peer_id)
        return link

    def kick(self, link: _Link) -> None:
        link.wake.set()
        if not link.running and link.has_work() and self._start(partial(self._run_link, link)):
            link.running = True
            self._share_wake.set()

    # -- sharing the uplink (specs/links.md §8) ------------------------------------------------

    def _wan_links(self) -> dict[str, tuple[_Link, Any]]:
        """Links over a TCP connection that is not LAN, with that connection."""
        out = {}
        for link in self._links.values():
            stream = ratelimit.tcp_stream_of(link.conn) if link.conn is not None else None
            if stream is not None and not stream.lan:
                out[link.key] = (link, stream)
        return out

    async def _share_uplink(self) -> None:
        """While two or more peers take blocks from us over WAN connections, pace each
        connection to its fair part of what the uplink carries (flow.fair_caps), every
        SHARE_INTERVAL, from the bytes each carried in the last one.  A link is measured for
        one interval before it is paced; one with blocks queued that carried too little to
        judge keeps the cap it has; one that carried under SHARE_FLOOR with no block queued, and
        every link once fewer than two take blocks, loses its cap.  With no WAN peer taking
        blocks the task sleeps until a link begins sending (looking every interval while one
        WAN peer does)."""
        before: dict[str, int] = {}
        since = trio.current_time()
        while True:
            links = self._wan_links()
            now = trio.current_time()
            carried = {key: (link.tx.total - before[key]) / max(now - since, 1e-3)
                       for key, (link, _) in links.items() if key in before}
            sending = {key for key, (link, _) in links.items()   # blocks queued for it
                       if link.running and (link.ledger or link.carry)}
            active = sending | {key for key, rate in carried.items()
                                if rate >= flow.SHARE_FLOOR}   # (wants and presences: no)
            before = {key: link.tx.total for key, (link, _) in links.items()}
            since = now
            if len(active) < 2:
                self._pace({}, links, keep=set())
                self._share_wake = trio.Event()
                busy = bool(sending)   # one WAN peer takes blocks: a second may come
                with trio.move_on_after(flow.SHARE_INTERVAL if busy else math.inf):
                    await self._share_wake.wait()
                if not busy:   # slept: what the links carried meanwhile is not one interval
                    before, since = {}, trio.current_time()
                continue
            caps = flow.fair_caps({key: carried[key] for key in active if key in carried},
                                  new=len(active - carried.keys()))
            log.debug("bitswap: sharing the uplink among %d: %s -> %s", len(active),
                      {k[-6:]: int(v) for k, v in carried.items()},
                      {k[-6:]: int(v) for k, v in caps.items()})
            self._pace(caps, links, keep=active)
            await trio.sleep(flow.SHARE_INTERVAL)

    def _pace(self, caps: dict[str, float], links: dict[str, tuple[_Link, Any]], *,
              keep: set[str]) -> None:
        """Set ``caps``; lift every other cap except those of the links in ``keep``."""
        for key, cap in caps.items():
            stream = links[key][1]
            old = self._paced.get(key)
            if old is not None and old is not stream:   # the peer moved to another connection
                ratelimit.pace(old, None)
            ratelimit.pace(stream, cap)
            self._paced[key] = stream
        for key in [k for k in self._paced if k not in caps and k not in keep]:
            ratelimit.pace(self._paced.pop(key), None)

    # -- inbound streams -----------------------------------------------------------------------

    async def _handle_stream(self, stream: Any) -> None:
        """py-libp2p's handler task: hand the stream to our nursery and wait until it is done."""
        done = trio.Event()
        self._parked.add(done)
        try:
            if not self._start(partial(self._read_stream, stream, done)):
                await reset_stream(stream)
                return
            await done.wait()
        finally:
            self._parked.discard(done)

    async def _read_stream(self, stream: Any, done: trio.Event) -> None:
        link = self._link(stream.muxed_conn.peer_id)
        link.conn = stream.muxed_conn
        decoder = bs.FrameDecoder()
        widen_receive_window(stream, RECEIVE_WINDOW)
        ok = False
        try:
            while True:
                data = None
                with trio.move_on_after(INBOUND_IDLE_TIMEOUT):
                    try:
                        data = await stream.read(READ_SIZE)
                    except EOFError:  # py-libp2p's StreamEOF: the peer closed its side
                        data = b""
                if data is None:
                    log.debug("bitswap: inbound stream from %s idle, closing", link.key)
                    return
                if not data:
                    decoder.end_of_stream()
                    ok = True
                    return
                now = trio.current_time()
                link.rx_last = now
                link.rx.add(len(data), now)
                if link.opening is not None:   # its answer may queue behind these bytes
                    link.opening.deadline = max(link.opening.deadline,
                                                now + STREAM_OPEN_TIMEOUT)
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    await self._on_message(link, bs.decode_message(frame))
        except RemoteProtocolError as exc:
            self._stats["bad_messages"] += 1
            self.peer_log.warning(link.key, "bitswap: bad message",
                                  "bitswap: bad message from %s: %s", link.key, exc)
            self._drop_everywhere(link, f"sent a malformed message ({exc})")
        except Exception as exc:
            log_stream_error(f"bitswap: inbound stream from {link.key}", exc)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await (close_stream(stream) if ok else reset_stream(stream))
            done.set()

    async def _on_message(self, link: _Link, msg: bs.Message) -> None:
        self._stats["messages_received"] += 1
        if msg.full:
            link.ledger.clear()
            link.waiting.clear()
        for entry in msg.wantlist:
            self._on_entry(link, entry)
        if msg.blocks:
            # Hashed here, not in a worker thread: a message is at most 4 MiB (a few ms of
            # SHA-256), and the reader waits for the hashes either way.  A thread cost the
            # fetcher more CPU than it saved (a 256 MiB fetch on loopback between
            # bench/bitswap.py's provider and fetcher processes: 264 -> 288 MiB/s without it,
            # medians of 5).
            cids = _block_cids(msg.blocks)
            for cid, block in zip(cids, msg.blocks):
                self._on_block(link, cid, block.data)
            reason = self.over_budget()
            if reason is not None:
                for session in list(self._sessions):
                    session.fail(BudgetSpent(reason))
        for p in msg.presences:
            cid = bs.normalize_cid(p.cid)
            for session in list(self._sessions):
                session.on_presence(link.key, cid, p.type)
        if msg.wantlist:
            self.kick(link)

    def _on_entry(self, link: _Link, entry: bs.Entry) -> None:
        cid = bs.normalize_cid(entry.cid)
        if entry.cancel:
            if cid is not None:
                link.ledger.pop(cid, None)
                link.waiting.pop(cid, None)
            return
        self._stats["wants_received"] += 1
        want = _PeerWant(entry.cid, entry.want_type, entry.send_dont_have)
        if cid is None or self.over_budget() is not None:  # a CID we can never hold (other
            # hash or codec), or the monthly budget is spent
            if entry.send_dont_have and len(link.presences) < MAX_LEDGER_WANTS:
                link.presences.append(bs.Presence(cid=entry.cid, type=bs.PresenceType.DONT_HAVE))
            return
        link.add_want(cid, want)

    def _on_block(self, link: _Link, cid: bytes | None, data: bytes) -> None:
        self._stats["blocks_received"] += 1
        self._stats["bytes_received"] += len(data)
        # Every session sees the block (several may want it); if none asked anyone for it,
        # the sender is dropped from every transfer it takes part in.
        if not [s for s in list(self._sessions) if s.on_block(link.key, cid, data)]:
            self._stats["unwanted_blocks"] += 1
            what = cid_to_str(cid) if cid else "with an unverifiable CID prefix"
            self._drop_everywhere(link, f"sent block {what}, which was not asked for")

    def cancel_want(self, link: _Link, cid: bytes) -> None:
        """Withdraw our want for ``cid`` at ``link`` unless another fetch still waits on it
        there (wants are per peer and CID on the wire, not per fetch)."""
        if any(session.waits_at(cid, link.key) for session in self._sessions):
            return
        link.entries[cid] = bs.Entry(cid=cid, cancel=True)
        self.kick(link)

    def _drop_everywhere(self, link: _Link, reason: str) -> None:
        for session in list(self._sessions):
            session.drop(link.key, reason)

    # -- outbound: one sender task per peer --------------------------------------------------

    async def _run_link(self, link: _Link) -> None:
        """The sender to one peer: a preparer builds the next message (reading blocks in a
        thread) while the writer sends the previous one; both end when the link is idle."""
        try:
            async with trio.open_nursery() as nursery:
                send, recv = trio.open_memory_channel[tuple[bs.Message, _Sent]](0)
                nursery.start_soon(self._prepare, link, send)
                if not await self._write_all(link, recv):
                    nursery.cancel_scope.cancel()
        finally:
            link.running = False
            if link.has_work() and self._spawn is not None:
                self.kick(link)  # work arrived while we were closing

    async def _prepare(self, link: _Link,
                       send: trio.MemorySendChannel[tuple[bs.Message, _Sent]]) -> None:
        async with send:
            while True:
                with trio.move_on_after(SEND_IDLE_CLOSE):
                    while not link.has_work():
                        link.wake = trio.Event()
                        await link.wake.wait()
                if not link.has_work():
                    return  # idle: the writer closes the stream (Helia resets idle ones)
                msg, sent = await self._next_message(link)
                if msg is not None:
                    await send.send((msg, sent))

    async def _write_all(self, link: _Link,
                         recv: trio.MemoryReceiveChannel[tuple[bs.Message, _Sent]]) -> bool:
        """Write prepared messages on our stream to the peer; False if the peer is unusable."""
        stream = None
        protocol = bs.PROTOCOL_1_2_0
        try:
            async for msg, sent in recv:
                for attempt in (1, 2):
                    if stream is None:
                        stream, protocol = await self._open(link)
                        if stream is None:
                            return False
                    try:
                        await self._write_frame(link, stream, bs.encode_frame_parts(msg, protocol))
                    except _Stalled as exc:
                        # A frame may be cut: the connection cannot carry anything any more.
                        self._stats["write_stalls"] += 1
                        self._link_failed(link, str(exc))
                        stream = None
                        with trio.CancelScope(shield=True), trio.move_on_after(5):
                            await self._close_connection(link)
                        return False
                    except Exception as exc:  # reset by the peer, connection gone
                        log_stream_error(f"bitswap: outbound stream to {link.key}", exc)
                        await reset_stream(stream)
                        stream = None
                        if attempt == 2:
                            self._link_failed(link, f"cannot send to it ({exc!r})")
                            return False
                        continue
                    sent.account(self._stats)
                    break
                if not link.has_work():
                    link.tx.idle()
            return True
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await close_stream(stream)

    async def _write_frame(self, link: _Link, stream: Any, parts: list[bytes]) -> None:
        """Write one message in pieces of one Yamux frame, each only once the stream's send
        window has room for it (py-libp2p's own write gives up after 5 s without window, which
        a slow link needs).  Raises :class:`_Stalled` when the peer accepted no byte for the
        write timeout."""
        pieces = _Pieces(parts)
        stall = self.write_timeout(pieces.left)
        muxed = getattr(stream, "muxed_stream", None)
        windowed = isinstance(getattr(muxed, "send_window", None), int)
        link.tx.start(trio.current_time())
        while pieces.left:
            rate = link.tx.rate
            room = WRITE_PIECE if not rate else max(MIN_PIECE, min(
                BULK_PIECE, int(rate * PIECE_SECONDS)))
            if windowed:
                if muxed.send_window <= 0:
                    poll = WINDOW_POLL_MIN if not rate else min(
                        WINDOW_POLL_MAX, max(WINDOW_POLL_MIN, WRITE_PIECE / rate / 4))
                    with trio.move_on_after(stall) as scope:
                        await wait_send_window(muxed, poll)
                    if scope.cancelled_caught:
                        raise _Stalled(f"took no byte for {stall:g} s")
                room = max(1, min(room, muxed.send_window))
            piece = pieces.take(room)
            with trio.move_on_after(stall) as scope:
                await stream.write(piece)
            if scope.cancelled_caught:
                raise _Stalled(f"took no byte for {stall:g} s (a write was cut)")
            link.tx.add(len(piece), trio.current_time())

    async def _close_connection(self, link: _Link) -> None:
        """Close every connection to the peer.  Its TCP socket is closed first: a polite close
        writes a Yamux GO_AWAY, which would wait behind the stalled bytes forever."""
        network = self.host.get_network()
        for conn in list(network.get_connections(link.peer_id)):
            secured = getattr(getattr(conn, "muxed_conn", None), "secured_conn", None)
            raw = getattr(getattr(getattr(secured, "conn", None), "read_writer", None),
                          "read_write_closer", None)   # Noise → its RawConnection
            if raw is not None:
                try:
                    await raw.close()
                except Exception as exc:
                    log_stream_error(f"bitswap: closing the socket to {link.key}", exc)
        try:
            await network.close_peer(link.peer_id)
        except Exception as exc:
            log_stream_error(f"bitswap: closing the connection to {link.key}", exc)

    async def _open(self, link: _Link) -> tuple[Any, str]:
        """Open our stream to the peer.  On a slow link the peer's answer travels behind the
        blocks it is sending us (a 64 KiB frame takes 2 s at 256 kbit/s): the open times out
        only after STREAM_OPEN_TIMEOUT without a byte from the peer."""
        stream = None
        try:
            with trio.CancelScope(deadline=trio.current_time() + STREAM_OPEN_TIMEOUT) as scope:
                link.opening = scope
                try:
                    stream = await self.host.new_stream(link.peer_id, list(bs.PROTOCOLS))
                finally:
                    link.opening = None
            if stream is None:
                raise trio.TooSlowError(f"no answer for {STREAM_OPEN_TIMEOUT:g} s")
        except Exception as exc:
            log_stream_error(f"bitswap: opening a stream to {link.key}", exc)
            self._link_failed(link, f"cannot open a Bitswap stream ({exc!r})")
            return None, ""
        self._stats["streams_opened"] += 1
        set_max_frame(stream, BULK_PIECE)
        log.debug("bitswap: opened %s to %s", stream.get_protocol(), link.key)
        return stream, stream.get_protocol() or bs.PROTOCOL_1_2_0

    def _link_failed(self, link: _Link, reason: str) -> None:
        self.peer_log.info(link.key, "bitswap: link failed", "bitswap: peer %s: %s", link.key,
                           reason)
        self._drop_everywhere(link, reason)
        # Forget everything queued for it, including the cancels the drops just queued.
        link.ledger.clear()
        link.waiting.clear()
        link.presences.clear()
        link.entries.clear()
        link.carry.clear()

    async def _next_message(self, link: _Link) -> tuple[bs.Message | None, _Sent]:
        """Take what fits in one message from the link's queues (reads blocks in a thread)."""
        budget = bs.MAX_MESSAGE_SIZE - bs.MESSAGE_OVERHEAD
        sending = sum(1 for lk in self._links.values() if lk.running) or 1
        share = SEND_MEMORY // (2 * sending)   # the one being written and the next one
        entries = []
        for wire in list(link.entries)[:MAX_ENTRIES_PER_SEND]:
            e = link.entries.pop(wire)
            entries.append(e)
            budget -= bs.entry_size(e)
        presences = link.presences[:bs.MAX_PRESENCES_PER_MESSAGE // 2]
        del link.presences[:len(presences)]
        budget -= sum(bs.presence_size(len(p.cid)) for p in presences)
        blocks: list[tuple[bytes, _PeerWant, bytes]] = []
        if link.ledger or link.carry:
            loaded: list[tuple[bytes, _PeerWant, bytes | None]] = list(link.carry)
            link.carry = []
            todo = list(itertools.islice(link.ledger.items(), bs.MAX_BLOCKS_PER_MESSAGE))
            block_budget = min(budget, flow.message_budget(link.tx.rate, share))
            to_read = max(1, block_budget) - sum(len(d) for _, _, d in loaded if d)
            if todo and budget > 0 and to_read > 0:
                for cid, want, data in await self._load(todo, to_read):
                    if link.ledger.get(cid) is want:  # else cancelled or replaced meanwhile
                        del link.ledger[cid]
                        loaded.append((cid, want, data))
            for cid, want, data in loaded:
                if data is not None and len(data) > bs.MAX_BLOCK_SIZE:
                    log.warning("bitswap: not serving %s: %d bytes is over the Bitswap limit",
                                cid_to_str(cid), len(data))
                    data = None
                if data is None:
                    if want.send_dont_have:
                        presences.append(bs.Presence(cid=want.wire, type=bs.PresenceType.DONT_HAVE))
                        budget -= bs.presence_size(len(want.wire))
                    if len(link.waiting) < MAX_LEDGER_WANTS:
                        link.waiting[cid] = want
                elif want.want_type == bs.WantType.HAVE:
                    presences.append(bs.Presence(cid=want.wire, type=bs.PresenceType.HAVE))
                    budget -= bs.presence_size(len(want.wire))
                else:
                    size = bs.block_size(4, len(data))
                    if (blocks and size > min(budget, block_budget)
                            ) or len(blocks) >= bs.MAX_BLOCKS_PER_MESSAGE:
                        link.carry.append((cid, want, data))
                        continue
                    blocks.append((cid, want, data))
                    budget -= size
                    block_budget -= size
        sent = _Sent(entries, presences, blocks)
        if not (entries or presences or blocks):
            return None, sent
        msg = bs.Message(
            wantlist=tuple(entries), presences=tuple(presences),
            blocks=tuple(bs.Block(prefix=bs.prefix_for(w.wire), data=d) for _, w, d in blocks))
        return msg, sent

    async def _load(self, todo: list[tuple[bytes, _PeerWant]], budget: int
                    ) -> list[tuple[bytes, _PeerWant, bytes | None]]:
        reader = self._reader
        if reader is None:
            return []
        return await trio.to_thread.run_sync(_read_blocks, reader, todo, budget,
                                             self._verified, limiter=self._read_limiter)

    def _blocks_stored(self, cids: Iterable[bytes]) -> None:
        """New blocks are in the store: answer peers that wanted them earlier."""
        for link in self._links.values():
            if link.waiting:
                moved = False
                for cid in cids:
                    want = link.waiting.pop(cid, None)
                    if want is not None:
                        link.ledger[cid] = want
                        moved = True
                if moved:
                    self.kick(link)

    # -- fetching ------------------------------------------------------------------------------

    async def fetch_dag(self, root: bytes, providers: Sequence[str], *,
                        progress: Callable[[int], None] | None = None,
                        want_timeout: float | None = None) -> FetchStats:
        """Fetch every block of the DAG under ``root`` that is not yet stored.

        ``providers``: peer ids of connected (or known) peers, or full multiaddrs
        (``/ip4/…/tcp/…/p2p/<id>``) to dial.  ``progress(n)`` is called with the size of every
        block stored.  Raises :class:`FetchError` when no provider can supply some block; on
        cancellation or error every block received so far stays stored, so calling again
        resumes.
        """
        if self._spawn is None:
            raise NodeError("the block exchange is not running (serve() must be started)")
        reason = self.over_budget()
        if reason is not None:
            raise BudgetSpent(reason)
        from libp2p.peer.id import ID
        t0 = time.monotonic()
        stats = FetchStats(root=cid_to_str(root))
        links: list[_Link] = []

        async def add(p: str) -> None:
            try:
                pid = await connect(self.host, p) if "/" in p else p
                links.append(self._link(ID.from_base58(pid)))
            except Exception as exc:  # unreachable, refused, not a peer id
                stats.dropped[p] = f"cannot connect ({exc!r})"
                log.info("bitswap: provider %s: cannot connect: %r", p, exc)

        async with trio.open_nursery() as nursery:
            for p in dict.fromkeys(providers):
                nursery.start_soon(add, p)
        session = FetchSession(self, root, links, stats, progress,
                               self.want_timeout if want_timeout is None else want_timeout)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
        self._blocks_stored(session.fetched)
        stats.seconds = time.monotonic() - t0
        return stats


class _Stalled(Exception):
    """The peer accepted no byte of a message for the write timeout."""


class _Pieces:
    """Consecutive pieces of a frame given as parts (the parts are not copied as a whole)."""

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = [memoryview(p) for p in parts if p]
        self.left = sum(len(p) for p in self._parts)
        self._i = 0

    def take(self, n: int) -> bytes:
        out: list[memoryview] = []
        got = 0
        while got < n and self._i < len(self._parts):
            part = self._parts[self._i]
            piece = part[:n - got]
            out.append(piece)
            got += len(piece)
            if len(piece) == len(part):
                self._i += 1
            else:
                self._parts[self._i] = part[len(piece):]
        self.left -= got
        return b"".join(out)


class _Sent:
    """What one outgoing message carried, for the statistics once it is written."""

    def __init__(self, entries: list[bs.Entry], presences: list[bs.Presence],
                 blocks: list[tuple[bytes, _PeerWant, bytes]]) -> None:
        self.entries, self.presences, self.blocks = entries, presences, blocks

    def account(self, stats: dict[str, int]) -> None:
        stats["messages_sent"] += 1
        stats["blocks_sent"] += len(self.blocks)
        stats["bytes_sent"] += sum(len(d) for _, _, d in self.blocks)
        stats["presences_sent"] += len(self.presences)


def _block_cids(blocks: Sequence[bs.Block]) -> list[bytes | None]:
    return [bs.block_cid(b) for b in blocks]


class _VerifiedBlocks:
    """CIDs whose stored bytes this process verified less than ``ttl`` seconds ago (at most
    ``size`` of them, the oldest forgotten first)."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._at: dict[bytes, float] = {}   # in the order they were verified

    def fresh(self, cid: bytes, now: float) -> bool:
        at = self._at.get(cid)
        if at is None:
            return False
        if now - at < self.ttl:
            return True
        del self._at[cid]
        return False

    def add(self, cid: bytes, now: float) -> None:
        self._at.pop(cid, None)
        while len(self._at) >= self.size:
            del self._at[next(iter(self._at))]
        self._at[cid] = now


def _read_blocks(store: BlockStore, todo: list[tuple[bytes, _PeerWant]], budget: int,
                 verified: _VerifiedBlocks) -> list[tuple[bytes, _PeerWant, bytes | None]]:
    """Worker thread: read (and verify, unless ``verified`` says it was lately) wanted blocks
    in order until about ``budget`` bytes.  None: we do not have it; b"" for a WANT_HAVE we
    can answer (the block is not read)."""
    out: list[tuple[bytes, _PeerWant, bytes | None]] = []
    used = 0
    for cid, want in todo:
        if used >= budget:
            break
        try:
            if want.want_type == bs.WantType.HAVE:
                out.append((cid, want, b"" if store.has(cid) else None))
                continue
            now = time.monotonic()
            trusted = verified.fresh(cid, now)
            data = store.get(cid, verify=not trusted)
            if not trusted:
                verified.add(cid, now)
        except NotFound:
            data = None
        except StoreError as exc:  # corrupt or unreadable: we do not have it
            log.warning("bitswap: cannot serve %s: %s", cid_to_str(cid), exc)
            data = None
        out.append((cid, want, data))
        used += len(data) if data else 64
    return out
