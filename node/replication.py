"""Feed replication as a service (specs/feedsync.md): signed heads in and out on gossip,
the entries a head carries, and sync rounds with connected peers.

``Replication`` owns its tasks (``serve``), is told the node's replication policy through a
callable, and tells the rest of the node nothing directly: what it stores is a write to the
database, which the event bus reports to whoever cares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from crypto import PublicKey
from protocol import feedsync, records
from protocol.errors import ProtocolError

from . import backup, community, db, events, feeds
from .errors import DiskFull
from .home import Home, now_ms
from .p2p.gossip import Gossip
from .peerlog import PeerLog
from .sync import FeedSync

log = logging.getLogger("schoolmesh.node")

SYNC_INTERVAL = 1800.0      # seconds between full catch-up rounds with every connected peer
                            # (heads arrive by gossip, which pushes them to every connected
                            # member, and a new connection syncs at once; this only repairs a
                            # lost gossip message: specs/links.md §3)
ANNOUNCE_RETRY = 1.0        # a head that could not be published is tried again this soon
ANNOUNCE_REPEATS = (2.0, 10.0)   # a new head is announced again this long after
RETRY_INTERVAL = 0.25       # a gossiped head we have not reached yet is retried this often...
RETRY_ATTEMPTS = 80         # ...for 20 s (peers may still be pulling it themselves)


class Replication:
    def __init__(self, home: Home, host: Any, sync: FeedSync, gossip: Gossip,
                 bus: events.EventBus, policy: Callable[[], community.Policy],
                 entries_stored: Callable[[], None] = lambda: None) -> None:
        """``policy()`` is the node's current replication policy (refreshed as needed);
        ``entries_stored()`` is called when entries of other schools were stored."""
        self.home = home
        self.host = host
        self.sync = sync
        self.gossip = gossip
        self.events = bus
        self.policy = policy
        self.entries_stored = entries_stored
        self.peer_log = PeerLog(log)
        self._wake = trio.Event()
        self._announced = 0
        self._behind: dict[bytes, tuple[int, int]] = {}  # feed -> (gossiped seq, retries left)
        self._cut_seen: dict[bytes, int] = {}            # feed -> head seq refused by cutoff

    async def serve(self, heads: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Read ``heads`` (the global heads topic's subscription), announce ours, sync."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.read_heads, heads)
            nursery.start_soon(self.announce)
            nursery.start_soon(self.sync_rounds)
            task_status.started()

    def accept_head(self, head: feedsync.SignedHead) -> str | None:
        """Validator: only heads of feeds we follow (or hold) that are ahead of ours."""
        row = self.home.conn.execute(
            "SELECT head_seq, flagged FROM feeds WHERE feed = ?", (head.feed,)).fetchone()
        if head.feed == self.home.feed:
            return None  # our own announcement on its way out
        if row is None and head.feed not in self.policy().wanted and \
                not self.home.conn.execute(
                "SELECT 1 FROM follows WHERE feed = ?", (head.feed,)).fetchone():
            return "unknown feed"
        if row is not None and row[1]:
            return f"feed flagged: {row[1]}"
        if row is not None and head.seq <= row[0]:
            return "stale"
        return None

    async def read_heads(self, sub: Any) -> None:
        while True:
            head, source = await Gossip.next_head(sub)
            if head is None or head.feed == self.home.feed:
                continue
            if head.entry is not None and self._append_carried(head):
                continue
            seq, _ = self._behind.get(head.feed, (0, 0))
            self._behind[head.feed] = (max(seq, head.seq), RETRY_ATTEMPTS)
            self.wake()

    def _append_carried(self, head: feedsync.SignedHead) -> bool:
        """Append the entry a head carries if it is exactly our next one; True if the head
        needs no pull (stored, or refused by the feed's cutoff)."""
        if feeds.head(self.home.conn, head.feed)[0] != head.seq - 1:
            return False
        try:
            entry = records.decode_entry(head.entry)
            with db.write(self.home.conn) as conn:
                result = feeds.admit(conn, entry, self.policy().gate(),
                                     feed=head.feed, seq=head.seq)
        except DiskFull as exc:
            self.peer_log.warning("disk", "disk full", "gossip: entry not stored: %s", exc)
            return False
        except ProtocolError as exc:
            self.peer_log.warning(head.feed.hex(), "gossip: carried entry rejected",
                                  "gossip: carried entry of %s rejected: %s",
                                  head.feed.hex()[:16], exc)
            return False
        if result is feeds.Appended.CUT:
            log.info("gossip: entry %d of %s is dated after its removal; not stored",
                     entry.seq, entry.school_id)
            return True
        if result is feeds.Appended.ADDED:
            self.entries_stored()
            return True
        return False

    async def announce(self) -> None:
        """Announce our head whenever it moves (CLI commands write the DB directly), and again
        ANNOUNCE_REPEATS seconds later: a gossip message published while a mesh is still
        forming (a school that just joined) reaches nobody, and the full sync round that would
        repair it runs only every SYNC_INTERVAL (specs/links.md §3)."""
        repeats: list[float] = []
        sub = self.events.subscribe(events.DatabaseChanged, events.PolicyChanged,
                                    events.Overflow)
        while True:
            seq, hash_ = feeds.head(self.home.conn, self.home.feed)
            now = trio.current_time()
            due = bool(repeats) and now >= repeats[0]
            if hash_ is not None and (seq != self._announced or due):
                (raw,) = self.home.conn.execute("SELECT raw FROM entries WHERE feed = ? AND "
                                                "seq = ?", (self.home.feed, seq)).fetchone()
                head = feedsync.sign_head(self.home.key(), seq=seq, hash=hash_, time=now_ms(),
                                          entry=raw)
                try:
                    await self.gossip.publish(head)
                    for topic in self.policy().topics:
                        await self.gossip.publish(head, topic)
                    if seq != self._announced:
                        repeats = [now + d for d in ANNOUNCE_REPEATS]
                    elif due:
                        repeats.pop(0)
                    self._announced = seq
                except Exception as exc:  # no peers yet, etc.: retry next round
                    log.debug("gossip: publish failed: %s", exc)
                    repeats.insert(0, trio.current_time() + ANNOUNCE_RETRY)
            # a new entry of ours is a write to the database (ours or a CLI command's)
            await sub.wait(max(0.0, repeats[0] - trio.current_time()) if repeats
                           else float("inf"))

    # -- sync -----------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def sync_rounds(self) -> None:
        while True:
            await self.sync_now()
            wait = RETRY_INTERVAL if self._still_behind() else SYNC_INTERVAL
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()

    def _still_behind(self) -> bool:
        """Forget gossiped heads we reached or gave up on; True if one remains."""
        for feed, (seq, left) in list(self._behind.items()):
            if feeds.head(self.home.conn, feed)[0] >= seq or left <= 0:
                del self._behind[feed]
            else:
                self._behind[feed] = (seq, left - 1)
        return bool(self._behind)

    async def sync_now(self) -> dict[str, int]:
        """Ask every connected peer for the heads of the feeds we follow; pull what is new."""
        self.policy()
        wanted = list(self.policy().wanted)
        learning = not backup.head_known(self.home.conn)
        if learning:   # restored: ask for our own feed too, admitted like any other
            wanted = [*wanted, self.home.feed]
        added: dict[str, int] = {}
        if not wanted:
            return added
        for peer in list(self.host.get_network().connections.keys()):
            try:
                heads = await self.sync.heads(peer, wanted)
                for h in heads:
                    ours, _ = feeds.head(self.home.conn, h.feed)
                    cutoff = self.policy().wanted.get(h.feed)
                    if h.seq <= ours or (cutoff is not None
                                         and self._cut_seen.get(h.feed) == h.seq):
                        continue
                    gate = self.policy().gate()   # as refreshed meanwhile (an expiry)
                    if h.feed == self.home.feed:
                        gate = feeds.Gate(wanted={**gate.wanted, h.feed: None})
                    n = await self.sync.pull(peer, h.feed, gate)
                    if cutoff is not None and feeds.head(self.home.conn, h.feed)[0] < h.seq:
                        self._cut_seen[h.feed] = h.seq  # the rest is dated after the cutoff
                    sid = PublicKey(h.feed).school_id
                    added[sid] = added.get(sid, 0) + n
                    if n:
                        log.info("sync: %d new entries of %s from %s", n, sid, peer)
                        self.entries_stored()
                if learning and self._learnt_own_head(peer.to_string(), heads):
                    learning = False
                    wanted = wanted[:-1]
            except (ProtocolError, trio.TooSlowError, OSError) as exc:
                self.peer_log.warning(peer, "sync: failed", "sync: with %s: %s", peer, exc)
            except Exception as exc:  # py-libp2p raises many stream/connection error types
                self.peer_log.warning(peer, "sync: failed", "sync: with %s: %s: %s", peer,
                                      type(exc).__name__, exc)
        return added

    def _learnt_own_head(self, peer: str, heads: list[feedsync.Head]) -> bool:
        """After a sync round with ``peer``: the own head is known if the peer is a seed or
        issuer of one of our communities (they replicate every member's feed) or holds our
        feed, and we now hold at least as much of it as the peer (specs/backup.md §4)."""
        own = [h for h in heads if h.feed == self.home.feed]
        if not own and peer not in community.seeds_and_issuers(
                self.home.conn, self.policy().memberships):
            return False
        seq, _ = feeds.head(self.home.conn, self.home.feed)
        if own and seq < own[0].seq:
            return False   # the pull stopped short: ask again next round
        with db.write(self.home.conn) as conn:
            backup.mark_head_known(conn)
        log.info("own feed: entry %d is our latest (learnt from %s); publishing is possible",
                 seq, peer)
        self.entries_stored()
        return True
