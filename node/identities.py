"""Portable teacher identities on a node (specs/teachers.md §3, §5).

A teacher's Ed25519 key is made here, sealed under the teacher's web password (scrypt +
AES-256-GCM, the key file scheme) and stored with the account; the school certifies it with a
``teacher.certificate`` entry of its feed.  When a teacher signs in, the web library unseals
the key and holds it in memory for the session's teacher; :func:`signing_as` makes the node's
own entries carry that teacher's ``teacher.signature`` (library._append_own).  A teacher who moves takes the key in
an export file (sealed under a password) to the next school, which certifies the same key.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgpack

from crypto import BadKeyFile, PublicKey, SchoolKey, WrongPassphrase, seal, unseal
from protocol import teachers as tproto
from protocol.errors import LocalProtocolError

from . import db, library, teachers
from .teachers import signing_as  # noqa: F401  (part of this module's interface)
from .errors import NodeError
from .home import Home
from .web import auth

KEY_MAGIC = b"SCHOOLMESH TEACHER KEY 1\n"      # a sealed key in the database
EXPORT_MAGIC = b"SCHOOLMESH TEACHER IDENTITY 1\n"   # an export file
MAX_EXPORT_BYTES = 64 * 1024

def key_id(public: bytes) -> str:
    """How a teacher key is written for people: ``t`` + 64 hex digits."""
    return "t" + public.hex()


def parse_key_id(text: str) -> bytes:
    t = text.strip().lower()
    if len(t) != 65 or t[0] != "t":
        raise NodeError(f"{text!r} is not a teacher key (t followed by 64 hex digits)")
    try:
        raw = bytes.fromhex(t[1:])
        PublicKey(raw)
    except ValueError:
        raise NodeError(f"{text!r} is not a teacher key (t followed by 64 hex digits)") from None
    return raw


def _subjects(subjects: list[str]) -> list[str]:
    subjects = [s.strip() for s in subjects if s.strip()]
    try:
        return tproto.check_subjects(list(dict.fromkeys(subjects)))
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None


def _certify(home: Home, name: str, public: bytes, subjects: list[str]) -> None:
    library.append_entry(home, tproto.KIND_TEACHER_CERTIFICATE,
                         {"teacher": public, "name": name, "subjects": subjects,
                          "school": home.name or home.school_id})


def _store(conn: sqlite3.Connection, name: str, key: SchoolKey, password: str) -> None:
    sealed = seal(password.encode("utf-8"), key.seed, KEY_MAGIC)
    with db.write(conn):
        if conn.execute("SELECT 1 FROM teacher_keys WHERE public = ?",
                        (key.public.raw,)).fetchone():
            raise NodeError("this teacher identity already belongs to an account here")
        conn.execute("INSERT OR REPLACE INTO teacher_keys (name, public, sealed) VALUES (?,?,?)",
                     (name, key.public.raw, sealed))


def add(home: Home, name: str, password: str, subjects: list[str], role: str = "teacher",
        key: SchoolKey | None = None) -> dict[str, Any]:
    """A web account with a teacher identity: the account, its sealed key and the school's
    certificate.  ``key``: an identity brought from another school (import)."""
    subjects = _subjects(subjects)
    home.key()  # the school must be able to sign before the account is made
    d = auth.add_teacher(home.conn, name, password, role)
    key = key or SchoolKey.generate()
    try:
        _store(home.conn, d["teacher"], key, password)
        _certify(home, d["teacher"], key.public.raw, subjects)
    except BaseException:
        auth.remove_teacher(home.conn, d["teacher"])
        raise
    return {**d, "key": key_id(key.public.raw), "subjects": subjects}


def give_identity(home: Home, name: str, password: str, subjects: list[str]) -> dict[str, Any]:
    """A key and certificate for an account made before teacher identities existed."""
    subjects = _subjects(subjects)
    if not auth.authenticate(home.conn, name, password):
        raise NodeError("wrong password")
    if public_of(home.conn, name) is not None:
        raise NodeError(f"{name} already has a teacher identity")
    key = SchoolKey.generate()
    _store(home.conn, name, key, password)
    _certify(home, name, key.public.raw, subjects)
    return {"teacher": name, "key": key_id(key.public.raw), "subjects": subjects}


def public_of(conn: sqlite3.Connection, name: str) -> bytes | None:
    row = conn.execute("SELECT public FROM teacher_keys WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def account_of(conn: sqlite3.Connection, public: bytes) -> str | None:
    row = conn.execute("SELECT name FROM teacher_keys WHERE public = ?", (public,)).fetchone()
    return row[0] if row else None


def unlock(conn: sqlite3.Connection, name: str, password: str) -> SchoolKey | None:
    """The teacher's key, unsealed with their password; None if the account has none.
    NodeError on a wrong password."""
    row = conn.execute("SELECT sealed FROM teacher_keys WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    try:
        return SchoolKey.from_seed(unseal(row[0], password.encode("utf-8"), KEY_MAGIC))
    except WrongPassphrase:
        raise NodeError("wrong password") from None
    except BadKeyFile as exc:
        raise NodeError(f"the stored teacher key is damaged: {exc}") from None


def change_password(home: Home, name: str, old: str, new: str) -> dict[str, Any]:
    """A new password; the teacher's key is re-sealed under it in the same transaction."""
    key = unlock(home.conn, name, old)
    if key is None:
        return auth.set_password(home.conn, name, new)
    sealed = seal(new.encode("utf-8"), key.seed, KEY_MAGIC)
    stored = auth.hash_password(new)
    with db.write(home.conn) as conn:
        conn.execute("UPDATE teachers SET hash = ? WHERE name = ?", (stored, name))
        conn.execute("UPDATE teacher_keys SET sealed = ? WHERE name = ?", (sealed, name))
        ended = auth.drop_sessions_of(conn, name)
    return {"teacher": name, "signed_out": ended, "key": key_id(key.public.raw)}


