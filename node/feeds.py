"""Feeds: append-only, hash-chained logs of signed entries, one per school.

``append`` is the one way an entry enters the database — our own new entries and, later,
entries replicated from peers or imported from bundles — so the chain rules are enforced in
exactly one place.
"""

from __future__ import annotations

import sqlite3

from crypto import PublicKey
from protocol import records
from protocol.errors import RemoteProtocolError
from protocol.records import FeedEntry

from . import catalog


def head(conn: sqlite3.Connection, feed: bytes) -> tuple[int, bytes | None]:
    row = conn.execute("SELECT head_seq, head_hash FROM feeds WHERE feed = ?",
                       (feed,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


def append(conn: sqlite3.Connection, entry: FeedEntry) -> bool:
    """Store a verified entry after the feed's head (inside a write transaction).

    Returns False if the very same entry is already stored.  Raises RemoteProtocolError for a
    gap, a broken chain, or a different entry at a stored seq (equivocation: both are kept as
    evidence and the feed is flagged).
    """
    row = conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?",
                       (entry.feed, entry.seq)).fetchone()
    if row is not None:
        if row[0] == entry.hash:
            return False
        conn.execute("UPDATE feeds SET flagged = ? WHERE feed = ?",
                     (f"equivocation at seq {entry.seq}", entry.feed))
        raise RemoteProtocolError(
            f"feed {entry.school_id} signed two different entries {entry.seq}")
    seq, hash_ = head(conn, entry.feed)
    if entry.seq != seq + 1:
        raise RemoteProtocolError(f"gap in feed: expected entry {seq + 1}, got {entry.seq}")
    if entry.prev != hash_:
        raise RemoteProtocolError(f"broken chain at entry {entry.seq}: prev does not match")
    if seq == 0:
        conn.execute("INSERT OR IGNORE INTO feeds (feed, school_id) VALUES (?, ?)",
                     (entry.feed, PublicKey(entry.feed).school_id))
    conn.execute("INSERT INTO entries VALUES (?,?,?,?,?,?)",
                 (entry.feed, entry.seq, entry.hash, entry.kind, entry.time, entry.raw))
    conn.execute("UPDATE feeds SET head_seq = ?, head_hash = ? WHERE feed = ?",
                 (entry.seq, entry.hash, entry.feed))
    catalog.apply_entry(conn, entry)
    return True


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
