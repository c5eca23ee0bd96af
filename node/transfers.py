"""The persistent transfer queue (specs/limits.md §6): one SQLite row per fetch.

Rows survive restarts: a row left ``running`` by a killed daemon is requeued when the next one
starts, and the fetch resumes without fetching verified blocks again (they are stored as they
arrive).  The scheduler that runs the rows lives in ``node/daemon.py``; this module is the
table, its state transitions and the retry policy, with an injectable clock for tests.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from . import db
from .errors import NodeError
from .home import now_ms

PRIORITIES = {"teacher": 30, "subscription": 20, "seeding": 10}
STATES = ("queued", "running", "paused", "done", "failed", "cancelled", "waiting")
ACTIVE = ("queued", "running", "paused", "waiting")   # not finished
FINAL = ("done", "failed", "cancelled")
ACTIONS = ("pause", "resume", "cancel")

BACKOFF_FIRST = 2.0     # seconds before the first retry...
BACKOFF_MAX = 300.0     # ...doubling up to 5 minutes

_COLUMNS = ("id", "target", "root", "priority", "state", "bytes_done", "bytes_total",
            "providers", "attempts", "last_error", "next_try", "created", "updated",
            "pin_reason", "pin_ref")


def backoff(attempts: int) -> float:
    """Seconds to wait before retry number ``attempts`` (1, 2, …): 2, 4, 8, … ≤ 300."""
    if attempts <= 0:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(attempts - 1, 30))


def priority_of(kind: str | int) -> int:
    if isinstance(kind, int) and not isinstance(kind, bool):
        return kind
    try:
        return PRIORITIES[str(kind)]
    except KeyError:
        raise NodeError(f"unknown transfer priority {kind!r} (one of: "
                        f"{', '.join(PRIORITIES)})") from None


class TransferQueue:
    """The ``transfers`` table of ``conn``; ``clock()`` gives milliseconds (default: now)."""

    def __init__(self, conn: sqlite3.Connection, *,
                 clock: Callable[[], int] | None = None) -> None:
        self.conn = conn
        self.clock = clock or now_ms

    # -- reading ----------------------------------------------------------------------------

    def _row(self, r: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(_COLUMNS, r, strict=True))
        d["providers"] = json.loads(d["providers"] or "[]")
        return d

    def get(self, tid: int) -> dict[str, Any]:
        r = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM transfers WHERE id = ?",
                              (tid,)).fetchone()
        if r is None:
            raise NodeError(f"no transfer {tid}")
        return self._row(r)

    def list(self) -> list[dict[str, Any]]:
        return [self._row(r) for r in self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM transfers ORDER BY id")]

    def active_for(self, root: bytes) -> dict[str, Any] | None:
        r = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM transfers WHERE root = ? AND state IN "
            f"({', '.join('?' * len(ACTIVE))}) ORDER BY id LIMIT 1", (root, *ACTIVE)).fetchone()
        return None if r is None else self._row(r)

    def runnable(self, limit: int, exclude: Iterable[int] = ()) -> list[dict[str, Any]]:
        """Queued rows due now, highest priority first (then oldest)."""
        if limit <= 0:
            return []
        skip = set(exclude)
        out = []
        for r in self.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM transfers WHERE state = 'queued' AND "
                "next_try <= ? ORDER BY priority DESC, id ASC", (self.clock(),)):
            if r[0] not in skip:
                out.append(self._row(r))
                if len(out) >= limit:
                    break
        return out

    # -- writing ----------------------------------------------------------------------------

    def add(self, target: str, root: bytes, *, priority: str | int = "teacher",
            bytes_total: int | None = None, pin_reason: str = "user",
            pin_ref: str | None = None) -> int:
        """Queue a fetch; when it completes, ``root`` is pinned for ``pin_reason`` with
        ``pin_ref`` (default: the target)."""
        now = self.clock()
        with db.write(self.conn) as c:
            cur = c.execute(
                "INSERT INTO transfers(target, root, priority, state, bytes_done, bytes_total, "
                "providers, attempts, last_error, next_try, created, updated, pin_reason, "
                "pin_ref) VALUES (?, ?, ?, 'queued', 0, ?, '[]', 0, NULL, 0, ?, ?, ?, ?)",
                (target, root, priority_of(priority), bytes_total, now, now, pin_reason,
                 pin_ref or target))
            return int(cur.lastrowid)

    def update(self, tid: int, **fields: Any) -> None:
        if "providers" in fields and not isinstance(fields["providers"], str):
            fields["providers"] = json.dumps(list(fields["providers"]))
        bad = set(fields) - set(_COLUMNS[1:])
        if bad:
            raise ValueError(f"unknown transfer columns {sorted(bad)}")
        fields["updated"] = self.clock()
        sets = ", ".join(f"{k} = ?" for k in fields)
        with db.write(self.conn) as c:
            c.execute(f"UPDATE transfers SET {sets} WHERE id = ?", (*fields.values(), tid))

    def start(self, tid: int) -> None:
        self.update(tid, state="running")

    def finish(self, tid: int, *, bytes_done: int | None = None) -> None:
        fields: dict[str, Any] = {"state": "done", "last_error": None}
        if bytes_done is not None:
            fields["bytes_done"] = bytes_done
        self.update(tid, **fields)

    def fail(self, tid: int, error: str) -> None:
        self.update(tid, state="failed", last_error=error)

    def wait(self, tid: int, why: str) -> None:
        """No provider now (or the budget is spent): re-checked on new connections."""
        self.update(tid, state="waiting", last_error=why)

    def retry(self, tid: int, error: str) -> float:
        """A failed attempt: back to ``queued`` after the backoff; returns the delay (s)."""
        (attempts,) = self.conn.execute("SELECT attempts FROM transfers WHERE id = ?",
                                        (tid,)).fetchone()
        delay = backoff(attempts + 1)
        self.update(tid, state="queued", attempts=attempts + 1, last_error=error,
                    next_try=self.clock() + int(delay * 1000))
        return delay

    def control(self, tid: int, action: str) -> dict[str, Any]:
        """pause (queued/running/waiting → paused), resume (paused/waiting/failed → queued),
        cancel (any unfinished → cancelled). Returns the row."""
        t = self.get(tid)
        state = t["state"]
        if action == "pause":
            if state not in ("queued", "running", "waiting", "paused"):
                raise NodeError(f"transfer {tid} is {state}: it cannot be paused")
            self.update(tid, state="paused")
        elif action == "resume":
            if state not in ("paused", "waiting", "failed", "queued"):
                raise NodeError(f"transfer {tid} is {state}: it cannot be resumed")
            self.update(tid, state="queued", next_try=0)
        elif action == "cancel":
            if state in FINAL and state != "failed":
                raise NodeError(f"transfer {tid} is {state}: it cannot be cancelled")
            self.update(tid, state="cancelled")
        else:
            raise NodeError(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})")
        return self.get(tid)

    def requeue_running(self) -> int:
        """At daemon start: rows a killed daemon left running are queued again."""
        with db.write(self.conn) as c:
            return c.execute("UPDATE transfers SET state = 'queued', next_try = 0, updated = ? "
                             "WHERE state = 'running'", (self.clock(),)).rowcount

    def wake_waiting(self, *, retries: bool = False) -> int:
        """Waiting rows are tried again now (a peer connected, or the re-check interval);
        with ``retries`` also queued rows still in their backoff (a peer connected: it may be
        the provider whose link died, or another one)."""
        with db.write(self.conn) as c:
            return c.execute("UPDATE transfers SET state = 'queued', next_try = 0, updated = ? "
                             "WHERE state = 'waiting' OR (? AND state = 'queued' AND "
                             "next_try > 0)", (self.clock(), retries)).rowcount
