"""The page framework of the teacher web library: configuration, sessions per request, the
security headers every response carries (:class:`Frame`), and :class:`Web`, what every route
handler shares (the node, templates, sessions, caches).  Route handlers live in
:mod:`.browse` (reading) and :mod:`.teach` (changing); :mod:`.app` is the route table.
"""

from __future__ import annotations

import mimetypes
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import trio
from starlette.requests import Request
from starlette.responses import HTMLResponse

from node import catalog, db, library, storage
from node.errors import NotFound
from protocol import records, vocab

from . import auth, i18n, preview, staging, usb

HERE = Path(__file__).parent
SESSION_COOKIE = "sm_session"
LANG_COOKIE = "sm_lang"
PAGE_SIZE = 20
MAX_PAGE = 50                   # deeper pages are not useful to a teacher; keeps search cheap
MAX_QUERY_CHARS = 200
FACET_CACHE_SECONDS = 30.0      # subject / language / school lists on the search form
TEXT_PREVIEW_BYTES = 64 * 1024  # a text file's preview on the resource page
PREVIEWS_DIR = "previews"       # derived page images (node/web/preview.py)
DRAFTS_DIR = "web-drafts"      # under the node's home (node/web/staging.py)
UPLOAD_LIMIT_SETTING = "web_upload_limit"   # bytes; set on the operator's storage page
MAX_ONCE = 10_000               # once-tokens remembered (node/web/pages.py OnceTokens)
HASH_THREADS = 2                # password hashes computed at once (scrypt: 16 MiB each)
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'self'; "
       "frame-ancestors 'self'; form-action 'self'; base-uri 'none'")
# Served files are author content: never scripts in our origin.  PDF needs the browser viewer
# (a sandboxed document may not use it), so it gets a plain restrictive policy instead.
FILE_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
PDF_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; object-src 'self'"
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
                "text/plain"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/csv", "text/x-python"}
for _ext, _type in ((".md", "text/markdown"), (".webm", "video/webm"), (".mp4", "video/mp4"),
                    (".m4a", "audio/mp4"), (".ogg", "audio/ogg"), (".webp", "image/webp")):
    mimetypes.add_type(_type, _ext)


@dataclass
class WebConfig:
    upload_dir: Path
    upload_limit: int = 2 * 1024**3        # bytes per publish request (all files together)
    secure_cookies: bool = False           # set when served behind HTTPS

    @classmethod
    def for_home(cls, home: Path, **kw: Any) -> WebConfig:
        return cls(upload_dir=Path(home) / "web-uploads", **kw)


class OnceTokens:
    """Forms that sign an entry (a request, feedback, a withdrawal) carry a random ``once``
    token: the same form sent again (a double click, a reload) gets the first answer's
    redirect instead of a second entry.  Kept in memory, the newest :data:`MAX_ONCE`."""

    def __init__(self) -> None:
        self._done: OrderedDict[str, str | None] = OrderedDict()

    def claim(self, token: str | None) -> tuple[bool, str | None]:
        """``(True, None)``: go ahead (the token is now taken); ``(False, location)``: sent
        before, answer with ``location`` (None while the first is still being served)."""
        if not staging.valid_token(token):
            return True, None          # a form without a token: no protection, still served
        if token in self._done:
            return False, self._done[token]
        self._done[token] = None
        while len(self._done) > MAX_ONCE:
            self._done.popitem(last=False)
        return True, None

    def finish(self, token: str | None, location: str | None) -> None:
        """The first answer was ``location``; None: it failed, the form may be sent again."""
        if staging.valid_token(token):
            if location is None:
                self._done.pop(token, None)  # type: ignore[arg-type]
            else:
                self._done[token] = location  # type: ignore[index]


class SessionHolder:
    """The request's session: a teacher's (stored) or an anonymous visitor's (never stored).

    An anonymous visitor without a valid cookie gets a new random id only when a page needs a
    CSRF token (:meth:`get`)."""

    def __init__(self, sessions: auth.Sessions, sid: str | None) -> None:
        self.sessions = sessions
        self.current = sessions.get(sid) or (sessions.anonymous(sid) if sid else None)
        self.dirty = False

    def get(self) -> auth.Session:
        if self.current is None:
            self.current = self.sessions.new_anonymous()
            self.dirty = True
        return self.current

    def replace(self, teacher: str | None) -> auth.Session:
        """A new session id at every change of privilege (no session fixation)."""
        if self.current is not None:
            self.sessions.drop(self.current.sid)
        self.current = self.sessions.new(teacher) if teacher else self.sessions.new_anonymous()
        self.dirty = True
        return self.current


class Frame:
    """ASGI middleware: session lookup, session cookie, security headers on every response."""

    def __init__(self, app: Any, sessions: auth.Sessions, config: WebConfig) -> None:
        self.app, self.sessions, self.config = app, sessions, config

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sid = None
        for k, v in scope["headers"]:
            if k == b"cookie":
                for part in v.decode("latin-1").split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == SESSION_COOKIE:
                        sid = value
        holder = SessionHolder(self.sessions, sid)
        scope.setdefault("state", {})["session"] = holder

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                for k, v in ((b"content-security-policy", CSP.encode()),
                             (b"x-content-type-options", b"nosniff"),
                             (b"referrer-policy", b"same-origin"),
                             (b"x-frame-options", b"SAMEORIGIN"),
                             (b"cross-origin-opener-policy", b"same-origin")):
                    if k not in have:
                        headers.append((k, v))
                if holder.dirty and holder.current is not None:
                    s = holder.current
                    site = "Strict" if s.teacher else "Lax"
                    cookie = (f"{SESSION_COOKIE}={s.sid}; Path=/; HttpOnly; SameSite={site}"
                              f"{'; Secure' if self.config.secure_cookies else ''}")
                    headers.append((b"set-cookie", cookie.encode()))
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- helpers shared with .teach ------------------------------------------------------------

