"""The node's one SQLite database (WAL): feeds, catalog (FTS5), pins, settings.

Schema changes are numbered migrations applied in order (``PRAGMA user_version``).
Writers use ``BEGIN IMMEDIATE`` so two processes never interleave a read-modify-write of a
feed head; readers never block (WAL).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFull, HomeError

BUSY_TIMEOUT_MS = 30_000  # another schoolmesh process may hold the write lock this long

MIGRATIONS: list[str] = [
    # 1: feeds, catalog, pins
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE feeds (
        feed BLOB PRIMARY KEY,           -- author's Ed25519 public key
        school_id TEXT NOT NULL UNIQUE,
        name TEXT, role TEXT,
        head_seq INTEGER NOT NULL DEFAULT 0,
        head_hash BLOB,
        flagged TEXT                     -- why we stopped trusting it (equivocation), or NULL
    );
    CREATE TABLE entries (
        feed BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, kind TEXT NOT NULL,
        time INTEGER NOT NULL, raw BLOB NOT NULL,
        PRIMARY KEY (feed, seq)
    ) WITHOUT ROWID;
    CREATE TABLE conflicts (             -- equivocation evidence: a second entry at a seq
        feed BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, raw BLOB NOT NULL,
        PRIMARY KEY (feed, seq, hash)
    ) WITHOUT ROWID;
    CREATE TABLE resources (
        id INTEGER PRIMARY KEY,
        resource_id TEXT NOT NULL UNIQUE,
        feed BLOB NOT NULL, school_id TEXT NOT NULL,
        version INTEGER NOT NULL, first_seq INTEGER NOT NULL, seq INTEGER NOT NULL,
        title TEXT NOT NULL, language TEXT NOT NULL, type TEXT, license TEXT NOT NULL,
        content BLOB NOT NULL, meta TEXT NOT NULL, files TEXT NOT NULL,
        created INTEGER NOT NULL, updated INTEGER NOT NULL,
        retracted INTEGER NOT NULL DEFAULT 0, retract_reason TEXT
    );
    CREATE INDEX resources_updated ON resources(updated DESC);
    CREATE INDEX resources_school ON resources(school_id);
    CREATE TABLE resource_versions (
        resource_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL,
        content BLOB NOT NULL, time INTEGER NOT NULL,
        PRIMARY KEY (resource_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE facets (
        res INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
        facet TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (facet, value, res)
    ) WITHOUT ROWID;
    CREATE INDEX facets_res ON facets(res);
    CREATE TABLE lineage (
        res TEXT NOT NULL, based_on TEXT NOT NULL, PRIMARY KEY (res, based_on)
    ) WITHOUT ROWID;
    CREATE INDEX lineage_based_on ON lineage(based_on);
    CREATE VIRTUAL TABLE catalog_fts USING fts5(
        title, description, keywords, subjects, chars, facets,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE pins (
        cid BLOB NOT NULL, reason TEXT NOT NULL, ref TEXT NOT NULL, created INTEGER NOT NULL,
        PRIMARY KEY (cid, reason, ref)
    ) WITHOUT ROWID;
    """,
    # 2: network: schools we follow, peers we have seen
    """
    CREATE TABLE follows (
        feed BLOB PRIMARY KEY, school_id TEXT NOT NULL UNIQUE, created INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE peers (
        peer_id TEXT PRIMARY KEY, addrs TEXT NOT NULL, last_seen INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: teacher web library: accounts, requests board, feedback, fulfilled requests
    """
    CREATE TABLE teachers (
        name TEXT PRIMARY KEY, hash TEXT NOT NULL, created INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY, feed BLOB NOT NULL, school_id TEXT NOT NULL,
        seq INTEGER NOT NULL, time INTEGER NOT NULL,
        subject TEXT NOT NULL, level TEXT NOT NULL, description TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX requests_time ON requests(time DESC);
    CREATE TABLE feedback (
        feed BLOB NOT NULL, seq INTEGER NOT NULL, school_id TEXT NOT NULL,
        resource_id TEXT NOT NULL, used INTEGER NOT NULL, rating INTEGER NOT NULL,
        comment TEXT, time INTEGER NOT NULL,
        PRIMARY KEY (feed, seq)
    ) WITHOUT ROWID;
    CREATE INDEX feedback_resource ON feedback(resource_id);
    CREATE TABLE fulfils (
        res TEXT NOT NULL, request_id TEXT NOT NULL, PRIMARY KEY (request_id, res)
    ) WITHOUT ROWID;
    """,
    # 4: bytes sent/received per calendar month (monthly budget, specs/limits.md)
    """
    CREATE TABLE traffic (
        month TEXT PRIMARY KEY, up INTEGER NOT NULL, down INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: the persistent transfer queue (specs/limits.md section 6)
    """
    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL, root BLOB NOT NULL,
        priority INTEGER NOT NULL,           -- teacher request 30, subscription 20, seeding 10
        state TEXT NOT NULL,                 -- queued running paused done failed cancelled waiting
        bytes_done INTEGER NOT NULL DEFAULT 0, bytes_total INTEGER,
        providers TEXT NOT NULL DEFAULT '[]', -- JSON list of the providers tried
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        next_try INTEGER NOT NULL DEFAULT 0, -- ms: a queued row is not started before
        created INTEGER NOT NULL, updated INTEGER NOT NULL
    );
    CREATE INDEX transfers_state ON transfers(state, priority DESC, id);
    """,
    # 6: communities (specs/communities.md): the ones we belong to or link, the invites we
    # issued (verifiers only, never secrets), auto-fetch subscriptions, and what a transfer pins
    """
    CREATE TABLE communities (
        community TEXT PRIMARY KEY,
        relation TEXT NOT NULL,          -- member (founded or joined) | linked (federation)
        via TEXT,                        -- linked: our community that links it
        charter BLOB NOT NULL,           -- the charter entry (verified), whoever holds its feed
        certificate BLOB,                -- joined: the certificate a seed gave us
        seeds TEXT NOT NULL DEFAULT '[]',-- JSON multiaddrs of its seeds, redialled by the daemon
        joined INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE invites (
        invite_id BLOB PRIMARY KEY, community TEXT NOT NULL, verifier BLOB NOT NULL,
        role TEXT NOT NULL, expires INTEGER NOT NULL, created INTEGER NOT NULL,
        used_by TEXT, used_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT, level TEXT, created INTEGER NOT NULL
    );
    CREATE INDEX entries_kind ON entries(kind);
    ALTER TABLE transfers ADD COLUMN pin_reason TEXT NOT NULL DEFAULT 'user';
    ALTER TABLE transfers ADD COLUMN pin_ref TEXT;
    """,
    # 7: when each entry reached this node (ms; NULL for entries stored before): a certificate
    # received only after its issuer's removal may be backdated (specs/communities.md §8)
    """
    ALTER TABLE entries ADD COLUMN received INTEGER;
    """,
    # 8: signed-in teachers' web sessions (specs/web.md §3): only the SHA-256 of the cookie's
    # id is kept; times in ms since the epoch
    """
    CREATE TABLE sessions (               -- rowid: creation order (ties within one ms)
        token_hash BLOB NOT NULL UNIQUE, teacher TEXT NOT NULL,
        created INTEGER NOT NULL, used INTEGER NOT NULL, expires INTEGER NOT NULL
    );
    CREATE INDEX sessions_teacher ON sessions(teacher, used);
    CREATE INDEX sessions_used ON sessions(used);
    """,
    # 9: a web account's role (specs/web.md §3): 'teacher' publishes; 'operator' also runs the
    # node from the browser (status, transfers, storage, accounts)
    """
    ALTER TABLE teachers ADD COLUMN role TEXT NOT NULL DEFAULT 'teacher';
    """,
    # 10: storage within a budget (node/gc.py): when a cached copy was last used, and the cache
    # pins dropped for the quota (a subscription does not fetch them again)
    """
    ALTER TABLE pins ADD COLUMN used INTEGER;
    CREATE INDEX resources_content ON resources(content);
    CREATE TABLE evicted (
        cid BLOB NOT NULL, reason TEXT NOT NULL, ref TEXT NOT NULL, time INTEGER NOT NULL,
        PRIMARY KEY (cid, reason, ref)
    ) WITHOUT ROWID;
    """,    # teacher identities and studios (specs/teachers.md): the index of certificates and
    # signatures of every stored feed, and the local accounts' keys sealed under their passwords
    """
    CREATE TABLE teacher_certs (
        feed BLOB NOT NULL, teacher BLOB NOT NULL, seq INTEGER NOT NULL,
        name TEXT NOT NULL, subjects TEXT NOT NULL, school TEXT NOT NULL,
        revoked_seq INTEGER,                 -- NULL while the school vouches for the teacher
        PRIMARY KEY (feed, teacher)
    ) WITHOUT ROWID;
    CREATE INDEX teacher_certs_teacher ON teacher_certs(teacher);
    CREATE TABLE teacher_signatures (
        feed BLOB NOT NULL, seq INTEGER NOT NULL,  -- the signed entry
        entry BLOB NOT NULL UNIQUE,                -- its hash
        kind TEXT NOT NULL, teacher BLOB NOT NULL, sig_seq INTEGER NOT NULL,
        PRIMARY KEY (feed, seq)
    ) WITHOUT ROWID;
    CREATE INDEX teacher_signatures_teacher ON teacher_signatures(teacher);
    CREATE INDEX entries_hash ON entries(hash);   -- a teacher.signature names its entry by hash
    CREATE TABLE teacher_keys (
        name TEXT PRIMARY KEY REFERENCES teachers(name) ON DELETE CASCADE,
        public BLOB NOT NULL UNIQUE, sealed BLOB NOT NULL
    );
    """,
    # courses (specs/courses.md): course records indexed from feed entries (their own search
    # index), and this school's adoptions of courses for its classes (local, never signed)
    """
    CREATE TABLE courses (
        id INTEGER PRIMARY KEY,                 -- rowid of courses_fts
        course_id TEXT NOT NULL UNIQUE, feed BLOB NOT NULL, school_id TEXT NOT NULL,
        version INTEGER NOT NULL, seq INTEGER NOT NULL,
        title TEXT NOT NULL, subject TEXT NOT NULL, grade TEXT NOT NULL, volume TEXT,
        edition TEXT, meta TEXT NOT NULL,       -- JSON of the record's meta
        units TEXT NOT NULL,                    -- JSON of the record's units
        lessons INTEGER NOT NULL, retracted INTEGER NOT NULL DEFAULT 0, retract_reason TEXT,
        created INTEGER NOT NULL, updated INTEGER NOT NULL
    );
    CREATE TABLE course_versions (
        course_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL,
        time INTEGER NOT NULL, PRIMARY KEY (course_id, version)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE courses_fts USING fts5(
        title, subject, description, lessons, chars,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE course_adoptions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        course_id TEXT NOT NULL, class TEXT NOT NULL, teacher TEXT,
        start TEXT NOT NULL,                    -- YYYY-MM-DD
        timetable TEXT NOT NULL,                -- JSON [[weekday, period], ...]
        skipped TEXT NOT NULL DEFAULT '[]',     -- JSON ["YYYY-MM-DD", ...]
        horizon INTEGER NOT NULL DEFAULT 14,    -- days ahead whose resources are fetched
        created INTEGER NOT NULL,
        UNIQUE (course_id, class)
    );
    CREATE INDEX transfers_root ON transfers(root);
    """,
    # 11: textbook curriculum (specs/records.md §5.3) and the text inside files: curriculum
    # columns for sorting by unit and lesson; file_texts holds what node/textindex.py extracted
    # (by file CID); the full-text table gains people (creator, file names) and body (text in
    # files). text_state: 0 the index row predates these (rebuild from meta), 1 body pending
    # until the content is local, 2 done. Old rows keep their words and are rebuilt in the
    # background.
    """
    ALTER TABLE resources ADD COLUMN grade INTEGER;
    ALTER TABLE resources ADD COLUMN volume TEXT;
    ALTER TABLE resources ADD COLUMN edition TEXT;
    ALTER TABLE resources ADD COLUMN unit_no INTEGER;
    ALTER TABLE resources ADD COLUMN lesson_no INTEGER;
    ALTER TABLE resources ADD COLUMN text_state INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX resources_text_pending ON resources(text_state) WHERE text_state < 2;
    CREATE TABLE file_texts (
        cid BLOB PRIMARY KEY, text TEXT NOT NULL, error TEXT, time INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE catalog_fts_11 USING fts5(
        title, description, keywords, subjects, chars, facets, people, body,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    INSERT INTO catalog_fts_11(rowid, title, description, keywords, subjects, chars, facets)
        SELECT rowid, title, description, keywords, subjects, chars, facets FROM catalog_fts;
    DROP TABLE catalog_fts;
    ALTER TABLE catalog_fts_11 RENAME TO catalog_fts;
    """,
    # 11: traffic per local calendar day for the operator page's charts of the month: the
    # budget's bytes (the month's total stays in traffic, 4), and every stream's bytes per
    # libp2p protocol (LAN peers included); days before this migration are not known
    """
    CREATE TABLE traffic_days (
        day TEXT PRIMARY KEY, up INTEGER NOT NULL, down INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE traffic_protocols (
        day TEXT NOT NULL, protocol TEXT NOT NULL,
        sent INTEGER NOT NULL, received INTEGER NOT NULL,
        PRIMARY KEY (day, protocol)
    ) WITHOUT ROWID;
    """,
]


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    if not create and not Path(path).exists():
        raise HomeError(f"no schoolmesh database at {path}")
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        if is_full(exc) or disk_nearly_full(Path(path).parent):
            raise DiskFull(f"the disk holding {path} is full, so the database cannot be opened:"
                           " free some space and try again") from exc
        raise HomeError(f"cannot open the database {path}: {exc}") from exc
    return conn


FULL_DISK_SLACK = 1024 * 1024  # less free than this: SQLite's "disk I/O error" means a full disk


def disk_nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_SLACK
    except OSError:
        return False


def _migrate(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise HomeError("this home was written by a newer schoolmesh; upgrade schoolmesh")
    if version == len(MIGRATIONS):
        return
    with write(conn):
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for i in range(version, len(MIGRATIONS)):
            for stmt in MIGRATIONS[i].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {i + 1}")


def is_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL)."""
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc))


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken eagerly (BEGIN IMMEDIATE); rolled back on any exception.
    A full disk becomes :class:`DiskFull` (the transaction is rolled back: nothing changed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass   # SQLite already rolled back (e.g. after SQLITE_FULL)
        if is_full(exc):
            raise DiskFull() from exc
        raise


def pin(conn: sqlite3.Connection, cid: bytes, reason: str, ref: str, time: int) -> None:
    """Keep the DAG under ``cid`` for ``reason`` (own, bundle, user, ...; see specs); idempotent.
    A ``bundle`` or ``community`` pin of a newer version replaces those of its older versions
    (node/gc.py: lifetimes)."""
    conn.execute("INSERT OR IGNORE INTO pins (cid, reason, ref, created) VALUES (?, ?, ?, ?)",
                 (cid, reason, ref, time))
    if reason in ("bundle", "community"):
        conn.execute(
            "DELETE FROM pins WHERE reason = ? AND cid IN (SELECT v.content FROM "
            "resource_versions v JOIN resources r ON r.resource_id = v.resource_id "
            "WHERE r.content = ? AND v.content != ?)", (reason, cid, cid))


def get_setting(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def set_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
