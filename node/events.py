"""The node's in-process event bus (in the spirit of Syncthing's ``lib/events``): services
react to what happened instead of polling for it.

Events are small frozen values.  ``EventBus.publish`` never blocks: each subscription keeps
a bounded queue, and when a slow subscriber lets it fill, the oldest events are dropped and
the subscription is told (``Overflow``) so it re-reads the state it cares about — every
consumer here treats an event as "look again", never as the only copy of a fact.

Writes made by other processes (``schoolmesh publish``, ``follow``, ``limits set``, … run
while the node runs) and by other connections of this process are noticed by
:class:`DatabaseWatcher` through SQLite's ``PRAGMA data_version`` on a connection of its own,
and published as :class:`DatabaseChanged`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

log = logging.getLogger("schoolmesh.events")

QUEUE_LIMIT = 256            # events a subscription holds before the oldest are dropped
WATCH_INTERVAL = 1.0         # seconds between two looks at the database's data_version


@dataclass(frozen=True, slots=True)
class PeerConnected:
    peer: str


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    peer: str


@dataclass(frozen=True, slots=True)
class DatabaseChanged:
    """Some connection other than the watcher's committed a write (entries, pins, follows,
    transfers, settings, …): look again at what you derive from the database."""


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    """The community policy (feeds replicated, topics, seeding) was recomputed and differs."""


@dataclass(frozen=True, slots=True)
class TransfersChanged:
    """A fetch was asked for or controlled, or a transfer attempt ended."""


@dataclass(frozen=True, slots=True)
class Recheck:
    """Put into one subscription by its owner's ``kick()``: look again now."""


@dataclass(frozen=True, slots=True)
class Overflow:
    """Events were dropped for this subscription: re-read everything it cares about."""


Event = (PeerConnected | PeerDisconnected | DatabaseChanged | PolicyChanged | TransfersChanged
         | Recheck | Overflow)


class Subscription:
    def __init__(self, bus: EventBus, types: tuple[type, ...]) -> None:
        self._bus = bus
        self.types = types
        self._queue: deque[Any] = deque()
        self._ready = trio.Event()
        self.dropped = 0

    def _put(self, event: Any) -> None:
        q = self._queue
        if len(q) >= QUEUE_LIMIT:   # full: the oldest events make room, an Overflow leads
            if not isinstance(q[0], Overflow):
                q[0] = Overflow()
                self.dropped += 1
            del q[1]
            self.dropped += 1
        q.append(event)
        self._ready.set()

    def kick(self) -> None:
        """Wake this subscription's reader (it receives Recheck)."""
        self._put(Recheck())

    def receive_nowait(self) -> Any | None:
        if not self._queue:
            return None
        event = self._queue.popleft()
        if not self._queue:
            self._ready = trio.Event()
        return event

    async def receive(self) -> Any:
        """The next event (waits for one)."""
        while not self._queue:
            await self._ready.wait()
        return self.receive_nowait()

    async def wait(self, timeout: float = float("inf")) -> list[Any]:
        """Every event that arrived, waiting up to ``timeout`` seconds for the first one
        (an empty list: the time ran out)."""
        with trio.move_on_after(timeout):
            while not self._queue:
                await self._ready.wait()
        out = list(self._queue)
        self._queue.clear()
        self._ready = trio.Event()
        return out

    def close(self) -> None:
        self._bus._subs.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.published = 0

    def subscribe(self, *types: type) -> Subscription:
        """Events of these types (all when none are given) from now on."""
        sub = Subscription(self, types)
        self._subs.add(sub)
        return sub

    def publish(self, event: Any) -> None:
        """Deliver ``event`` to every subscription that wants its type; never blocks."""
        self.published += 1
        for sub in list(self._subs):
            if not sub.types or isinstance(event, sub.types):
                sub._put(event)

    def callback(self, make: Callable[[str], Any]) -> Callable[[str], None]:
        """A plain function ``f(peer)`` that publishes ``make(peer)`` (for py-libp2p's
        connection notifications)."""
        return lambda peer: self.publish(make(peer))


class DatabaseWatcher:
    """Publishes DatabaseChanged whenever another connection (this process's or a CLI
    command's) committed a write to the node's database."""

    def __init__(self, db_path: Path, bus: EventBus, *, interval: float = WATCH_INTERVAL,
                 connect: Callable[[Path], sqlite3.Connection] | None = None) -> None:
        self.db_path = db_path
        self.bus = bus
        self.interval = interval
        self._connect = connect or (lambda p: sqlite3.connect(p, check_same_thread=False))
        self.changes = 0

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        conn = self._connect(self.db_path)
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            task_status.started()
            while True:
                await trio.sleep(self.interval)
                try:
                    now = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error as exc:   # busy or locked for a moment: look again later
                    log.debug("data_version: %s", exc)
                    continue
                if now != version:
                    version = now
                    self.changes += 1
                    self.bus.publish(DatabaseChanged())
        finally:
            conn.close()
