"""The running node: ``Node`` wires the services (each with ``serve(*, task_status)`` and its
own tasks: replication, scheduler, dialler, connections, communities, Bitswap, gossip,
routing, relay, the control API and the web library) in one place, on one libp2p host, and
answers the control API.  ``schoolmesh start`` runs :func:`run` until SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
from functools import partial
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from crypto import PublicKey
from protocol import membership as pc
from protocol import feedsync

from . import backup, community, control, db, events, feeds, startup, storage
from . import limits as nlimits
from . import transfers as ntransfers
from .errors import NodeError
from .home import DB_FILE, Home, now_ms
from .textindex import TextIndexer
from .peerlog import PeerLog
from .p2p import host as p2p
from .p2p import meter, streams
from .dialler import Dialler
from .scheduler import TransferService
from .p2p.connmgr import IDLE_CLOSE_S, ConnectionManager
from .p2p.streams import REQUEST_TIMEOUT
from .p2p.bitswap import BlockExchange
from .community_service import CommunityService
from .course_service import CourseService
from .p2p.gossip import Gossip
from .p2p.relay import RelayError, relay_service
from .p2p.routing import ContentRouting
from .replication import Replication
from .sync import FeedSync

log = logging.getLogger("schoolmesh.node")



@dataclass
class Options:
    listen: list[str] = field(default_factory=lambda: ["/ip4/0.0.0.0/tcp/4004"])
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False
    control: str = "127.0.0.1:0"
    request_timeout: float = REQUEST_TIMEOUT   # one request/response exchange with a peer
    web: str | None = None           # HOST:PORT of the teacher web library, None: off
    idle_close: float = IDLE_CLOSE_S  # outbound connections silent this long are closed

    def check(self) -> None:
        """NodeError naming the first bad option (before anything is opened)."""
        for addr in self.listen:
            startup.check_listen(addr)
        for addr in self.bootstrap:
            startup.check_bootstrap(addr)
        startup.parse_hostport("--control", self.control)
        if self.web is not None:
            startup.parse_hostport("--web", self.web)


class Node:
    def __init__(self, home: Home, options: Options) -> None:
        self.home = home
        self.options = options
        self.host: Any = None
        self.sync: FeedSync | None = None
        self.gossip: Gossip | None = None
        self.routing: ContentRouting | None = None
        self.exchange: BlockExchange | None = None
        self.relay: Any = None
        self.limiter: nlimits.Limiter | None = None
        self.events = events.EventBus()
        self.web_url: str | None = None
        self.replication: Replication | None = None
        self.policy = community.Policy(wanted={}, topics={}, issuer_of=frozenset())
        self._policy_key: tuple[int, ...] = ()
        self._policy_stamp: tuple[int, int] = (-1, -1)
        self._rejected_seen: set[bytes] = set()          # rejected decisions already logged
        self.communities = CommunityService(home, self.events, _Mesh(self), _Fetches(self))
        self.peer_log = PeerLog(log)                     # warnings caused by peers, bounded

    # -- lifecycle ------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        key = self.home.key()
        self.home.blocks.clean_tmp()   # pieces a crash or a full disk left behind
        self.limiter = nlimits.Limiter(nlimits.load(self.home.conn))
        self.host = p2p.make_host(key.seed, self.options.listen, mdns=self.options.mdns,
                                  limiter=self.limiter)
        self.meter = meter.install(self.host)
        self.limiter.protocols = self.meter.take      # daily bytes per protocol, persisted
        # a new connection syncs at once (its peer may hold what gossip did not bring) and may
        # be the provider a waiting transfer needs (specs/links.md §2, §3)
        p2p.on_connections(
            self.host,
            connected=lambda peer: (self.wake(), self.events.publish(events.PeerConnected(peer))),
            disconnected=lambda peer: self.events.publish(events.PeerDisconnected(peer)))
        try:
            async with p2p.run_host(self.host, self.options.listen):
                await self._serve_on_host(task_status)
        except p2p.ListenError as exc:
            if exc.cause is None:
                raise NodeError(f"--listen {exc.addr}: cannot listen there") from exc
            raise startup.bind_error("--listen", exc.addr, exc.cause) from exc

    async def _serve_on_host(self, task_status: Any) -> None:
        self.sync = FeedSync(self.home, self.host, self.options.request_timeout)
        self.sync.register()
        self.host.set_stream_handler(pc.PROTOCOL_ID, self.communities.handle)
        self.refresh_policy()
        self.gossip = Gossip(self.host, self.accept_head)
        self.replication = Replication(self.home, self.host, self.sync, self.gossip,
                                       self.events, self.current_policy,
                                       entries_stored=self.communities.wake)
        self.routing = ContentRouting(self.host, self.pinned_roots, self.events)
        # Demonstration schools relay for their members (circuit relay v2): the hop
        # service runs on every node and grants reservations only to active members of a
        # community this school is a demonstration school of (decided per request, so a
        # community founded while the node runs is served at once); every node accepts
        # relayed connections, so it is reachable through its seed.
        async with self.gossip.running(), self.routing.running(), \
                relay_service(self.host, hop=True, client=True,
                              allow=self._may_reserve) as relay, \
                trio.open_nursery() as nursery:
            self.relay = relay
            await nursery.start(partial(self.limiter.serve, self.home.conn, bus=self.events))
            await nursery.start(events.DatabaseWatcher(self.home.path / DB_FILE,
                                                       self.events).serve)
            self.text_index = TextIndexer(self.home, self.events)
            await nursery.start(self.text_index.serve)
            self.exchange = BlockExchange(self.host, self.home.blocks,
                                          over_budget=self._over_budget,
                                          write_timeout=self._write_timeout)
            await nursery.start(self.exchange.serve)
            self.scheduler = TransferService(self.home, self.events, _Peers(self),
                                             self.exchange, self._want_timeout)
            await nursery.start(self.scheduler.serve)
            self.courses = CourseService(self.home, self.events, self.scheduler.queue,
                                         self.scheduler.wake_queue)
            await nursery.start(self.courses.serve)
            self.dialler = Dialler(self.host, self.events, self.home.school_id,
                                   reserve=self._reserve_on)
            await nursery.start(partial(self.dialler.serve, mdns=self.options.mdns))
            self.connections = ConnectionManager(self.host, self.dialler.keeps,
                                                 idle_close=self.options.idle_close)
            await nursery.start(self.connections.serve)
            sub = await self.gossip.subscribe()
            token = control.new_token()
            app = control.make_app(self, token)
            try:
                (url,) = await nursery.start(control.serve, app, self.options.control)
            except (OSError, BaseExceptionGroup) as exc:
                if (cause := startup.os_error(exc)) is None:
                    raise
                raise startup.bind_error("--control", self.options.control, cause) from exc
            self.web_url = None
            if self.options.web:
                from .web.server import serve as serve_web
                try:
                    self.web_url = await nursery.start(serve_web, self, self.options.web)
                except (OSError, BaseExceptionGroup) as exc:
                    if (cause := startup.os_error(exc)) is None:
                        raise
                    raise startup.bind_error("--web", self.options.web, cause) from exc
            control.write_control_file(self.home.path, url, token, os.getpid())
            await nursery.start(self.replication.serve, sub)
            await nursery.start(self.communities.serve)
            for addr in self.options.bootstrap:
                self.dialler.keep(addr)
            log.info("node %s listening on %s; control API %s", self.home.school_id,
                     ", ".join(p2p.listen_addrs(self.host)), url)
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                control.remove_control_file(self.home.path)
                nursery.cancel_scope.cancel()

    def teacher_urls(self) -> list[str]:
        """Where teachers open the web library (this computer's LAN addresses)."""
        return startup.teacher_urls(self.web_url) if self.web_url else []

    def _may_reserve(self, peer: str) -> bool:
        """Relay only for our members: active schools of a community we seed."""
        policy = self.current_policy()
        try:
            feed = PublicKey.from_school_id(peer).raw
        except ValueError:
            return False  # not an Ed25519 peer id: not a school
        return any(feed in policy.topics.get(community.topic(c), frozenset())
                   for c in policy.issuer_of)

    def _write_timeout(self, nbytes: int) -> float:
        """Seconds a Bitswap peer may accept no byte of a message: a write may wait behind
        others' at the upload rate, so the timeout stretches like the want timeout
        (specs/limits.md section 4)."""
        from protocol.bitswap import MAX_MESSAGE_SIZE

        from .p2p.bitswap import WRITE_TIMEOUT
        return self.limiter.timeout_for(max(nbytes, MAX_MESSAGE_SIZE), WRITE_TIMEOUT)

    def _want_timeout(self) -> float:
        """A want may wait behind a whole message at the slowest configured rate."""
        from protocol.bitswap import MAX_MESSAGE_SIZE

        from .p2p.bitswap import WANT_TIMEOUT
        return self.limiter.timeout_for(MAX_MESSAGE_SIZE, WANT_TIMEOUT)

    def _over_budget(self) -> str | None:
        return None if self.limiter.budget_ok() else self.limiter.budget_message()

    # -- gossip ---------------------------------------------------------------------------

    # -- replication (node/replication.py) -------------------------------------------------

    def accept_head(self, head: feedsync.SignedHead) -> str | None:
        return self.replication.accept_head(head)

    async def read_heads(self, sub: Any) -> None:
        await self.replication.read_heads(sub)

    def wake(self) -> None:
        """Run a sync round with every connected peer now."""
        if self.replication is not None:
            self.replication.wake()

    async def sync_now(self) -> dict[str, int]:
        return await self.replication.sync_now()

    def pinned_roots(self) -> list[bytes]:
        return [c for (c,) in self.home.conn.execute("SELECT DISTINCT cid FROM pins")]

    def followed(self) -> list[bytes]:
        """Feeds we replicate: those followed by hand and every community member's."""
        return list(self.policy.wanted)

    def refresh_policy(self) -> community.Policy:
        old = self.policy
        self.policy = community.policy(self.home)
        if set(self.policy.wanted) - set(old.wanted):
            self.wake()   # feeds to replicate that we did not have: ask connected peers now
        if (self.policy.wanted, self.policy.topics, self.policy.issuer_of) != \
                (old.wanted, old.topics, old.issuer_of):
            self.events.publish(events.PolicyChanged())
        self._policy_key = community.policy_key(self.home.conn)
        for c, r in self.policy.rejected:
            if r.entry not in self._rejected_seen:
                self._rejected_seen.add(r.entry)
                log.warning("community %s: decision %s by %s rejected: %s", c,
                            r.entry.hex()[:16], r.school_id, r.reason)
        return self.policy

    def current_policy(self) -> community.Policy:
        """The policy, recomputed first if a decision entry, community or follow was stored
        since (by this process or a CLI command): a revocation applies from the next entry
        on, not from the next periodic refresh. The policy key's queries run only when the
        database changed at all since the last look (SQLite's data_version counts other
        connections' commits, total_changes this connection's): gossip validators call this
        once per message."""
        conn = self.home.conn
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        stamp = (version, conn.total_changes)
        if stamp != self._policy_stamp:
            self._policy_stamp = stamp
            if community.policy_key(conn) != self._policy_key:
                self.refresh_policy()
        return self.policy

    async def _reserve_on(self, pid: str) -> None:
        """Ask a seed for a relay reservation, so schools that cannot reach this node directly
        reach it through the seed (a seed that does not relay is fine: logged, not fatal)."""
        try:
            addrs = await self.relay.reserve(pid)
            log.info("reachable through %s: %s", pid, ", ".join(addrs))
        except RelayError as exc:
            log.info("no relay reservation on %s: %s", pid, exc)

    async def api_community_join(self, code: str) -> dict[str, Any]:
        """Redeem an invite code with its seed and become a member (specs/communities.md §4)."""
        return await self.communities.join(code)

    async def api_community_link(self, code: str, community_id: str | None = None
                                 ) -> dict[str, Any]:
        """Federation: replicate another community's catalog and sign a link to it."""
        return await self.communities.link(code, community_id)

    async def api_status(self) -> dict[str, Any]:
        return {"school_id": self.home.school_id, "name": self.home.name, "role": self.home.role,
                "listen": p2p.listen_addrs(self.host),
                "peers": len(self.host.get_network().connections),
                "following": len(self.followed()),
                "feed_seq": feeds.head(self.home.conn, self.home.feed)[0],
                "own_head": "known" if backup.head_known(self.home.conn) else "learning",
                "disk": storage.disk(self.home.conn, self.home.path),
                "disk_warning": storage.low_space(self.home.conn, self.home.path),
                "communities": len(self.policy.topics), "seeding": sorted(self.policy.issuer_of),
                "web": self.web_url, "web_urls": self.teacher_urls(),
                "exchange": self.exchange.statistics(),
                "traffic": self.meter.snapshot(self.limiter.consulted["up"],
                                               self.limiter.consulted["down"]),
                "relay": {"serving": bool(self.policy.issuer_of),
                          "reachable_via": self.relay.circuit_addrs()}}

    async def api_peers(self) -> list[dict[str, Any]]:
        """Connected peers: their known addresses, the address of our connection to them, and
        whether that connection counts as LAN for the limits (specs/limits.md)."""
        out = []
        for pid, conns in self.host.get_network().connections.items():
            try:
                addrs = [str(a) for a in self.host.get_peerstore().addrs(pid)]
            except Exception:  # PeerStoreError: an inbound peer not identified yet
                addrs = []
            conn = conns[0] if isinstance(conns, list) else conns
            remote, lan = p2p.connection_lan(conn) if conn is not None else (None, False)
            out.append({"peer_id": pid.to_string(), "addrs": addrs, "remote": remote,
                        "lan": lan})
        return out

    async def api_connect(self, addr: str) -> dict[str, Any]:
        try:
            pid = await p2p.connect(self.host, addr)
        except trio.TooSlowError:
            raise NodeError(f"no answer from {addr} within {p2p.DIAL_TIMEOUT:.0f} s") from None
        except Exception as exc:
            raise NodeError(f"cannot connect to {addr}: {exc}") from None
        self.wake()
        return {"peer_id": pid}

    async def api_sync(self, now: bool = True) -> dict[str, Any]:
        return {"added": await self.sync_now()}

    async def api_fetch(self, target: str, priority: str = "teacher") -> dict[str, Any]:
        """Queue a fetch of a resource's (or CID's) blocks; returns its id (specs/control.md)."""
        return await self.scheduler.fetch(target, priority)

    async def api_repair(self, roots: list[str]) -> dict[str, Any]:
        """verify --repair: fetch these DAGs again (their corrupt blocks are already removed);
        each completed fetch pins its root under the reason it was kept for (or ``user``).
        Returns {"ids": {root: transfer id}}."""
        return await self.scheduler.repair(roots)

    async def api_transfers(self) -> list[dict[str, Any]]:
        return await self.scheduler.list()

    async def api_transfer_wait(self, id: int, state: str,  # noqa: A002
                                seconds: float = 30.0) -> dict[str, Any]:
        """The transfer once its state differs from ``state``, or after ``seconds``."""
        return await self.scheduler.wait(id, state, seconds)

    async def api_transfer_control(self, id: int, action: str) -> dict[str, Any]:  # noqa: A002
        """pause | resume | cancel a transfer; returns it."""
        return await self.scheduler.control(id, action)

    @property
    def transfers(self) -> dict[int, dict[str, Any]]:
        """The queue as {id: transfer} (the JSON of api_transfers)."""
        return self.scheduler.transfers

    @property
    def queue(self) -> ntransfers.TransferQueue:
        return self.scheduler.queue

    def wake_queue(self) -> None:
        self.scheduler.wake_queue()



class _Mesh:
    """What the community service asks of the running node (node/community_service.py
    ``Mesh``)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.request_timeout = node.options.request_timeout

    def policy(self, *, refresh: bool = False) -> community.Policy:
        return self._node.refresh_policy() if refresh else self._node.current_policy()

    def accept_head(self, head: feedsync.SignedHead) -> str | None:
        return self._node.accept_head(head)

    def subscribed(self, topic: str) -> bool:
        return topic in self._node.gossip.topics

    async def subscribe(self, topic: str, rule: Callable[[feedsync.SignedHead], str | None]
                        ) -> Any:
        return await self._node.gossip.subscribe(topic, rule)

    async def read_heads(self, sub: Any) -> None:
        await self._node.read_heads(sub)

    def keep_dialled(self, addr: str) -> None:
        self._node.dialler.keep(addr)

    async def holders(self, root: bytes) -> set[str]:
        return {info.peer_id.to_string()
                for info in await self._node.routing.find_providers(root)}

    async def connect(self, addr: str) -> str:
        return await p2p.connect(self._node.host, addr)

    async def request(self, peer: str, payload: bytes, *, max_reply: int) -> bytes:
        return await streams.request(self._node.host, peer, pc.PROTOCOL_ID, payload,
                                     max_reply=max_reply, timeout=self.request_timeout)

    def replicate_now(self) -> None:
        self._node.wake()


class _Fetches:
    """What the community service asks of the transfer queue (``Fetches`` there)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def active_for(self, root: bytes) -> dict[str, Any] | None:
        return self._node.queue.active_for(root)

    def add(self, target: str, root: bytes, **kw: Any) -> int:
        return self._node.queue.add(target, root, **kw)

    def wake(self) -> None:
        self._node.wake_queue()


class _Peers:
    """What the transfer scheduler asks of the network (node/scheduler.py ``Peers``)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def connected(self) -> list[str]:
        return [p.to_string() for p in self._node.host.get_network().connections]

    async def find_providers(self, root: bytes) -> list[str]:
        me = self._node.host.get_id()
        return [f"{info.addrs[0]}/p2p/{info.peer_id.to_string()}"
                for info in await self._node.routing.find_providers(root)
                if info.peer_id != me and info.addrs]

    def known_addr(self, peer: str) -> str | None:
        return p2p.known_addr(self._node.host, peer)


async def run(home: Home, options: Options,
              ready: Callable[[Node], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down cleanly; ``ready(node)`` once it serves.
    NodeError naming the option if an option is bad or a port cannot be had."""
    options.check()
    # Signals are caught from the start, so a SIGTERM during start-up also shuts down cleanly.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            async def start_node() -> None:
                node = await nursery.start(Node(home, options).serve)
                if ready is not None:
                    ready(node)
            nursery.start_soon(start_node)
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                break
            nursery.cancel_scope.cancel()


def follow(home: Home, school_id: str) -> dict[str, Any]:
    try:
        feed = PublicKey.from_school_id(school_id).raw
    except ValueError as exc:
        raise NodeError(str(exc)) from None
    if feed == home.feed:
        raise NodeError("a school does not need to follow itself")
    with db.write(home.conn) as conn:
        conn.execute("INSERT OR IGNORE INTO follows VALUES (?, ?, ?)", (feed, school_id, now_ms()))
    return {"following": school_id}


def unfollow(home: Home, school_id: str) -> dict[str, Any]:
    with db.write(home.conn) as conn:
        n = conn.execute("DELETE FROM follows WHERE school_id = ?", (school_id,)).rowcount
    if not n:
        raise NodeError(f"not following {school_id}")
    return {"unfollowed": school_id}
