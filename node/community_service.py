"""The network side of communities (specs/communities.md): the
``/schoolmesh/community/1.0.0`` handler (charter requests, invite redemption), joining and
linking over the network, the community gossip topics, and the loop that keeps seeds dialled
and queues what a demonstration school seeds or a member subscribed to. The synchronous policy
(who is a member, what is seeded) is node/community.py; this class owns no state of its own
beyond its wake-up event. It reaches the rest of the node only through the narrow interfaces
:class:`Mesh` and :class:`Fetches` (wired in node/daemon.py), so it is tested alone with
recorded doubles of them (tests/test_community_service.py).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol

import trio

from protocol import membership as pc
from protocol import feedsync
from protocol.errors import ProtocolError
from protocol.framing import encode_frame

from . import backup, community, db, events, gc, oversight
from .errors import NodeError
from .home import Home, now_ms
from .peerlog import PeerLog
from .p2p import streams

log = logging.getLogger("schoolmesh.node")

COMMUNITY_RECHECK = 60.0    # membership is re-checked this often even when nothing was written
                            # (certificates expire with time)
OWN_PIN_CHECK_FIRST = 2.0   # seeds are asked whether they hold our new versions this soon...
OWN_PIN_CHECK = 60.0        # ...then doubling up to this (nothing local tells us when they do)


class Mesh(Protocol):
    """What the community service asks of the running node (node/daemon.py ``_Mesh``)."""
    request_timeout: float

    def policy(self, *, refresh: bool = False) -> community.Policy:
        """The replication policy (recomputed first with ``refresh``)."""

    def accept_head(self, head: feedsync.SignedHead) -> str | None: ...

    def subscribed(self, topic: str) -> bool: ...

    async def subscribe(self, topic: str,
                        rule: Callable[[feedsync.SignedHead], str | None]) -> Any: ...

    async def read_heads(self, sub: Any) -> None:
        """Pull the feeds behind the heads arriving on ``sub`` (until cancelled)."""

    def keep_dialled(self, addr: str) -> None: ...

    async def holders(self, root: bytes) -> set[str]:
        """School ids (peer ids) that provide ``root``."""

    async def connect(self, addr: str) -> str:
        """Dial ``addr``; its peer id."""

    async def request(self, peer: str, payload: bytes, *, max_reply: int) -> bytes:
        """One request/response exchange on the community protocol."""

    def replicate_now(self) -> None: ...


class Fetches(Protocol):
    """What it asks of the transfer queue (node/transfers.py, node/scheduler.py)."""

    def active_for(self, root: bytes) -> dict[str, Any] | None: ...

    def add(self, target: str, root: bytes, *, priority: str, bytes_total: int,
            pin_reason: str, pin_ref: str) -> int: ...

    def wake(self) -> None: ...


class CommunityService:
    def __init__(self, home: Home, bus: events.EventBus, mesh: Mesh, fetches: Fetches) -> None:
        self.home, self.mesh, self.fetches = home, mesh, fetches
        # membership, seeds and what to seed follow the database; time itself changes them
        # only when a certificate expires (COMMUNITY_RECHECK)
        self._sub = bus.subscribe(events.DatabaseChanged, events.Overflow)
        self.peer_log = PeerLog(log)
        self._own_check_due = 0.0
        self._own_delay = OWN_PIN_CHECK_FIRST
        self._own_stale: list[tuple[str, bytes]] = []

    def wake(self) -> None:
        """Look at memberships, topics, seeds and what to seed again now."""
        self._sub.kick()

    def rule(self, topic: str) -> Any:
        """Validator of a community topic: heads of its active members only (the founder
        included); anything else is dropped and never pulled for the community."""
        def accept(head: feedsync.SignedHead) -> str | None:
            if head.feed == self.home.feed:
                return None
            if head.feed not in self.mesh.policy().topics.get(topic, frozenset()):
                return "not an active member of the community"
            return self.mesh.accept_head(head)
        return accept

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Follow membership: subscribe to our communities' topics, keep their seeds dialled,
        and queue what we seed (demonstration schools) or subscribed to."""
        async with trio.open_nursery() as nursery:   # the readers of community topics
            task_status.started()
            while True:
                try:
                    policy = self.mesh.policy(refresh=True)
                    for topic in policy.topics:
                        if not self.mesh.subscribed(topic):
                            sub = await self.mesh.subscribe(topic, self.rule(topic))
                            nursery.start_soon(self.mesh.read_heads, sub)
                    for row in community.rows(self.home.conn):
                        for addr in row["seeds"]:
                            self.mesh.keep_dialled(addr)
                    self._queue_fetches(policy)
                    if policy.topics:   # a member: say what we hold (rate-limited)
                        oversight.announce(self.home)
                    await self._drop_superseded_own()
                except (NodeError, ProtocolError, sqlite3.Error) as exc:
                    log.warning("communities: %s", exc)
                wait = COMMUNITY_RECHECK
                if self._own_stale:   # our new versions: ask the seeds again when due
                    wait = min(wait, max(0.0, self._own_check_due - trio.current_time()))
                await self._sub.wait(wait)

    def _queue_fetches(self, policy: community.Policy) -> None:
        hidden = oversight.hidden_from_me(self.home)   # moderation: not seeded
        if policy.issuer_of:
            kept, _, _ = community.seeding_plan(self.home, policy.memberships)
            kept = [s for s in kept if s.resource_id not in hidden]
            for s in kept:
                self._keep(s.content, s.resource_id, s.size, "seeding", "community", s.community)
            # what left the plan (over the quota, a removed school) is no longer kept
            keep = {s.content for s in kept}
            conn = self.home.conn
            gone = [c for (c,) in conn.execute("SELECT cid FROM pins WHERE reason = "
                                               "'community'") if c not in keep]
            if gone:
                with db.write(conn) as c:
                    c.executemany("DELETE FROM pins WHERE reason = 'community' AND cid = ?",
                                  [(x,) for x in gone])
        for rid, root, size, sub_id in community.subscription_matches(self.home):
            if rid in hidden:
                continue
            self._keep(root, rid, size, "subscription", "subscription", f"subscription {sub_id}")
        conn = self.home.conn
        if db.get_setting(conn, backup.REFETCH_OWN_SETTING):
            # restored: our own content comes back from peers and is pinned as it arrives
            own = backup.own_resources(conn, self.home.feed)
            for rid, root, size in own:
                self._keep(root, rid, size, "teacher", "own", rid)
            if all(conn.execute("SELECT 1 FROM pins WHERE cid = ? AND reason = 'own'",
                                (root,)).fetchone() for _, root, _ in own):
                with db.write(conn) as c:
                    c.execute("DELETE FROM settings WHERE key = ?", (backup.REFETCH_OWN_SETTING,))

    async def _drop_superseded_own(self) -> None:
        """Our older versions keep their ``own`` pin until a seed or issuer of one of our
        communities provides the new version (then the community has it without us)."""
        conn = self.home.conn
        stale = gc.stale_own_pins(conn, self.home.feed)
        if stale != self._own_stale:
            self._own_delay = OWN_PIN_CHECK_FIRST
        elif not stale or trio.current_time() < self._own_check_due:
            return   # asked recently about these very versions
        self._own_stale = stale
        if not stale:
            return
        self._own_check_due = trio.current_time() + self._own_delay
        self._own_delay = min(self._own_delay * 2, OWN_PIN_CHECK)
        seeds = community.seeds_and_issuers(conn, self.mesh.policy().memberships)
        for rid, content in stale:
            if await self.mesh.holders(content) & seeds:
                with db.write(conn) as c:
                    gc.drop_old_own(c, rid, content)
                log.info("own resource %s: a seed holds the new version; the old one's pin "
                         "is dropped", rid)

    def _keep(self, root: bytes, rid: str, size: int, priority: str, reason: str,
              ref: str) -> None:
        """Pin ``root`` for ``reason`` now if we hold all of it, else queue its fetch (which
        pins it when done). A fetch the operator cancelled (or that failed) is not retried."""
        from crypto import cid_to_str

        from . import library
        conn = self.home.conn
        if conn.execute("SELECT 1 FROM pins WHERE cid = ? AND reason = ? AND ref = ?",
                        (root, reason, ref)).fetchone():
            return
        if gc.was_evicted(conn, root, reason):
            return   # dropped for the cache quota: not kept or fetched again
        if self.fetches.active_for(root) is not None:
            return
        if library.first_missing(self.home, cid_to_str(root)) is None:
            with db.write(conn) as c:
                db.pin(c, root, reason, ref, now_ms())
            return
        if conn.execute("SELECT 1 FROM transfers WHERE root = ? AND pin_reason = ? AND state IN"
                        " ('failed', 'cancelled')", (root, reason)).fetchone():
            return
        self.fetches.add(rid, root, priority=priority, bytes_total=size, pin_reason=reason,
                         pin_ref=ref)
        self.fetches.wake()

    async def handle(self, stream: Any) -> None:
        """Serve /schoolmesh/community/1.0.0: a charter request or an invite redemption."""
        peer = streams.peer_of(stream)
        try:
            with trio.fail_after(self.mesh.request_timeout):
                data = await streams.read_frame(stream, pc.MAX_REDEEM_MESSAGE)
                resp = community.answer(self.home, data, peer)
                await stream.write(encode_frame(resp.encode()))
        except (ProtocolError, trio.TooSlowError) as exc:
            self.peer_log.warning(peer, "community: bad request",
                                  "community: bad request from %s: %s", peer, exc)
            await streams.reset_stream(stream)
            return
        except Exception as exc:  # a broken stream must not take the node down
            self.peer_log.warning(peer, "community: stream failed",
                                  "community: stream with %s failed: %s: %s", peer,
                                  type(exc).__name__, exc)
            await streams.reset_stream(stream)
            return
        await streams.close_stream(stream)
        if resp.error is not None:
            self.peer_log.info(peer, "community: refused",
                               "community: refused a request from %s: %s", peer, resp.error)
        elif resp.certificate is not None:
            log.info("community: %s redeemed an invite", peer)
            self.wake()

    async def request(self, peer: str, msg: Any) -> pc.RedeemResponse:
        return pc.decode_redeem_response(await self.mesh.request(
            peer, msg.encode(), max_reply=pc.MAX_REDEEM_MESSAGE))

    async def _contact_seed(self, inv: pc.Invite) -> tuple[str, bytes]:
        """Connect to the first seed of an invite that answers; return (peer, charter)."""
        problems = []
        for addr in inv.seeds:
            try:
                peer = await self.mesh.connect(addr)
            except Exception as exc:
                problems.append(f"{addr}: {type(exc).__name__} {exc}".strip())
                continue
            if peer != inv.issuer:
                problems.append(f"{addr}: that node is not the school that issued the invite")
                continue
            try:
                resp = await self.request(peer, pc.CharterRequest(community=inv.community))
            except (ProtocolError, trio.TooSlowError) as exc:
                problems.append(f"{addr}: {exc}")
                continue
            except Exception as exc:
                problems.append(f"{addr}: {type(exc).__name__}: {exc}")
                continue
            if resp.charter is None:
                raise NodeError(f"the seed does not know the community: {resp.message}")
            pc.check_charter_for(resp.charter, inv.community)
            return peer, resp.charter
        raise NodeError("no seed of the invite answered (" + "; ".join(problems) + ")")

    async def join(self, code: str) -> dict[str, Any]:
        """Redeem an invite code with its seed and become a member (specs/communities.md §4)."""
        inv = _decode_code(code)
        home = self.home
        if any(r["community"] == inv.community and r["relation"] == "member"
               for r in community.rows(home.conn)) and \
                community.membership(home, inv.community).is_active(home.school_id):
            raise NodeError(f"this school is already a member of {inv.community}")
        peer, charter = await self._contact_seed(inv)
        try:
            resp = await self.request(peer, pc.RedeemRequest.build(
                inv, self.home.school_id))
        except (ProtocolError, trio.TooSlowError) as exc:
            raise NodeError(f"redeeming the invite failed: {exc}") from None
        if resp.certificate is None:
            raise NodeError(f"the seed refused the invite: {resp.error}: {resp.message}")
        result = community.accept_join(self.home, inv, charter, resp.certificate)
        self.mesh.policy(refresh=True)
        self.wake()
        self.mesh.replicate_now()
        return result

    async def link(self, code: str, community_id: str | None = None) -> dict[str, Any]:
        """Federation: replicate another community's catalog (its invite code names it and
        its seeds; the secret is not used) and sign a link to it."""
        inv = _decode_code(code)
        _, charter = await self._contact_seed(inv)
        result = community.add_link(self.home, community_id, charter, list(inv.seeds))
        self.mesh.policy(refresh=True)
        self.wake()
        self.mesh.replicate_now()
        return result


def _decode_code(code: str) -> pc.Invite:
    try:
        return pc.decode_invite(code)
    except ProtocolError as exc:
        raise NodeError(f"not a valid invite code: {exc}") from None
