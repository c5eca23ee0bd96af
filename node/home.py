"""A node's home folder: the school key, the block store and the database.

    HOME/key.pem        Ed25519 key, mode 0600: PKCS#8, or passphrase-encrypted (specs/records.md)
    HOME/schoolmesh.db  SQLite (WAL): feeds, catalog, pins, settings
    HOME/blocks/        content-addressed blocks
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from crypto import (BadKeyFile, SchoolKey, WeakPassphrase, check_new_passphrase, load_key,
                    loose_permissions, save_key)
from protocol import records

from . import db, feeds
from .blockstore import BlockStore
from .errors import HomeError

KEY_FILE = "key.pem"
DB_FILE = "schoolmesh.db"
BLOCKS_DIR = "blocks"

log = logging.getLogger("schoolmesh.home")


def default_home() -> Path:
    env = os.environ.get("SCHOOLMESH_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("schoolmesh"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Home:
    path: Path
    conn: sqlite3.Connection
    blocks: BlockStore
    passphrase: bytes | None = None
    _key: SchoolKey | None = field(default=None, repr=False)
    # where warnings about the home go (the CLI prints them as "warning: ..." on stderr)
    warn: Callable[[str], None] = field(default=log.warning, repr=False)

    @property
    def school_id(self) -> str:
        return db.get_setting(self.conn, "school_id") or ""

    @property
    def name(self) -> str:
        return db.get_setting(self.conn, "name") or ""

    @property
    def role(self) -> str:
        return db.get_setting(self.conn, "role") or "school"

    @property
    def feed(self) -> bytes:
        return bytes.fromhex(db.get_setting(self.conn, "feed") or "")

    def key(self) -> SchoolKey:
        """The private key, loaded (and decrypted) on first use only: reading needs no key."""
        if self._key is None:
            path = self.path / KEY_FILE
            try:
                key = load_key(path, self.passphrase)
            except BadKeyFile as exc:
                raise HomeError(str(exc)) from exc
            if key.school_id != self.school_id:
                raise HomeError(f"{path} does not belong to this home's school")
            if loose_permissions(path):
                self.warn(f"{path} can be read by other users of this computer; "
                          f"make it private: chmod 600 {path}")
            self._key = key
        return self._key

    def reopen(self) -> Home:
        """The same home with connections of its own (for another thread), sharing the key
        already unlocked here."""
        other = open_home(self.path, self.passphrase)
        other._key = self._key
        return other

    def close(self) -> None:
        self.blocks.close()
        self.conn.close()


OWN_HEAD_SETTING = "own_head"   # "unknown": restored or re-keyed, head not learnt yet


def init_home(path: Path, name: str, role: str, passphrase: bytes | None = None,
              language: str = "zh-CN", *, key: SchoolKey | None = None,
              fresh: bool = True) -> Home:
    """Create a new home; refuse one that exists and is not empty. All or nothing.

    ``key``: an existing school key (restored from a bare key backup). ``fresh``: the school
    never published, so its feed starts here with the profile entry; otherwise (a re-keyed
    school) the feed is empty and its head unknown until learnt from peers or a bundle."""
    if role not in records.ROLES:
        raise HomeError(f"role must be one of {', '.join(records.ROLES)}")
    key = key or SchoolKey.generate()

    def populate(conn: sqlite3.Connection) -> None:
        for k, v in (("school_id", key.school_id), ("name", name), ("role", role),
                     ("feed", key.public.raw.hex()), ("language", language)):
            db.set_setting(conn, k, v)
        if fresh:
            entry = records.sign_entry(key, seq=1, prev=None, time=now_ms(),
                                       kind=records.KIND_PROFILE,
                                       body={"name": name, "role": role})
            feeds.append(conn, entry)
        else:
            db.set_setting(conn, OWN_HEAD_SETTING, "unknown")
    return create_home(path, key, passphrase, populate)


def create_home(path: Path, key: SchoolKey, passphrase: bytes | None,
                populate: Callable[[sqlite3.Connection], None]) -> Home:
    """A new home holding ``key``, its database filled by ``populate`` (in one write
    transaction); built in a temporary folder and renamed into place, so a failure (a full
    disk) leaves nothing behind."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise HomeError(f"{path} already exists and is not empty; "
                        "refusing to touch an existing home")
    if passphrase is not None:
        try:
            check_new_passphrase(passphrase)
        except WeakPassphrase as exc:
            raise HomeError(str(exc)) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.init-{os.getpid()}"
    try:
        tmp.mkdir(mode=0o700)
        save_key(tmp / KEY_FILE, key, passphrase)
        store = BlockStore(tmp / BLOCKS_DIR)
        store.create()
        store.close()
        conn = db.connect(tmp / DB_FILE, create=True)
        try:
            with db.write(conn):
                populate(conn)
        finally:
            conn.close()
        if path.exists():
            path.rmdir()  # empty, checked above
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_home(path, passphrase)


def open_home(path: Path, passphrase: bytes | None = None) -> Home:
    path = Path(path)
    if not (path / DB_FILE).exists():
        raise HomeError(f"no schoolmesh home at {path} (create one with 'schoolmesh init')")
    conn = db.connect(path / DB_FILE)
    store = BlockStore(path / BLOCKS_DIR)
    return Home(path=path, conn=conn, blocks=store, passphrase=passphrase)
