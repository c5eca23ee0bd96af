"""Content routing: kad-dht provider records for the content roots this node keeps.

py-libp2p's DHT does not bootstrap itself and never re-announces (docs/py-libp2p.md): connected peers
are added to the routing table as they appear, and every pinned root is (re-)provided when it
is new and then every :data:`REPROVIDE_INTERVAL`. Keys are the CID's multihash, the same as
IPFS, so kubo/Helia nodes in the same DHT see our providers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from crypto import cid_to_str

from ..events import DatabaseChanged, EventBus, Overflow, PeerConnected

log = logging.getLogger("schoolmesh.routing")

REPROVIDE_INTERVAL = 12 * 3600.0   # provider records expire after 24 h in the IPFS DHT
# py-libp2p's DHT looks up random keys every 10 minutes (FIND_NODE to the peers it knows, which
# dials every peer they name: in a community, each village then connected to every other
# village, 19 MB/day per village idle) and pings routing-table peers unheard of for an hour.
# Both run with the re-provide round instead (specs/links.md §3): a village's routing table
# needs its seeds, which it keeps connected anyway.
TABLE_REFRESH_INTERVAL = REPROVIDE_INTERVAL
FIND_TIMEOUT = 10.0


class ContentRouting:
    def __init__(self, host: Any, pinned_roots: Any, bus: EventBus) -> None:
        """``pinned_roots()`` returns the binary CIDs to provide (called from the event loop);
        ``bus`` tells of new connections and of writes to the database (new pins)."""
        self.host = host
        self.pinned_roots = pinned_roots
        self.bus = bus
        self.dht: Any = None
        self._known_peers: set[Any] = set()
        self._provided: dict[bytes, float] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ContentRouting]:
        from libp2p.kad_dht import kad_dht, routing_table
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
        kad_dht.ROUTING_TABLE_REFRESH_INTERVAL = TABLE_REFRESH_INTERVAL   # read at each sleep
        routing_table.STALE_PEER_THRESHOLD = TABLE_REFRESH_INTERVAL
        from libp2p.tools.anyio_service import background_trio_service
        self.dht = KadDHT(self.host, DHTMode.SERVER)
        async with background_trio_service(self.dht), trio.open_nursery() as nursery:
            nursery.start_soon(self._peers_loop)
            nursery.start_soon(self._provide_loop)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()

    async def _peers_loop(self) -> None:
        """Every connected peer joins the routing table (py-libp2p's DHT does not bootstrap
        itself): those connected now, then each one as it connects."""
        with self.bus.subscribe(PeerConnected, Overflow) as sub:
            while True:
                current = set(self.host.get_network().connections)
                for peer in current - self._known_peers:
                    try:
                        await self.dht.add_peer(peer)
                    except Exception as exc:  # a peer without the DHT protocol is fine
                        log.debug("dht: cannot add %s: %s", peer, exc)
                self._known_peers = current
                await sub.receive()

    async def _provide_loop(self) -> None:
        """Provide every pinned root once, then again every REPROVIDE_INTERVAL, all due roots
        in one round; a new pin (a write to the database) or a new peer starts a round."""
        with self.bus.subscribe(DatabaseChanged, PeerConnected, Overflow) as sub:
            while True:
                await trio.sleep(0)   # let the peers loop add a new peer first
                now = trio.current_time()
                next_round = now + REPROVIDE_INTERVAL
                for cid in self.pinned_roots():
                    last = self._provided.get(cid)
                    if last is not None and now - last < REPROVIDE_INTERVAL:
                        next_round = min(next_round, last + REPROVIDE_INTERVAL)
                        continue
                    if not self._known_peers:
                        break
                    try:
                        if await self.dht.provide(cid_to_str(cid)):
                            self._provided[cid] = now
                    except Exception as exc:
                        log.warning("dht: provide %s failed: %s", cid_to_str(cid), exc)
                await sub.wait(max(0.0, next_round - trio.current_time()))

    def provided(self, cid: bytes) -> bool:
        return cid in self._provided

    async def find_providers(self, cid: bytes, count: int = 20) -> list[Any]:
        """Peer infos of providers of ``cid`` (possibly empty)."""
        with trio.move_on_after(FIND_TIMEOUT):
            return list(await self.dht.find_providers(cid_to_str(cid), count))
        return []
