"""The dialler: keeps the peers a school relies on connected (specs/links.md §1).

Bootstrap peers (``start --bootstrap``) and community seeds (from invites) are *kept*: one task
per address dials it, redials it with backoff (REDIAL_FIRST doubling to REDIAL_INTERVAL: py-libp2p
fails a dial to a recently failed peer at once, so retrying without a pause would spin a core),
and once connected waits for the connection to end (an event, not a poll).  A seed reached
directly is asked for a relay reservation.  With mDNS, schoolmesh nodes found on the school LAN
are dialled once each (again after they drop).

The dialler owns its tasks in its own nursery; ``keep(addr)`` only hands it an address.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import events
from .p2p import host as p2p

log = logging.getLogger("schoolmesh.node")

REDIAL_INTERVAL = 15.0      # a kept peer that stays away is redialled this often at most...
REDIAL_FIRST = 1.0          # ...after a first retry this soon, doubling
LAN_RECHECK = 2.0           # how often the peerstore is looked at for new mDNS peers


class Dialler:
    def __init__(self, host: Any, bus: events.EventBus, me: str, *,
                 reserve: Callable[[str], Awaitable[None]] | None = None) -> None:
        """``reserve(peer)`` asks a seed reached directly for a relay reservation."""
        self.host = host
        self.bus = bus
        self.me = me
        self.reserve = reserve
        self.kept: set[str] = set()           # addresses a keep_dialling task owns
        self._send, self._receive = trio.open_memory_channel[str](float("inf"))

    def keep(self, addr: str) -> None:
        """Keep ``addr`` (…/p2p/<id>) connected from now on (idempotent)."""
        if addr in self.kept or addr.endswith(f"/p2p/{self.me}"):
            return
        self.kept.add(addr)
        self._send.send_nowait(addr)

    def keeps(self, peer: str) -> bool:
        """Whether ``peer`` is one this node keeps connected."""
        return any(a.endswith(f"/p2p/{peer}") for a in self.kept)

    async def serve(self, *, mdns: bool = False,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if mdns:
                nursery.start_soon(self._dial_lan_peers)
            task_status.started()
            async for addr in self._receive:
                nursery.start_soon(self.keep_dialling, addr)

    def _connected_to(self, addr: str) -> bool:
        pid = addr.rsplit("/p2p/", 1)[-1]
        return any(p.to_string() == pid for p in self.host.get_network().connections)

    async def keep_dialling(self, addr: str) -> None:
        delay = REDIAL_FIRST
        with self.bus.subscribe(events.PeerDisconnected, events.Overflow) as gone:
            while True:
                try:
                    pid = await p2p.connect(self.host, addr)
                    log.info("connected to bootstrap peer %s", pid)
                    delay = REDIAL_FIRST
                    if self.reserve is not None and "/p2p-circuit" not in addr:
                        await self.reserve(pid)   # a seed reached directly can relay for us
                except Exception as exc:
                    # one warning per outage; the retries of a peer that stays away are quieter
                    level = logging.WARNING if delay == REDIAL_FIRST else logging.DEBUG
                    log.log(level, "bootstrap %s: %s (retrying every %.0f s at most)", addr,
                            exc, REDIAL_INTERVAL)
                    await trio.sleep(delay)
                    delay = min(delay * 2, REDIAL_INTERVAL)
                    continue
                while self._connected_to(addr):
                    await gone.receive()

    async def _dial_lan_peers(self) -> None:
        """Connect to schoolmesh nodes that mDNS put in the peerstore (school LAN)."""
        tried: set[Any] = set()
        while True:
            store = self.host.get_peerstore()
            me = self.host.get_id()
            connected = set(self.host.get_network().connections)
            for pid in store.peers_with_addrs():
                if pid == me or pid in connected or pid in tried:
                    continue
                tried.add(pid)
                try:
                    await p2p.dial_known(self.host, pid)
                    log.info("connected to LAN peer %s", pid)
                except Exception as exc:
                    log.info("LAN peer %s not reachable: %s", pid, exc)
            tried -= connected  # a peer that was connected is retried if it drops later
            await trio.sleep(LAN_RECHECK)
