"""Feed replication over ``/schoolmesh/feed/1.0.0``: serve our stored feeds, pull others'.

Any peer that has a feed can serve it (not only its author): entries are verified by
signature and chain on arrival (``records.decode_entry`` + ``feeds.admit``), so the server is
never trusted. Problems with a peer are logged in one line and never stop the node.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from protocol import feedsync, records
from protocol.errors import ProtocolError, RemoteProtocolError

from . import db, feeds
from .home import Home
from .peerlog import PeerLog
from .p2p.streams import REQUEST_TIMEOUT, close_stream, peer_of, read_frame, request, reset_stream

log = logging.getLogger("schoolmesh.sync")



class FeedSync:
    """Owns the feed protocol handler of one node."""

    def __init__(self, home: Home, host: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.home = home
        self.host = host
        self.timeout = timeout
        self.changed = trio.Event()  # set whenever new entries were stored
        self.peer_log = PeerLog(log)

    def register(self) -> None:
        self.host.set_stream_handler(feedsync.PROTOCOL_ID, self._handle)

    # -- serving --------------------------------------------------------------------------

    async def _handle(self, stream: Any) -> None:
        peer = peer_of(stream)
        try:
            with trio.fail_after(self.timeout):
                msg = feedsync.parse(feedsync.decode_body(
                    await read_frame(stream, feedsync.MAX_FRAME)))
                reply = self.answer(msg)
                await stream.write(feedsync.encode_frame(reply.to_msg()))
        except (ProtocolError, trio.TooSlowError) as exc:
            self.peer_log.warning(peer, "feed sync: bad request",
                                  "feed sync: bad request from %s: %s", peer, exc)
            await reset_stream(stream)
            return
        except Exception as exc:  # a broken stream must not take the node down
            self.peer_log.warning(peer, "feed sync: stream failed",
                                  "feed sync: stream with %s failed: %s", peer, exc)
            await reset_stream(stream)
            return
        await close_stream(stream)

    def answer(self, msg: feedsync.Message) -> feedsync.Message:
        conn = self.home.conn
        if isinstance(msg, feedsync.HeadsRequest):
            if msg.feeds:
                rows = [conn.execute("SELECT feed, head_seq, head_hash FROM feeds WHERE feed = ?"
                                     " AND head_seq > 0 AND flagged IS NULL", (f,)).fetchone()
                        for f in msg.feeds]
                rows = [r for r in rows if r]
            else:
                rows = conn.execute("SELECT feed, head_seq, head_hash FROM feeds WHERE head_seq"
                                    " > 0 AND flagged IS NULL LIMIT ?",
                                    (feedsync.MAX_FEEDS_PER_REQUEST,)).fetchall()
            return feedsync.Heads(heads=tuple(feedsync.Head(feed=f, seq=s, hash=h)
                                              for f, s, h in rows))
        if isinstance(msg, feedsync.EntriesRequest):
            out, size = [], 0
            rows = conn.execute("SELECT raw FROM entries WHERE feed = ? AND seq > ? ORDER BY seq"
                                " LIMIT ?", (msg.feed, msg.after, msg.limit + 1)).fetchall()
            for (raw,) in rows[:msg.limit]:
                if out and size + len(raw) > feedsync.RESPONSE_SOFT_BYTES:
                    break
                out.append(raw)
                size += len(raw)
            more = len(out) < len(rows)
            return feedsync.Entries(feed=msg.feed, entries=tuple(out), more=more)
        return feedsync.Error(code="bad-request", message="expected heads? or entries?")

    # -- pulling --------------------------------------------------------------------------

    async def request(self, peer_id: Any, msg: feedsync.Message) -> feedsync.Message:
        reply = feedsync.parse(feedsync.decode_body(await request(
            self.host, peer_id, feedsync.PROTOCOL_ID, feedsync.encode_body(msg.to_msg()),
            max_reply=feedsync.MAX_FRAME, timeout=self.timeout)))
        if isinstance(reply, feedsync.Error):
            raise RemoteProtocolError(f"peer refused: {reply.code}: {reply.message}")
        return reply

    async def heads(self, peer_id: Any, feeds_: list[bytes]) -> list[feedsync.Head]:
        reply = await self.request(peer_id, feedsync.HeadsRequest(feeds=tuple(feeds_)))
        if not isinstance(reply, feedsync.Heads):
            raise RemoteProtocolError("expected heads")
        return list(reply.heads)

    async def pull(self, peer_id: Any, feed: bytes, gate: feeds.Gate) -> int:
        """Fetch and store every entry of ``feed`` the peer has after our head; returns how
        many were added. Each entry passes ``feeds.admit``: the pull stops at the first invalid
        entry (nothing after it is stored) and at the first one dated at or after the feed's
        cutoff (a school removed from a community: its later entries are not replicated)."""
        added = 0
        cut = False
        while not cut:
            after, _ = feeds.head(self.home.conn, feed)
            reply = await self.request(peer_id, feedsync.EntriesRequest(feed=feed, after=after))
            if not isinstance(reply, feedsync.Entries) or reply.feed != feed:
                raise RemoteProtocolError("expected entries of the feed asked for")
            if not reply.entries:
                break
            n, problem = 0, None
            with db.write(self.home.conn) as conn:
                for raw in reply.entries:
                    try:
                        e = records.decode_entry(raw)
                        result = feeds.admit(conn, e, gate, feed=feed)
                    except RemoteProtocolError as exc:
                        problem = exc  # keep what came before it, store nothing after it
                        break
                    if result in (feeds.Appended.CUT, feeds.Appended.UNWANTED):
                        cut = True
                        break
                    if result is feeds.Appended.EQUIVOCATION:
                        log.warning("feed sync: %s equivocated at seq %d; feed flagged",
                                    e.school_id, e.seq)
                        break
                    n += result is feeds.Appended.ADDED
            added += n
            if n:
                self.changed.set()
                self.changed = trio.Event()
            if problem is not None:
                raise problem
            if not reply.more or n == 0:
                break
        return added