def reset(home: Home, name: str, new: str) -> dict[str, Any]:
    """A new password set without the old one (an operator's reset): the old key cannot be
    unsealed any more, so the school revokes its certificate and certifies a new key."""
    old = public_of(home.conn, name)
    if old is None:
        return auth.set_password(home.conn, name, new)
    subjects: list[str] = []
    row = home.conn.execute("SELECT subjects FROM teacher_certs WHERE feed = ? AND teacher = ?",
                            (home.feed, old)).fetchone()
    if row:
        import json
        subjects = json.loads(row[0])
    if teachers.certified(home.conn, home.feed, old):
        library.append_entry(home, tproto.KIND_TEACHER_REVOCATION,
                             {"teacher": old, "reason": "password reset"})
    d = auth.set_password(home.conn, name, new)
    key = SchoolKey.generate()
    with db.write(home.conn) as conn:
        conn.execute("DELETE FROM teacher_keys WHERE name = ?", (name,))
    _store(home.conn, name, key, new)
    _certify(home, name, key.public.raw, subjects)
    return {**d, "key": key_id(key.public.raw), "new_identity": True}


def remove(home: Home, name: str) -> dict[str, Any]:
    """Delete an account; the school first revokes its teacher's certificate (the teacher may
    have taken the key elsewhere with an export file: that school's certificate stands)."""
    public = public_of(home.conn, name)
    if public is not None and teachers.certified(home.conn, home.feed, public):
        library.append_entry(home, tproto.KIND_TEACHER_REVOCATION,
                             {"teacher": public, "reason": "account removed"})
    return auth.remove_teacher(home.conn, name)


def revoke(home: Home, name: str, reason: str | None = None) -> dict[str, Any]:
    """The school stops vouching for the teacher (their earlier signatures stay valid)."""
    public = public_of(home.conn, name)
    if public is None:
        raise NodeError(f"{name} has no teacher identity at this school")
    if not teachers.certified(home.conn, home.feed, public):
        raise NodeError(f"{name} is already revoked")
    body: dict[str, Any] = {"teacher": public}
    if reason:
        body["reason"] = reason
    library.append_entry(home, tproto.KIND_TEACHER_REVOCATION, body)
    return {"teacher": name, "key": key_id(public), "revoked": True}


def export(home: Home, name: str, password: str, out: Path) -> dict[str, Any]:
    """Write the teacher's identity to ``out``, sealed under their password (atomic)."""
    key = unlock(home.conn, name, password)
    if key is None:
        raise NodeError(f"{name} has no teacher identity at this school")
    row = home.conn.execute("SELECT subjects FROM teacher_certs WHERE feed = ? AND teacher = ?",
                            (home.feed, key.public.raw)).fetchone()
    import json
    plain = msgpack.packb({"seed": key.seed, "name": name,
                           "subjects": json.loads(row[0]) if row else []})
    data = seal(password.encode("utf-8"), plain, EXPORT_MAGIC)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            import os
            os.fsync(f.fileno())
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NodeError(f"cannot write {out}: {exc.strerror}") from None
    return {"teacher": name, "key": key_id(key.public.raw), "file": str(out)}


def read_export(path: Path, password: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_EXPORT_BYTES + 1)
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_EXPORT_BYTES or not data.startswith(EXPORT_MAGIC):
        raise NodeError(f"{path} is not a schoolmesh teacher identity file")
    try:
        m = msgpack.unpackb(unseal(data, password.encode("utf-8"), EXPORT_MAGIC))
        key = SchoolKey.from_seed(m["seed"])
        name, subjects = m["name"], m["subjects"]
    except WrongPassphrase:
        raise NodeError("wrong password for this teacher identity file") from None
    except (BadKeyFile, KeyError, TypeError, ValueError, msgpack.UnpackException) as exc:
        raise NodeError(f"{path} is damaged: {exc}") from None
    return {"key": key, "name": name, "subjects": subjects}


def import_(home: Home, path: Path, password: str, name: str | None,
            subjects: list[str] | None, role: str = "teacher") -> dict[str, Any]:
    """An account at this school for a teacher who brings their identity: same key, this
    school's certificate; the password of the file becomes the account's password."""
    d = read_export(path, password)
    return add(home, name or d["name"], password,
               subjects if subjects is not None else d["subjects"], role, key=d["key"])
