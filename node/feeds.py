"""Feeds: append-only, hash-chained logs of signed entries, one per school.

``append`` is the one way an entry enters the database — our own new entries and, later,
entries replicated from peers or imported from bundles — so the chain rules are enforced in
exactly one place.
"""

from __future__ import annotations

import enum
import sqlite3
import time

from crypto import PublicKey
from protocol import records
from protocol.errors import RemoteProtocolError
from protocol.records import FeedEntry

from . import catalog


def head(conn: sqlite3.Connection, feed: bytes) -> tuple[int, bytes | None]:
    row = conn.execute("SELECT head_seq, head_hash FROM feeds WHERE feed = ?",
                       (feed,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


class Appended(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"          # the very same entry was already stored
    EQUIVOCATION = "equivocation"    # a different valid entry at a stored seq: feed flagged


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
    if seq == 0:
        conn.execute("INSERT OR IGNORE INTO feeds (feed, school_id) VALUES (?, ?)",
                     (entry.feed, PublicKey(entry.feed).school_id))
    conn.execute("INSERT INTO entries (feed, seq, hash, kind, time, raw, received) "
                 "VALUES (?,?,?,?,?,?,?)", (entry.feed, entry.seq, entry.hash, entry.kind,
                                            entry.time, entry.raw, int(time.time() * 1000)))
    conn.execute("UPDATE feeds SET head_seq = ?, head_hash = ? WHERE feed = ?",
                 (entry.seq, entry.hash, entry.feed))
    catalog.apply_entry(conn, entry)
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
