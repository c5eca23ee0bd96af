"""Feeds: append-only, hash-chained logs of signed entries, one per school.

``append`` is the one way an entry enters the database, so the chain rules are enforced in
exactly one place.  Entries that come from outside — feed sync, gossiped heads, USB bundles —
pass through :func:`admit` first, the one place that decides whether this node stores an entry
of another school at all (specs/feedsync.md §5): the entry must be the one the message claims,
of a feed this node replicates, and dated before that feed's removal cutoff.  Our own entries
are signed here and appended directly (``library.append_entry``).
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass

from crypto import PublicKey
from protocol import records
from protocol.errors import RemoteProtocolError
from protocol.records import FeedEntry

from . import catalog, teachers


def head(conn: sqlite3.Connection, feed: bytes) -> tuple[int, bytes | None]:
    row = conn.execute("SELECT head_seq, head_hash FROM feeds WHERE feed = ?",
                       (feed,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


class Appended(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"          # the very same entry was already stored
    EQUIVOCATION = "equivocation"    # a different valid entry at a stored seq: feed flagged
    CUT = "cut"                      # admit: dated at or after its feed's cutoff, not stored
    UNWANTED = "unwanted"            # admit: of a feed this node does not replicate


@dataclass(frozen=True, slots=True)
class Gate:
    """Which feeds' entries this node stores from outside, and up to when.

    ``wanted`` maps a feed to its cutoff: entries dated at or after it are not stored (a school
    removed from a community, or whose membership expired); ``None``: no cutoff.  With
    ``any_feed`` (a USB bundle the operator chose to import) feeds outside ``wanted`` are
    stored too, but a feed's cutoff, where it has one, still holds.
    """
    wanted: Mapping[bytes, int | None]
    any_feed: bool = False

    def cutoff(self, feed: bytes) -> int | None:
        return self.wanted.get(feed)


def admit(conn: sqlite3.Connection, entry: FeedEntry, gate: Gate, *,
          feed: bytes | None = None, seq: int | None = None) -> Appended:
    """The one rule for storing an entry that arrived from outside (inside a write
    transaction).  ``feed``/``seq`` are what the carrying message claims the entry is (the
    feed asked for, the head's feed and seq): an entry that is not exactly that is the
    sender's fault (RemoteProtocolError).  The follow set and the cutoff are those of the
    entry's own feed, never of the message that carried it."""
    if feed is not None and entry.feed != feed:
        raise RemoteProtocolError("the entry belongs to another feed than the message names")
    if seq is not None and entry.seq != seq:
        raise RemoteProtocolError(f"the entry is entry {entry.seq}, the message names {seq}")
    if entry.feed not in gate.wanted and not gate.any_feed:
        return Appended.UNWANTED
    cutoff = gate.cutoff(entry.feed)
    if cutoff is not None and entry.time >= cutoff:
        return Appended.CUT
    return append(conn, entry)


def append(conn: sqlite3.Connection, entry: FeedEntry) -> Appended:
    """Store a verified entry after the feed's head (inside a write transaction).

    Raises RemoteProtocolError for a gap, a broken chain, or a feed we no longer trust.  A
    different entry at a stored seq is equivocation: it is kept as evidence, the feed is flagged
    and EQUIVOCATION returned (not raised, so the caller's commit keeps the evidence).
    """
    row = conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?",
                       (entry.feed, entry.seq)).fetchone()
    if row is not None:
        if row[0] == entry.hash:
            return Appended.DUPLICATE
        conn.execute("INSERT OR IGNORE INTO conflicts VALUES (?,?,?,?)",
                     (entry.feed, entry.seq, entry.hash, entry.raw))
        conn.execute("UPDATE feeds SET flagged = ? WHERE feed = ?",
                     (f"signed two different entries {entry.seq}", entry.feed))
        return Appended.EQUIVOCATION
    flagged = conn.execute("SELECT flagged FROM feeds WHERE feed = ?", (entry.feed,)).fetchone()
    if flagged and flagged[0]:
        raise RemoteProtocolError(f"feed {entry.school_id} is not trusted: {flagged[0]}")
    seq, hash_ = head(conn, entry.feed)
    if entry.seq != seq + 1:
        raise RemoteProtocolError(f"gap in feed: expected entry {seq + 1}, got {entry.seq}")
    if entry.prev != hash_:
        raise RemoteProtocolError(f"broken chain at entry {entry.seq}: prev does not match")
    teachers.check(conn, entry)   # before anything is stored (specs/teachers.md §4)
    if seq == 0:
        conn.execute("INSERT OR IGNORE INTO feeds (feed, school_id) VALUES (?, ?)",
                     (entry.feed, PublicKey(entry.feed).school_id))
    conn.execute("INSERT INTO entries (feed, seq, hash, kind, time, raw, received) "
                 "VALUES (?,?,?,?,?,?,?)", (entry.feed, entry.seq, entry.hash, entry.kind,
                                            entry.time, entry.raw, int(time.time() * 1000)))
    conn.execute("UPDATE feeds SET head_seq = ?, head_hash = ? WHERE feed = ?",
                 (entry.seq, entry.hash, entry.feed))
    catalog.apply_entry(conn, entry)
    teachers.apply(conn, entry)
    return Appended.ADDED


def entries(conn: sqlite3.Connection, feed: bytes, after: int = 0) -> list[FeedEntry]:
    """Stored entries of a feed after ``after``, re-verified (signature and chain)."""
    out: list[FeedEntry] = []
    prev = None
    if after:
        row = conn.execute("SELECT raw FROM entries WHERE feed = ? AND seq = ?",
                           (feed, after)).fetchone()
        prev = records.decode_entry(row[0]) if row else None
    for (raw,) in conn.execute("SELECT raw FROM entries WHERE feed = ? AND seq > ? ORDER BY seq",
                               (feed, after)):
        e = records.decode_entry(raw)
        if prev is not None or after == 0:
            records.check_chain(prev, e)
        prev = e
        out.append(e)
    return out
