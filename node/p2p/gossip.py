"""Gossipsub carrying signed feed heads, with settings fit for schools (docs/py-libp2p.md).

py-libp2p's defaults are harmful here: a 120 s heartbeat (we use 1 s), spam protection that
silently drops more than 10 messages/s per peer and topic (a school publishing a burst of
resources would lose heads — we allow 200/s; heads are tiny and validated), and a subscription
queue of 32 that drops when full (``Gossip.messages`` is drained by a dedicated task).
Heads are idempotent, so a lost message only delays sync until the periodic pull.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from protocol import feedsync
from protocol.errors import RemoteProtocolError

from ..peerlog import PeerLog

log = logging.getLogger("schoolmesh.gossip")

HEADS_TOPIC = "/schoolmesh/heads/1"
HEARTBEAT_S = 1
MESH_DEGREE = 6           # peers grafted when a topic's mesh is short (gossipsub's D)...
MESH_DEGREE_LOW = 4
MESH_DEGREE_HIGH = 64     # ...but nobody is pruned below this: a demonstration school keeps
                          # every member of its community in its mesh, so a new head reaches all
                          # 30 villages at once (with D_high 12 it kept 6 and the rest waited for
                          # IHAVE gossip or the sync round: 555 s for the last of 30 villages)
MAX_MESSAGES_PER_TOPIC_PER_S = 200.0


class Gossip:
    """One gossipsub router; every topic carries signed heads and has its own acceptance rule
    (the global heads topic: feeds we replicate; a community topic: its active members)."""

    def __init__(self, host: Any, accept: Callable[[feedsync.SignedHead], str | None]) -> None:
        """``accept(head)`` decides for HEADS_TOPIC: None to accept a validated head, or why
        it is rejected."""
        self.host = host
        self.accept = accept
        self.pubsub: Any = None
        self.rejected = 0
        self.peer_log = PeerLog(log)
        self._rules: dict[str, Callable[[feedsync.SignedHead], str | None]] = {}
        self.topics: dict[str, Any] = {}   # subscribed topic -> subscription

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gossip]:
        from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
        from libp2p.pubsub.pubsub import Pubsub
        from libp2p.tools.anyio_service import background_trio_service

        router = GossipSub(protocols=[PROTOCOL_ID_V11], degree=MESH_DEGREE,
                           degree_low=MESH_DEGREE_LOW, degree_high=MESH_DEGREE_HIGH,
                           heartbeat_interval=HEARTBEAT_S, heartbeat_initial_delay=0.1,
                           max_messages_per_topic_per_second=MAX_MESSAGES_PER_TOPIC_PER_S)
        self.pubsub = Pubsub(self.host, router)
        async with background_trio_service(self.pubsub), background_trio_service(router):
            await self.pubsub.wait_until_ready()
            yield self

    def _validator(self, topic: str) -> Callable[[Any, Any], bool]:
        def validate(peer_id: Any, msg: Any) -> bool:
            try:
                head = feedsync.decode_head(msg.data)
            except RemoteProtocolError as exc:
                self.rejected += 1
                self.peer_log.warning(peer_id, "gossip: rejected head",
                                      "gossip: rejected head from %s on %s: %s", peer_id, topic,
                                      exc)
                return False
            why = self._rules[topic](head)
            if why is not None:
                self.rejected += 1
                self.peer_log.info(peer_id, f"gossip: ignored head ({why})",
                                   "gossip: ignored head of %s from %s on %s: %s",
                                   head.feed.hex()[:16], peer_id, topic, why)
                return False
            return True
        return validate

    async def subscribe(self, topic: str = HEADS_TOPIC,
                        accept: Callable[[feedsync.SignedHead], str | None] | None = None) -> Any:
        """Subscribe to heads on ``topic`` (validated by ``accept``, default: the heads topic's
        rule); read the result with ``next_head`` promptly (32-slot queue)."""
        self._rules[topic] = accept or self.accept
        self.pubsub.set_topic_validator(topic, self._validator(topic), False)
        sub = await self.pubsub.subscribe(topic)
        self.topics[topic] = sub
        return sub

    @staticmethod
    async def next_head(sub: Any) -> tuple[feedsync.SignedHead | None, Any]:
        msg = await sub.get()
        try:
            return feedsync.decode_head(msg.data), msg.from_id
        except RemoteProtocolError:
            return None, msg.from_id  # our own messages skip validation

    async def publish(self, head: feedsync.SignedHead, topic: str = HEADS_TOPIC) -> None:
        await self.pubsub.publish(topic, head.raw)
