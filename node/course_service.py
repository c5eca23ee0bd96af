"""Adopted courses in the running node (specs/courses.md §7): queue the resources of the
lessons due within each adoption's horizon through the transfer queue, at subscription
priority (so the bandwidth schedule and the monthly budget apply as to any fetch).

It reacts to events — a database write (a course entry replicated, an adoption made by the
CLI, a pin, a transfer ending) — and to the one thing no write announces: the date changing,
which brings new lessons within the horizon.  No polling in between.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import trio

from protocol.errors import ProtocolError

from . import courses, events
from .errors import DiskFull, NodeError
from .home import Home

log = logging.getLogger("schoolmesh.node")


def seconds_to_midnight(now: dt.datetime) -> float:
    """Seconds until the next local date begins (a second past midnight)."""
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0, 0, 1))
    return max(1.0, (tomorrow - now).total_seconds())


class CourseService:
    def __init__(self, home: Home, bus: events.EventBus, queue: Any,
                 wake_queue: Callable[[], None],
                 clock: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.home = home
        self.queue = queue
        self.wake_queue = wake_queue
        self.clock = clock
        self._sub = bus.subscribe(events.DatabaseChanged, events.TransfersChanged,
                                  events.Overflow)
        self.queued = 0          # fetches queued since start (status, tests)
        self._last: tuple[Any, ...] | None = None

    def wake(self) -> None:
        self._sub.kick()

    def run_once(self) -> int:
        """Queue what is due, if anything it depends on changed since the last look (the
        database changes every second while transfers run: their progress)."""
        key = (self.clock().date(), courses.due_key(self.home.conn))
        if key == self._last:
            return 0
        n = courses.queue_due(self.home, self.queue, key[0])
        self._last = key
        if n:
            self.queued += n
            log.info("courses: %d resource(s) of coming lessons queued", n)
            self.wake_queue()
        return n

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                self.run_once()
            except DiskFull as exc:
                log.warning("courses: %s", exc)
            except (NodeError, ProtocolError, sqlite3.Error) as exc:
                log.warning("courses: %s", exc)
            await self._sub.wait(seconds_to_midnight(self.clock()))
