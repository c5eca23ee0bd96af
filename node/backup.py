"""Backup and restore of what a school cannot fetch again (specs/backup.md), and the rule
that keeps a restored school from forking its own feed.

A backup holds the school key, settings, teacher accounts and their sealed keys, communities,
invites issued, subscriptions, course adoptions, follows and the school's own feed, sealed with
a passphrase (``crypto.seal``: the key file's scrypt + AES-256-GCM scheme).  Content is not in
it: it comes back from peers
or a bundle.

A restored home does not know whether its school signed entries after the backup was made
(nor does a home made from a bare key), so its *own head is unknown*: it refuses to sign
anything (``require_known_head``, checked in the one place own entries are signed) until the
running node has learnt the head from its community's seeds or from a peer holding its feed,
or a bundle brought the feed (``mark_head_known``).  Own entries learnt that way enter through
``feeds.admit`` like every entry from outside.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from crypto import BadKeyFile, SchoolKey, seal, unseal
from protocol import backup as pb
from protocol import records
from protocol.errors import ProtocolError

from . import db, feeds
from .errors import HomeError, NodeError
from .home import OWN_HEAD_SETTING, Home, create_home, now_ms

REFETCH_OWN_SETTING = "refetch_own"   # "1": fetch our own content back from peers
_NOT_RESTORED = {OWN_HEAD_SETTING, REFETCH_OWN_SETTING}


# -- the own head ------------------------------------------------------------------------------

def head_known(conn: sqlite3.Connection) -> bool:
    return db.get_setting(conn, OWN_HEAD_SETTING) is None


def require_known_head(conn: sqlite3.Connection) -> None:
    """NodeError unless this school knows its latest own entry (so signing cannot fork)."""
    if not head_known(conn):
        raise NodeError("this school was restored and may have signed entries that its backup "
                        "does not hold: start the node ('schoolmesh start') so it learns its "
                        "latest entry from its community's seeds, or import a bundle holding "
                        "its feed, before publishing ('schoolmesh status' shows when it knows)")


def mark_head_known(conn: sqlite3.Connection) -> None:
    """The own head is learnt (inside a write transaction): pin our own content again and
    let the node fetch what is missing."""
    conn.execute("DELETE FROM settings WHERE key = ?", (OWN_HEAD_SETTING,))
    db.set_setting(conn, REFETCH_OWN_SETTING, "1")


def own_resources(conn: sqlite3.Connection, feed: bytes) -> list[tuple[str, bytes, int]]:
    """(resource id, content root, size in bytes) of our resources not retracted."""
    from .catalog import files_size
    return [(rid, content, files_size(files)) for rid, content, files in conn.execute(
        "SELECT resource_id, content, files FROM resources WHERE feed = ? AND retracted = 0 "
        "ORDER BY id", (feed,))]


# -- writing a backup ---------------------------------------------------------------------------

def collect(home: Home) -> pb.Backup:
    """Everything of ``home`` that goes into a backup (the key must be unlocked)."""
    conn = home.conn
    if not head_known(conn):
        raise NodeError("this home does not know its latest own entry yet, so a backup of it "
                        "would be incomplete: start the node first")
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, columns in pb.TABLES.items():
        cols = list(columns)
        rows = [dict(zip(cols, row)) for row in conn.execute(
            f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1")]  # names from pb.TABLES only
        if rows or table not in pb.LATER_TABLES:
            tables[table] = rows
    settings = {k: v for k, v in conn.execute("SELECT key, value FROM settings")
                if k not in _NOT_RESTORED}
    feed = [raw for (raw,) in conn.execute("SELECT raw FROM entries WHERE feed = ? ORDER BY seq",
                                           (home.feed,))]
    return pb.Backup(created=now_ms(), key=home.key().to_pem(), settings=settings,
                     tables=tables, feed=feed)


def write_backup(home: Home, output: Path, passphrase: bytes) -> dict[str, Any]:
    """Seal a backup of ``home`` into ``output`` (mode 0600, atomically, never overwriting)."""
    b = collect(home)
    try:
        data = seal(passphrase, pb.encode(b), pb.MAGIC)
    except ProtocolError as exc:
        raise NodeError(str(exc)) from None
    _write_new_file(Path(output), data)
    return {"output": str(output), "bytes": len(data), "entries": len(b.feed),
            "school_id": home.school_id,
            **{table: len(rows) for table, rows in b.tables.items()}}


def _write_new_file(path: Path, data: bytes) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NodeError(f"{folder} is not an existing folder")
    if path.exists():
        raise NodeError(f"{path} already exists; choose another name")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if the name appeared meanwhile: never overwrite
    finally:
        os.unlink(tmp)
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# -- restoring ----------------------------------------------------------------------------------

def read_backup(path: Path, passphrase: bytes) -> tuple[pb.Backup, SchoolKey]:
    """Open and check a backup file; NodeError naming the problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > pb.MAX_PLAINTEXT + 1024:
        raise NodeError(f"{path} is too large to be a backup")
    try:
        b = pb.decode(unseal(data, passphrase, pb.MAGIC))
        key = SchoolKey.from_pem(b.key)
    except BadKeyFile as exc:
        raise NodeError(f"{path}: {exc}") from None
    except ProtocolError as exc:
        raise NodeError(f"{path} is damaged: {exc}") from None
    if records.decode_entry(b.feed[0]).feed != key.public.raw:
        raise NodeError(f"{path} is damaged: its feed is not the school key's")
    if b.settings.get("feed") != key.public.raw.hex() or \
            b.settings.get("school_id") != key.school_id:
        raise NodeError(f"{path} is damaged: its settings belong to another school")
    return b, key


def restore(path: Path, backup_file: Path, backup_passphrase: bytes,
            key_passphrase: bytes | None = None) -> Home:
    """Create the home ``path`` from a backup. Its own head stays unknown until the node
    has asked its community's seeds (the backup may be older than the school's last entry)."""
    b, key = read_backup(backup_file, backup_passphrase)
    own = {key.public.raw: None}

    def populate(conn: sqlite3.Connection) -> None:
        for k, v in b.settings.items():
            db.set_setting(conn, k, v)
        for table in pb.TABLES:   # in this order: teacher_keys refer to teachers
            cols = list(pb.TABLES[table])
            for row in b.tables.get(table, []):
                conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                             f"({', '.join('?' * len(cols))})", [row[c] for c in cols])
        gate = feeds.Gate(wanted=own)
        for raw in b.feed:   # checked in read_backup; entered as every entry from outside
            if feeds.admit(conn, records.decode_entry(raw), gate,
                           feed=key.public.raw) is not feeds.Appended.ADDED:
                raise HomeError(f"{backup_file} is damaged: its feed does not chain")
        db.set_setting(conn, OWN_HEAD_SETTING, "unknown")
    try:
        return create_home(path, key, key_passphrase, populate)
    except (sqlite3.IntegrityError, ProtocolError) as exc:
        raise NodeError(f"{backup_file} is damaged: {exc}") from None


def restore_key(path: Path, key_file: Path, name: str, role: str, *, fresh: bool,
                key_file_passphrase: bytes | None, key_passphrase: bytes | None,
                language: str = "zh-CN") -> Home:
    """Create a home from a bare key backup. ``fresh``: the operator says the school never
    published, so its feed starts now; otherwise its head is learnt from peers first."""
    from crypto import load_key

    from .home import init_home
    key = load_key(key_file, key_file_passphrase)
    return init_home(path, name, role, key_passphrase, language, key=key, fresh=fresh)
