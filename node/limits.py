"""Bandwidth limits in the running node (specs/limits.md): the settings in SQLite, a trio
limiter with one token bucket per direction that follows the time-of-day schedule, and the
monthly budget (byte counters per calendar month and per day, flushed to SQLite every few
seconds, with the day's bytes per libp2p protocol when the node gives its meter).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as dtime

import trio

from protocol import limits as pl

from . import db, events
from .errors import DiskFull

SETTING = "limits"          # settings-table key holding the JSON of protocol.limits.Limits
FLUSH_INTERVAL = 2.0        # seconds from the first byte counted to the flush of the counters
PROTOCOLS_INTERVAL = 60.0   # at most this long between writes of the bytes per protocol
DIRECTIONS = ("up", "down")


def load(conn: sqlite3.Connection) -> pl.Limits:
    raw = db.get_setting(conn, SETTING)
    return pl.Limits() if raw is None else pl.Limits.from_json(raw)


def save(conn: sqlite3.Connection, limits: pl.Limits) -> None:
    with db.write(conn) as c:
        db.set_setting(c, SETTING, limits.to_json())


def clear(conn: sqlite3.Connection) -> None:
    with db.write(conn) as c:
        c.execute("DELETE FROM settings WHERE key = ?", (SETTING,))


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


def used(conn: sqlite3.Connection, month: str) -> tuple[int, int]:
    """Bytes (up, down) counted in ``month`` (YYYY-MM)."""
    row = conn.execute("SELECT up, down FROM traffic WHERE month = ?", (month,)).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def day_of(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def days(conn: sqlite3.Connection, month: str) -> list[tuple[str, int, int]]:
    """``(day, up, down)`` of every day of ``month`` (YYYY-MM) with counted bytes, in order
    (days before the daily counts existed are missing; ``used`` has the month's total)."""
    return [tuple(r) for r in conn.execute(
        "SELECT day, up, down FROM traffic_days WHERE day >= ? AND day < ? ORDER BY day",
        (month + "-01", month + "-32"))]


def protocol_days(conn: sqlite3.Connection, month: str) -> list[tuple[str, str, int, int]]:
    """``(day, protocol, sent, received)`` of ``month`` (YYYY-MM), by day then protocol: every
    stream's bytes, LAN peers included (not only what the budget counts)."""
    return [tuple(r) for r in conn.execute(
        "SELECT day, protocol, sent, received FROM traffic_protocols WHERE day >= ? AND "
        "day < ? ORDER BY day, protocol", (month + "-01", month + "-32"))]


def _local_now() -> dtime:
    return datetime.now().time()


class Limiter:
    """Admits bytes per direction at the rates in force; counts them for the monthly budget.

    ``clock`` (default ``trio.current_time``) drives the buckets, ``local_time`` (default the
    wall clock) selects the schedule window; tests pass both. Bytes of exempt (LAN) peers are
    neither limited nor counted.
    """

    def __init__(self, limits: pl.Limits | None = None, *,
                 clock: Callable[[], float] | None = None,
                 local_time: Callable[[], dtime] = _local_now) -> None:
        self.limits = limits or pl.Limits()
        self._clock = clock or trio.current_time
        self._local_time = local_time
        rates = pl.effective_rate(self.limits, local_time())
        self.buckets = {"up": pl.TokenBucket(rates.up), "down": pl.TokenBucket(rates.down)}
        self._locks = {d: trio.Lock() for d in DIRECTIONS}
        self.pending = dict.fromkeys(DIRECTIONS, 0)     # counted, not yet flushed
        self.month_used = 0                             # flushed bytes of the current month
        self.consulted = dict.fromkeys(DIRECTIONS, 0)   # every byte seen (for tests/stats)
        # bytes per protocol since the last call (the host's meter, node/p2p/meter.py), and
        # what was taken from it but not written yet
        self.protocols: Callable[[], dict[str, tuple[int, int]]] | None = None
        self.pending_protocols: dict[str, tuple[int, int]] = {}
        self._protocols_written, self._protocols_day = time.monotonic(), ""
        self._counted = trio.Event()   # set by the first byte after a flush (serve waits on it)

    def set_limits(self, limits: pl.Limits) -> None:
        self.limits = limits

    def exempt(self, lan: bool) -> bool:
        return lan and self.limits.lan_unlimited

    def rate(self, direction: str, *, lan: bool = False) -> int | None:
        """Bytes per second ``direction`` is admitted at now (None: unlimited or exempt)."""
        return None if self.exempt(lan) else self.buckets[direction].rate

    def rates(self) -> pl.Rates:
        return pl.effective_rate(self.limits, self._local_time())

    async def acquire(self, direction: str, n: int, *, lan: bool = False) -> None:
        """Wait until ``n`` bytes may pass in ``direction`` ('up' or 'down')."""
        self.consulted[direction] += n
        if n <= 0:
            return
        self._counted.set()   # something to flush (LAN bytes too: the bytes per protocol)
        if self.exempt(lan):
            return
        self.pending[direction] += n
        async with self._locks[direction]:  # fair: waiters are admitted in arrival order
            bucket = self.buckets[direction]
            self._follow_schedule(direction)
            wait = bucket.take(n, self._clock())
            while wait > 0:
                # wake at a schedule boundary too: the rest of the wait is at the new rate
                await trio.sleep(min(wait, pl.seconds_to_next_boundary(
                    self.limits, self._local_time())))
                self._follow_schedule(direction)
                wait = bucket.take(0, self._clock())

    def _follow_schedule(self, direction: str) -> None:
        bucket = self.buckets[direction]
        rate = getattr(pl.effective_rate(self.limits, self._local_time()), direction)
        if rate != bucket.rate:
            bucket.set_rate(rate, self._clock())

    def slowest(self, direction: str) -> int | None:
        """The lowest rate ``direction`` may have at any time of day (None: unlimited)."""
        rates = [getattr(self.limits, direction)] + [w.rate for w in self.limits.schedule]
        limited = [r.bytes_per_second for r in rates if r is not None]
        return min(limited) if limited else None

    def timeout_for(self, nbytes: int, base: float) -> float:
        """``base`` seconds, or longer if ``nbytes`` cannot cross the slowest link in half of
        it (a Bitswap message of 4 MiB takes 128 s at 32 KiB/s)."""
        slowest = [r for r in (self.slowest("up"), self.slowest("down")) if r is not None]
        return base if not slowest else max(base, 2 * nbytes / min(slowest))

    # -- monthly budget ---------------------------------------------------------------------

    def budget_ok(self) -> bool:
        budget = self.limits.monthly_budget
        return budget is None or self.month_used + sum(self.pending.values()) < budget

    def budget_message(self) -> str:
        return (f"this month's transfer budget ({pl.format_size(self.limits.monthly_budget or 0)})"
                " is spent: content transfers wait for next month (catalog sync continues; "
                "raise it with 'schoolmesh limits set --monthly-budget SIZE')")

    def flush(self, conn: sqlite3.Connection, month: str, day: str | None = None, *,
              force: bool = False) -> None:
        """Add the pending counters to ``month``'s row (and ``day``'s, YYYY-MM-DD, default
        today); reload the settings.  The bytes per protocol are written with the budget's,
        or at least every PROTOCOLS_INTERVAL seconds (LAN traffic alone does not write the
        database every few seconds), or when ``force``."""
        day = day or day_of(datetime.now())
        if self.protocols is not None:
            for p, (sent, received) in self.protocols().items():
                s0, r0 = self.pending_protocols.get(p, (0, 0))
                self.pending_protocols[p] = (s0 + sent, r0 + received)
        up, down = self.pending["up"], self.pending["down"]
        if not (up or down or force or day != self._protocols_day
                or time.monotonic() - self._protocols_written >= PROTOCOLS_INTERVAL):
            per_protocol = {}
        else:
            per_protocol, self.pending_protocols = self.pending_protocols, {}
            self._protocols_written, self._protocols_day = time.monotonic(), day
        if not up and not down and not per_protocol:
            # nothing to count: no write (every write wakes the node)
            self.month_used = sum(used(conn, month))
            self.limits = load(conn)
            return
        self.pending["up"] = self.pending["down"] = 0
        try:
            with db.write(conn) as c:
                if up or down:
                    c.execute("INSERT INTO traffic(month, up, down) VALUES (?, ?, ?) "
                              "ON CONFLICT(month) DO UPDATE SET up = up + excluded.up, "
                              "down = down + excluded.down", (month, up, down))
                    c.execute("INSERT INTO traffic_days(day, up, down) VALUES (?, ?, ?) "
                              "ON CONFLICT(day) DO UPDATE SET up = up + excluded.up, "
                              "down = down + excluded.down", (day, up, down))
                c.executemany(
                    "INSERT INTO traffic_protocols(day, protocol, sent, received) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(day, protocol) DO UPDATE SET "
                    "sent = sent + excluded.sent, received = received + excluded.received",
                    [(day, p, s_, r_) for p, (s_, r_) in per_protocol.items()])
        except BaseException:
            self.pending["up"] += up
            self.pending["down"] += down
            for p, (s_, r_) in per_protocol.items():
                s0, r0 = self.pending_protocols.get(p, (0, 0))
                self.pending_protocols[p] = (s0 + s_, r0 + r_)
            raise
        self.month_used = sum(used(conn, month))
        self.limits = load(conn)

    def reload(self, conn: sqlite3.Connection) -> None:
        """The settings and this month's flushed bytes, read again (another process may have
        changed them: ``schoolmesh limits set``)."""
        self.limits = load(conn)
        self.month_used = sum(used(conn, month_of(datetime.now())))

    async def serve(self, conn: sqlite3.Connection, *, bus: events.EventBus | None = None,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush the counters FLUSH_INTERVAL after bytes were counted (and on cancellation);
        an idle node does not wake for it. With ``bus``, settings written by other processes
        are read again when the database changes; midnight (a new day, maybe a new month and
        budget) and bytes per protocol still unwritten are the only timers."""
        self.month_used = sum(used(conn, month_of(datetime.now())))
        async with trio.open_nursery() as nursery:
            if bus is not None:
                sub = bus.subscribe(events.DatabaseChanged, events.Overflow)
                nursery.start_soon(self._follow_settings, conn, sub)
            task_status.started()
            try:
                while True:
                    with trio.move_on_after(self._idle_timeout()):
                        await self._counted.wait()
                    self._counted = trio.Event()
                    await trio.sleep(FLUSH_INTERVAL)   # what arrives meanwhile, in one write
                    try:
                        now = datetime.now()
                        self.flush(conn, month_of(now), day_of(now))
                    except DiskFull:
                        self._counted.set()   # the counters stay pending: try again
            finally:
                with contextlib.suppress(DiskFull):
                    now = datetime.now()
                    self.flush(conn, month_of(now), day_of(now), force=True)
                nursery.cancel_scope.cancel()

    def _idle_timeout(self) -> float:
        """Seconds an idle limiter sleeps: until local midnight, or until the bytes per
        protocol not yet written are due (PROTOCOLS_INTERVAL)."""
        now = datetime.now()
        midnight = datetime.combine(now.date() + timedelta(days=1), dtime())
        wait = (midnight - now).total_seconds() + 1
        if self.pending_protocols:
            wait = min(wait, max(0.0, PROTOCOLS_INTERVAL
                                 - (time.monotonic() - self._protocols_written)))
        return wait

    async def _follow_settings(self, conn: sqlite3.Connection, sub: events.Subscription
                               ) -> None:
        with sub:
            while True:
                await sub.wait()
                self.reload(conn)
