"""Teacher accounts, browser sessions, CSRF tokens and sign-in throttling (specs/web.md §3).

Passwords are hashed with scrypt (memory-hard, standard library) into a versioned string
``scrypt$1$<n>$<r>$<p>$<salt b64>$<hash b64>`` so parameters can be raised later without
invalidating stored hashes.  Teachers' sessions are stored hashed in the database: a restart
signs nobody out; signing out, a password change or removing the teacher ends them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from node import db
from node.errors import NodeError
from node.home import now_ms

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1   # ~16 MiB of memory per hash
SALT_BYTES = 16
HASH_BYTES = 32
HASH_VERSION = "1"
MAX_PASSWORD_CHARS = 1024       # longer inputs are refused before hashing (no CPU bomb)
MIN_PASSWORD_CHARS = 8
TEACHER_NAME = re.compile(r"^[\w.\- ]{1,64}$")   # letters (any script), digits, . _ - space
ROLES = ("teacher", "operator")  # an operator is a teacher who also runs the node (web)

SESSION_TTL = 12 * 3600.0       # seconds a session lives without being used
TOUCH_INTERVAL = 60.0           # seconds between writes of a session's last use (idle clock)
MAX_SESSIONS = 10_000           # signed-in sessions; the least recently used are dropped
MAX_SESSIONS_PER_TEACHER = 20   # beyond this a teacher's own oldest session is dropped
# Sign-in throttling (specs/web.md §3): counted per (teacher name, client address) and per
# client address; past the free failures each further one doubles the delay.
FREE_FAILURES = 5               # wrong passwords for one name from one address, no delay
FREE_FAILURES_PER_ADDRESS = 20  # wrong sign-ins from one address over all names, no delay
FIRST_DELAY = 1.0               # seconds refused after the first failure past the free ones
MAX_DELAY = 900.0               # the delay stops doubling here (15 minutes)
FORGET_AFTER = 3600.0           # a counter is dropped this long after its last failure
MAX_TRACKED = 10_000            # counters kept; the least recently failed are dropped beyond


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise NodeError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} "
                        "characters")
    salt = salt or secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=HASH_BYTES)
    b64 = base64.b64encode
    return (f"scrypt${HASH_VERSION}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
            f"{b64(salt).decode()}${b64(digest).decode()}")


def verify_password(password: str, stored: str) -> bool:
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        scheme, version, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or version != HASH_VERSION:
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash to compare against when the account does not exist, so timing does not tell.
_DUMMY = hash_password("not-a-real-password", salt=bytes(SALT_BYTES))


def check_name(name: str) -> str:
    name = name.strip()
    if not TEACHER_NAME.match(name):
        raise NodeError("a teacher name has 1-64 letters, digits, spaces, '.', '_' or '-'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise NodeError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    return role


def add_teacher(conn: sqlite3.Connection, name: str, password: str, role: str = "teacher"
                ) -> dict[str, str]:
    name = check_name(name)
    check_role(role)
    stored = hash_password(password)
    with db.write(conn):
        if conn.execute("SELECT 1 FROM teachers WHERE name = ?", (name,)).fetchone():
            raise NodeError(f"teacher {name!r} already exists (remove it first)")
        conn.execute("INSERT INTO teachers(name, hash, created, role) VALUES (?, ?, ?, ?)",
                     (name, stored, now_ms(), role))
    return {"teacher": name, "role": role}


def set_role(conn: sqlite3.Connection, name: str, role: str) -> dict[str, str]:
    check_role(role)
    with db.write(conn):
        if not conn.execute("UPDATE teachers SET role = ? WHERE name = ?", (role, name)).rowcount:
            raise NodeError(f"no teacher {name!r}")
    return {"teacher": name, "role": role}


def role_of(conn: sqlite3.Connection, name: str) -> str | None:
    """The account's role, None if there is no such account."""
    row = conn.execute("SELECT role FROM teachers WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def remove_teacher(conn: sqlite3.Connection, name: str) -> dict[str, str]:
    with db.write(conn):
        n = conn.execute("DELETE FROM teachers WHERE name = ?", (name,)).rowcount
        drop_sessions_of(conn, name)
    if not n:
        raise NodeError(f"no teacher {name!r}")
    return {"removed": name}


def set_password(conn: sqlite3.Connection, name: str, password: str) -> dict[str, object]:
    """A new password; every session of the teacher ends in the same transaction."""
    stored = hash_password(password)
    with db.write(conn):
        if not conn.execute("UPDATE teachers SET hash = ? WHERE name = ?",
                            (stored, name)).rowcount:
            raise NodeError(f"no teacher {name!r}")
        ended = drop_sessions_of(conn, name)
    return {"teacher": name, "signed_out": ended}


def list_teachers(conn: sqlite3.Connection) -> list[dict[str, object]]:
    return [{"name": n, "role": r, "created": c} for n, r, c in
            conn.execute("SELECT name, role, created FROM teachers ORDER BY name")]


def authenticate(conn: sqlite3.Connection, name: str, password: str) -> bool:
    """True if the password is right; costs one scrypt whether or not the account exists."""
    row = conn.execute("SELECT hash FROM teachers WHERE name = ?", (name,)).fetchone()
    ok = verify_password(password, row[0] if row else _DUMMY)
    return ok and row is not None


def teacher_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM teachers WHERE name = ?", (name,)).fetchone() is not None


# -- sessions ----------------------------------------------------------------------------------

@dataclass
class Session:
    sid: str
    csrf: str
    teacher: str | None = None
    used: float = 0.0


_SID = re.compile(r"[A-Za-z0-9_-]{43}")   # secrets.token_urlsafe(32)


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _token_hash(sid: str) -> bytes:
    """What the database keeps of a session id: its SHA-256 (a copy of the database signs
    nobody in)."""
    return hashlib.sha256(sid.encode("ascii")).digest()


def _teacher_csrf(sid: str) -> str:
    """A signed-in session's CSRF token: derived from the id, so it survives restarts without
    being stored; the stored hash (of another input) does not reveal it."""
    return _b64(hashlib.sha256(b"csrf\0" + sid.encode("ascii")).digest())


@dataclass
class Sessions:
    """Signed-in teachers' sessions, stored hashed in the ``sessions`` table (a restart signs
    nobody out); anonymous visitors keep nothing anywhere.

    A visitor who is not signed in only has a random id in the cookie; the CSRF token of their
    forms is an HMAC of that id under a key of this process, so page views from the LAN,
    however many, never add, evict or touch a teacher's session.  Only a right password makes
    a session, and one teacher holds at most MAX_SESSIONS_PER_TEACHER of them.  ``clock`` is
    the wall clock (seconds since the epoch): expiry times outlive the process.
    """
    conn: sqlite3.Connection
    clock: Callable[[], float] = time.time
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def new(self, teacher: str) -> Session:
        """A fresh session for a teacher who has just signed in."""
        sid = secrets.token_urlsafe(32)
        now = self._now_ms()
        with db.write(self.conn) as conn:
            conn.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            conn.execute(  # the teacher's least recently used beyond the cap
                "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
                "WHERE teacher = ? ORDER BY used DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (teacher, MAX_SESSIONS_PER_TEACHER - 1))
            conn.execute("INSERT INTO sessions(token_hash, teacher, created, used, expires) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (_token_hash(sid), teacher, now, now, now + int(SESSION_TTL * 1000)))
            conn.execute(
                "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
                "ORDER BY used DESC, rowid DESC LIMIT -1 OFFSET ?)", (MAX_SESSIONS,))
        return Session(sid, _teacher_csrf(sid), teacher, now / 1000)

    def new_anonymous(self) -> Session:
        """A visitor's session with a new random id (nothing is stored)."""
        s = self.anonymous(secrets.token_urlsafe(32))
        assert s is not None
        return s

    def anonymous(self, sid: str) -> Session | None:
        """The (unstored) session of a visitor whose cookie holds ``sid``; None if malformed."""
        if not _SID.fullmatch(sid):
            return None
        mac = hmac.new(self._key, b"anonymous\0" + sid.encode(), hashlib.sha256).digest()
        return Session(sid, _b64(mac))

    def get(self, sid: str | None) -> Session | None:
        """The teacher's session of this id, if it is signed in and not idle too long.  Use
        is written back at most every TOUCH_INTERVAL (not a write per page view)."""
        if not sid or not _SID.fullmatch(sid):
            return None
        h = _token_hash(sid)
        row = self.conn.execute("SELECT teacher, used, expires FROM sessions "
                                "WHERE token_hash = ?", (h,)).fetchone()
        if row is None:
            return None
        teacher, used, expires = row
        now = self._now_ms()
        if now >= expires:
            with db.write(self.conn) as conn:
                conn.execute("DELETE FROM sessions WHERE token_hash = ?", (h,))
            return None
        if now - used >= TOUCH_INTERVAL * 1000:
            with db.write(self.conn) as conn:
                conn.execute("UPDATE sessions SET used = ?, expires = ? WHERE token_hash = ?",
                             (now, now + int(SESSION_TTL * 1000), h))
            used = now
        return Session(sid, _teacher_csrf(sid), teacher, used / 1000)

    def drop(self, sid: str) -> None:
        if _SID.fullmatch(sid):
            with db.write(self.conn) as conn:
                conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(sid),))

    def drop_teacher(self, name: str) -> None:
        with db.write(self.conn) as conn:
            drop_sessions_of(conn, name)

    def __len__(self) -> int:
        return self.conn.execute("SELECT count(*) FROM sessions WHERE expires > ?",
                                 (self._now_ms(),)).fetchone()[0]


def drop_sessions_of(conn: sqlite3.Connection, name: str) -> int:
    """Sign ``name`` out everywhere (inside the caller's write transaction)."""
    return conn.execute("DELETE FROM sessions WHERE teacher = ?", (name,)).rowcount


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return bool(session and token and hmac.compare_digest(session.csrf.encode(),
                                                            token.encode()))


@dataclass
class _Failures:
    count: int
    last: float


def _delay(count: int, free: int) -> float:
    """Seconds to refuse sign-ins after ``count`` failures of which ``free`` cost nothing."""
    if count < free:
        return 0.0
    return min(FIRST_DELAY * 2.0 ** min(count - free, 32), MAX_DELAY)


@dataclass
class LoginLimiter:
    """Failed sign-ins per (account, client address) and per client address, growing delays.

    Every key holds the address the connection comes from (never a header), so wrong passwords
    typed on one machine never hold back the same teacher on another.  During a delay attempts
    are refused at once, without checking the password and without counting; nothing waits on
    the server.
    """
    clock: Callable[[], float] = time.monotonic
    _fails: OrderedDict[tuple[str, ...], _Failures] = field(default_factory=OrderedDict)

    @staticmethod
    def _keys(ip: str, account: str) -> tuple[tuple[tuple[str, ...], int], ...]:
        return ((("account", account.casefold(), ip), FREE_FAILURES),
                (("address", ip), FREE_FAILURES_PER_ADDRESS))

    def retry_after(self, ip: str, account: str) -> float:
        """0 if a sign-in attempt may proceed, else seconds until it may."""
        now = self.clock()
        wait = 0.0
        for key, free in self._keys(ip, account):
            f = self._fails.get(key)
            if f is None:
                continue
            if now - f.last > FORGET_AFTER:
                del self._fails[key]
                continue
            wait = max(wait, f.last + _delay(f.count, free) - now)
        return wait

    def failed(self, ip: str, account: str) -> None:
        now = self.clock()
        for key, _ in self._keys(ip, account):
            f = self._fails.pop(key, None)
            if f is None or now - f.last > FORGET_AFTER:
                f = _Failures(0, now)
            f.count += 1
            f.last = now
            self._fails[key] = f  # the most recent last
        while len(self._fails) > MAX_TRACKED:  # bounded memory under a flood of names
            self._fails.popitem(last=False)

    def succeeded(self, ip: str, account: str) -> None:
        self._fails.pop(("account", account.casefold(), ip), None)
