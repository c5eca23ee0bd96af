"""Teacher certificates and signatures as stored feeds say them (specs/teachers.md §4).

``check`` is the feed rule for teacher entries and runs inside :func:`node.feeds.append` —
so for our own entries and for every entry admitted from outside alike — before anything is
stored; ``apply`` then indexes the entry.  The index (``teacher_certs``,
``teacher_signatures``) is derived data: it is rebuilt the same from the same feeds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from crypto import SchoolKey
from protocol import records
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.records import FeedEntry
from protocol.teachers import (
    KIND_TEACHER_CERTIFICATE, KIND_TEACHER_REVOCATION, KIND_TEACHER_SIGNATURE, SIGNABLE_KINDS,
    check_signature, signature_body,
)
from protocol.studio import STUDIO_KINDS

from .errors import NodeError


def certified(conn: sqlite3.Connection, feed: bytes, teacher: bytes) -> bool:
    """True if ``feed``'s school vouches for ``teacher`` now (a certificate, not revoked)."""
    row = conn.execute("SELECT revoked_seq FROM teacher_certs WHERE feed = ? AND teacher = ?",
                       (feed, teacher)).fetchone()
    return row is not None and row[0] is None


def check(conn: sqlite3.Connection, entry: FeedEntry) -> None:
    """RemoteProtocolError if ``entry`` (the next of its feed) breaks a teacher rule."""
    b = entry.body
    try:
        if entry.kind == KIND_TEACHER_REVOCATION:
            if not certified(conn, entry.feed, b["teacher"]):
                raise LocalProtocolError("revokes a teacher this school does not vouch for")
        elif entry.kind == KIND_TEACHER_SIGNATURE:
            row = conn.execute("SELECT seq, kind FROM entries WHERE feed = ? AND hash = ?",
                               (entry.feed, b["entry"])).fetchone()
            signed = conn.execute("SELECT 1 FROM teacher_signatures WHERE entry = ?",
                                  (b["entry"],)).fetchone() is not None
            check_signature(b, row[1] if row else None, row[0] if row else None, entry.seq,
                            certified(conn, entry.feed, b["teacher"]), signed)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"feed entry {entry.seq} ({entry.kind}): {exc}") from None


def apply(conn: sqlite3.Connection, entry: FeedEntry) -> None:
    b = entry.body
    if entry.kind == KIND_TEACHER_CERTIFICATE:
        conn.execute(
            "INSERT INTO teacher_certs (feed, teacher, seq, name, subjects, school, revoked_seq)"
            " VALUES (?,?,?,?,?,?,NULL) ON CONFLICT(feed, teacher) DO UPDATE SET"
            " seq = excluded.seq, name = excluded.name, subjects = excluded.subjects,"
            " school = excluded.school, revoked_seq = NULL",
            (entry.feed, b["teacher"], entry.seq, b["name"],
             json.dumps(b["subjects"], ensure_ascii=False), b["school"]))
    elif entry.kind == KIND_TEACHER_REVOCATION:
        conn.execute("UPDATE teacher_certs SET revoked_seq = ? WHERE feed = ? AND teacher = ?",
                     (entry.seq, entry.feed, b["teacher"]))
    elif entry.kind == KIND_TEACHER_SIGNATURE:
        seq, kind = conn.execute("SELECT seq, kind FROM entries WHERE feed = ? AND hash = ?",
                                 (entry.feed, b["entry"])).fetchone()
        conn.execute("INSERT INTO teacher_signatures (feed, seq, entry, kind, teacher, sig_seq)"
                     " VALUES (?,?,?,?,?,?)",
                     (entry.feed, seq, b["entry"], kind, b["teacher"], entry.seq))


def signer(conn: sqlite3.Connection, feed: bytes, seq: int) -> bytes | None:
    """The teacher who signed entry ``seq`` of ``feed``, None if no teacher did."""
    row = conn.execute("SELECT teacher FROM teacher_signatures WHERE feed = ? AND seq = ?",
                       (feed, seq)).fetchone()
    return row[0] if row else None


def certificates(conn: sqlite3.Connection, teacher: bytes) -> list[dict[str, object]]:
    """Every school's certificate of ``teacher`` this node knows (a teacher who moved has
    several), oldest school first by feed order."""
    rows = conn.execute(
        "SELECT f.school_id, c.name, c.subjects, c.school, c.seq, c.revoked_seq FROM"
        " teacher_certs c JOIN feeds f ON f.feed = c.feed WHERE c.teacher = ?"
        " ORDER BY c.school, c.seq", (teacher,)).fetchall()
    return [{"school_id": r[0], "name": r[1], "subjects": json.loads(r[2]), "school": r[3],
             "seq": r[4], "revoked": r[5] is not None} for r in rows]


def name_of(conn: sqlite3.Connection, teacher: bytes) -> str | None:
    row = conn.execute("SELECT name FROM teacher_certs WHERE teacher = ? ORDER BY"
                       " revoked_seq IS NOT NULL, seq DESC LIMIT 1", (teacher,)).fetchone()
    return row[0] if row else None


# -- signing for the signed-in teacher ---------------------------------------------------------

_signer: ContextVar[SchoolKey | None] = ContextVar("teacher_signer", default=None)


@contextmanager
def signing_as(key: SchoolKey | None) -> Iterator[None]:
    """Entries this node signs inside the block (also in threads started from it: trio copies
    the context) carry ``key``'s teacher signature; ``None``: no teacher signs."""
    token = _signer.set(key)
    try:
        yield
    finally:
        _signer.reset(token)


def current_signer() -> SchoolKey | None:
    return _signer.get()


def signature_entry(conn: sqlite3.Connection, school: SchoolKey, signed: FeedEntry
                    ) -> FeedEntry | None:
    """The signed-in teacher's ``teacher.signature`` of our just-appended entry ``signed``
    (next in the feed), or None when no teacher signs or the kind is not a teacher's."""
    key = _signer.get()
    if key is None or (signed.kind not in SIGNABLE_KINDS and signed.kind not in STUDIO_KINDS):
        return None
    if not certified(conn, school.public.raw, key.public.raw):
        raise NodeError("this school does not vouch for the signed-in teacher (no "
                        "certificate, or revoked): nothing was published")
    return records.sign_entry(school, seq=signed.seq + 1, prev=signed.hash, time=signed.time,
                              kind=KIND_TEACHER_SIGNATURE,
                              body=signature_body(key, signed.hash))