class Web:
    """What the route handlers share: the node, templates, sessions, limits, caches."""

    def __init__(self, node: Any, config: WebConfig) -> None:
        self.node = node
        self.config = config
        self.sessions = auth.Sessions(node.home.conn)
        self.limiter = auth.LoginLimiter()
        # scrypt takes 16 MiB and ~50 ms: a burst of sign-ins from the LAN queues here
        self.hash_limiter = trio.CapacityLimiter(HASH_THREADS)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(default=True), trim_blocks=True,
            lstrip_blocks=True)
        self.env.filters["when"] = lambda ms: time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
        self.env.filters["size"] = human_size
        self.env.filters["day"] = day
        self.env.filters["urlpath"] = lambda p: urllib.parse.quote(p, safe="/")
        self._facets: tuple[float, dict[str, Any]] | None = None
        self.drafts = staging.Drafts(config.upload_dir.parent / DRAFTS_DIR)
        self.previews = preview.Previews(config.upload_dir.parent / PREVIEWS_DIR)
        self.once = OnceTokens()
        self._draft_locks: dict[str, trio.Lock] = {}
        # signed-in teachers' unsealed keys, by session id: in memory only (specs/teachers.md
        # §5); after a restart a teacher with an identity signs in again before writing
        self.teacher_keys: dict[str, Any] = {}
        self.jobs = usb.Jobs()        # served by the web server's nursery (server.py)

    @asynccontextmanager
    async def draft_lock(self, token: str) -> AsyncIterator[None]:
        """One request at a time per draft: a second click waits, then finds it published."""
        lock = self._draft_locks.setdefault(token, trio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._draft_locks.pop(token, None)

    def upload_limit(self) -> int:
        """Bytes one form may upload: the operator's setting, else the configured default."""
        value = db.get_setting(self.home.conn, UPLOAD_LIMIT_SETTING)
        return int(value) if value else self.config.upload_limit

    @property
    def home(self) -> Any:
        return self.node.home

    def session(self, request: Request) -> auth.Session:
        return request.state.session.get()

    def teacher(self, request: Request) -> str | None:
        s = request.state.session.current
        if s is None or s.teacher is None:
            return None
        if not auth.teacher_exists(self.home.conn, s.teacher):  # removed since sign-in
            self.sessions.drop(s.sid)
            request.state.session.current = None
            return None
        return s.teacher

    def signer(self, request: Request) -> Any:
        """The signed-in teacher's unsealed key, None if not signed in or no key in memory."""
        s = request.state.session.current
        return self.teacher_keys.get(s.sid) if s is not None and s.teacher else None

    def operator(self, request: Request) -> str | None:
        """The signed-in account if its role is operator (read at every request: a change
        of role counts at once)."""
        name = self.teacher(request)
        if name is None or auth.role_of(self.home.conn, name) != "operator":
            return None
        return name

    def lang(self, request: Request) -> str:
        return i18n.choose(request.cookies.get(LANG_COOKIE),
                           request.headers.get("accept-language"))

    def render(self, request: Request, template: str, status: int = 200, **ctx: Any
               ) -> HTMLResponse:
        from node import oversight
        lang = self.lang(request)
        teacher = self.teacher(request)
        page = self.env.get_template(template).render(
            t=i18n.translator(lang), words=i18n.Words(lang), lang=lang,
            csrf=self.session(request).csrf, teacher=teacher, operator=self.operator(request),
            unread=oversight.unread(self.home, teacher) if teacher else 0,
            school=self.home.name, path=request.url.path,
            query=request.url.query, vocab=vocab,
            disk_low=storage.low_space(self.home.conn, self.home.path) is not None,
            new_token=staging.new_token, **ctx)
        return HTMLResponse(page, status_code=status)

    def error(self, request: Request, status: int, key: str, **fmt: Any) -> HTMLResponse:
        message = i18n.translator(self.lang(request))(key).format(**fmt)
        return self.render(request, "error.html", status=status, message=message)

    def facet_lists(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._facets and now - self._facets[0] < FACET_CACHE_SECONDS:
            return self._facets[1]
        lists = catalog.facet_lists(self.home.conn)
        self._facets = (now, lists)
        return lists


def day(ms: int | None, *, end: bool = False) -> str:
    if ms is None:
        return "…"
    d = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if end:
        d -= timedelta(milliseconds=1)
    return d.strftime("%Y-%m-%d")


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


async def in_thread(gen: Iterator[bytes]) -> Any:
    """Drive a blocking generator (block reads, hashing) in worker threads, chunk by chunk."""
    try:
        while True:
            chunk = await trio.to_thread.run_sync(next, gen, None)
            if chunk is None:
                return
            if chunk:
                yield chunk
    finally:
        gen.close()


def resource_or_none(web: Web, rid: str) -> dict[str, Any] | None:
    """The resource, or None if there is none or a community of ours hid it."""
    from node import oversight
    if not records.is_resource_id(rid) or rid in oversight.hidden_from_me(web.home):
        return None
    try:
        return library.show(web.home, rid)
    except NotFound:
        return None
