"""The backup file's plaintext (specs/backup.md): what a school cannot fetch again.

Sans-IO: :func:`encode` turns a :class:`Backup` into canonical msgpack and :func:`decode`
checks every field of one that came from a file (wrong types, unknown tables or columns,
oversize input and entries of another feed are refused before anything is used).  Encryption
is crypto's (``crypto.seal``); reading and writing homes is node/backup.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import codec, records
from .errors import RemoteProtocolError

VERSION = 1
MAGIC = b"SCHOOLMESH BACKUP\n"   # the file starts with this, then the sealed plaintext
MAX_PLAINTEXT = 256 * 2**20      # a school with ~300,000 entries; more is refused unread
MAX_ROWS = 100_000               # rows of one table
MAX_SETTING = 64 * 1024          # characters of one setting value

# table -> column -> type: "s" text, "i" integer, "b" bytes; a trailing "?" allows nil.
# Only these tables and columns are ever written or read (the column names reach SQL).
TABLES: dict[str, dict[str, str]] = {
    "teachers": {"name": "s", "hash": "s", "created": "i"},
    "teacher_keys": {"name": "s", "public": "b", "sealed": "b"},   # specs/teachers.md §5
    "follows": {"feed": "b", "school_id": "s", "created": "i"},
    "communities": {"community": "s", "relation": "s", "via": "s?", "charter": "b",
                    "certificate": "b?", "seeds": "s", "joined": "i"},
    "invites": {"invite_id": "b", "community": "s", "verifier": "b", "role": "s",
                "expires": "i", "created": "i", "used_by": "s?", "used_at": "i?"},
    "subscriptions": {"id": "i", "subject": "s?", "level": "s?", "created": "i"},
    # added with courses (specs/courses.md §6): written only when it has rows, so a backup
    # of a school without adoptions stays readable by readers from before
    "course_adoptions": {"id": "i", "course_id": "s", "class": "s", "teacher": "s?",
                         "start": "s", "timetable": "s", "skipped": "s", "horizon": "i",
                         "created": "i"},
}
LATER_TABLES = frozenset({"course_adoptions"})   # omitted from a backup when empty
FIELDS = frozenset({"v", "created", "key", "settings", "tables", "feed"})
_TYPES = {"s": str, "i": int, "b": bytes}


@dataclass(frozen=True, slots=True, kw_only=True)
class Backup:
    created: int                           # ms since the epoch
    key: bytes                             # the school key, PKCS#8 PEM (unencrypted inside)
    settings: dict[str, str]
    tables: dict[str, list[dict[str, Any]]]
    feed: list[bytes]                      # our own entries, seq 1, 2, ... (raw, signed)


def encode(b: Backup) -> bytes:
    return codec.encode({"v": VERSION, "created": b.created, "key": b.key,
                         "settings": b.settings, "tables": b.tables, "feed": b.feed},
                        MAX_PLAINTEXT)


def decode(data: bytes) -> Backup:
    """A checked backup; RemoteProtocolError naming the first problem."""
    value = codec.decode(data, MAX_PLAINTEXT)
    if not isinstance(value, dict) or set(value) != FIELDS:
        raise RemoteProtocolError("not a backup: wrong fields")
    if not codec.is_int(value["v"], VERSION):
        raise RemoteProtocolError(f"backup format {value['v']!r} is not supported "
                                  f"(this version reads {VERSION})")
    if type(value["created"]) is not int or not isinstance(value["key"], bytes):
        raise RemoteProtocolError("not a backup: bad 'created' or 'key'")
    settings = value["settings"]
    if not isinstance(settings, dict) or not all(
            isinstance(v, str) and len(v) <= MAX_SETTING for v in settings.values()):
        raise RemoteProtocolError("not a backup: bad settings")
    tables = value["tables"]
    if not isinstance(tables, dict) or set(tables) - set(TABLES):
        raise RemoteProtocolError("not a backup: unknown tables")
    for name, rows in tables.items():
        _check_rows(name, rows)
    feed = value["feed"]
    if not isinstance(feed, list) or not feed or not all(isinstance(r, bytes) for r in feed):
        raise RemoteProtocolError("not a backup: the school's feed is missing")
    prev = None
    for raw in feed:
        entry = records.decode_entry(raw)     # size, canonical form, signature
        records.check_chain(prev, entry)      # 1, 2, 3 ... of one feed
        prev = entry
    return Backup(created=value["created"], key=value["key"], settings=settings,
                  tables=tables, feed=feed)


def _check_rows(name: str, rows: Any) -> None:
    columns = TABLES[name]
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise RemoteProtocolError(f"not a backup: bad table {name}")
    for row in rows:
        if not isinstance(row, dict) or set(row) != set(columns):
            raise RemoteProtocolError(f"not a backup: bad row in {name}")
        for col, kind in columns.items():
            v = row[col]
            if v is None and kind.endswith("?"):
                continue
            if type(v) is not _TYPES[kind[0]]:
                raise RemoteProtocolError(f"not a backup: {name}.{col} has the wrong type")

