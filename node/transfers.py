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

# The state machine of a transfer: event -> {state it may happen in: state it leads to}.
# Every change of state goes through :meth:`TransferQueue.move`, which refuses any other.
TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {"queued": "running"},                      # the scheduler runs it
    "finish": {"running": "done"},                       # every block is here and pinned
    "fail": {"running": "failed"},                       # a fault retrying cannot mend
    "retry": {"running": "queued"},                      # an attempt failed: after the backoff
    "wait": {"running": "waiting"},                      # no provider now, or budget spent
    "wake": {"waiting": "queued"},                       # a peer connected, or the re-check
    "requeue": {"running": "queued"},                    # a killed daemon left it running
    "demand": {"paused": "queued", "waiting": "queued", "queued": "queued",
               "running": "running"},                    # fetched again: reuse, resume
    "pause": {"queued": "paused", "running": "paused", "waiting": "paused",
              "paused": "paused"},
    "resume": {"paused": "queued", "waiting": "queued", "failed": "queued",
               "queued": "queued"},
    "cancel": {"queued": "cancelled", "running": "cancelled", "waiting": "cancelled",
               "paused": "cancelled", "failed": "cancelled"},
}


class IllegalMove(NodeError):
    """An event that cannot happen in the transfer's current state."""

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
        """Change columns other than ``state`` (states change only by :meth:`move`)."""
        if "state" in fields:
            raise ValueError("a transfer's state changes only through move()")
        with db.write(self.conn) as c:
            self._set(c, tid, fields)

    def _set(self, c: sqlite3.Connection, tid: int, fields: dict[str, Any]) -> None:
        if "providers" in fields and not isinstance(fields["providers"], str):
            fields["providers"] = json.dumps(list(fields["providers"]))
        bad = set(fields) - set(_COLUMNS[1:])
        if bad:
            raise ValueError(f"unknown transfer columns {sorted(bad)}")
        fields["updated"] = self.clock()
        sets = ", ".join(f"{k} = ?" for k in fields)
        c.execute(f"UPDATE transfers SET {sets} WHERE id = ?", (*fields.values(), tid))

    def move(self, tid: int, event: str, **fields: Any) -> None:
        """Apply ``event`` (a key of TRANSITIONS) to a transfer, with other column changes, in
        one statement that also checks the state it starts from (another task, or the
        operator, may have moved it meanwhile): IllegalMove if the event cannot happen."""
        table = TRANSITIONS[event]
        with db.write(self.conn) as c:
            row = c.execute("SELECT state FROM transfers WHERE id = ?", (tid,)).fetchone()
            if row is None:
                raise NodeError(f"no transfer {tid}")
            if row[0] not in table:
                raise IllegalMove(f"transfer {tid} is {row[0]}: it cannot {event}")
            self._set(c, tid, {"state": table[row[0]], **fields})

    def start(self, tid: int) -> None:
        self.move(tid, "start")

    def finish(self, tid: int, *, bytes_done: int | None = None) -> None:
        fields: dict[str, Any] = {"last_error": None}
        if bytes_done is not None:
            fields["bytes_done"] = bytes_done
        self.move(tid, "finish", **fields)

    def fail(self, tid: int, error: str) -> None:
        self.move(tid, "fail", last_error=error)

    def wait(self, tid: int, why: str) -> None:
        """No provider now (or the budget is spent): re-checked on new connections."""
        self.move(tid, "wait", last_error=why)

    def retry(self, tid: int, error: str) -> float:
        """A failed attempt: back to ``queued`` after the backoff; returns the delay (s)."""
        (attempts,) = self.conn.execute("SELECT attempts FROM transfers WHERE id = ?",
                                        (tid,)).fetchone()
        delay = backoff(attempts + 1)
        self.move(tid, "retry", attempts=attempts + 1, last_error=error,
                  next_try=self.clock() + int(delay * 1000))
        return delay

    def control(self, tid: int, action: str) -> dict[str, Any]:
        """pause (queued/running/waiting → paused), resume (paused/waiting/failed → queued),
        cancel (any unfinished, or failed → cancelled). Returns the row."""
        if action not in ACTIONS:
            raise NodeError(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})")
        self.get(tid)
        try:
            self.move(tid, action, **({"next_try": 0} if action == "resume" else {}))
        except IllegalMove:
            state = self.get(tid)["state"]
            verb = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
            raise IllegalMove(f"transfer {tid} is {state}: it cannot be {verb}") from None
        return self.get(tid)

    def demand(self, tid: int, priority: int) -> None:
        """The same root is fetched again: keep the row, raise its priority, resume it."""
        state = self.get(tid)["state"]
        fields: dict[str, Any] = {"priority": priority}
        if state in ("paused", "waiting"):
            fields["next_try"] = 0
        self.move(tid, "demand", **fields)

    def next_due(self) -> int | None:
        """When (ms) the earliest queued row in its backoff becomes due, or None."""
        (due,) = self.conn.execute("SELECT min(next_try) FROM transfers WHERE state = "
                                   "'queued' AND next_try > ?", (self.clock(),)).fetchone()
        return due

    def _move_all(self, event: str, where: str, args: tuple[Any, ...] = ()) -> int:
        """Apply ``event`` to every row in a state it can happen in that matches ``where``."""
        table = TRANSITIONS[event]
        n = 0
        with db.write(self.conn) as c:
            for old, new in table.items():
                n += c.execute(f"UPDATE transfers SET state = ?, next_try = 0, updated = ? "
                               f"WHERE state = ? AND ({where})",
                               (new, self.clock(), old, *args)).rowcount
        return n

    def requeue_running(self) -> int:
        """At daemon start: rows a killed daemon left running are queued again."""
        return self._move_all("requeue", "1")

    def wake_waiting(self, *, retries: bool = False) -> int:
        """Waiting rows are tried again now (a peer connected, or the re-check interval);
        with ``retries`` also queued rows still in their backoff (a peer connected: it may be
        the provider whose link died, or another one)."""
        n = self._move_all("wake", "1")
        if retries:
            with db.write(self.conn) as c:
                n += c.execute("UPDATE transfers SET next_try = 0, updated = ? WHERE state = "
                               "'queued' AND next_try > 0", (self.clock(),)).rowcount
        return n
