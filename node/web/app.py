"""The Starlette app of the teacher web library: browsing, preview, streaming, download.

Pages that change anything (sign-in, publish, requests, feedback) live in :mod:`.teach`.
Every response carries the security headers of :class:`Frame`; file bytes are served from the
block store by :mod:`.stream` with HTTP Range support (specs/web.md).
"""

from __future__ import annotations

import mimetypes
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, \
    StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from crypto import cid_from_str
from node import catalog, gc, library, storage
from node.errors import NodeError, NotFound
from protocol import records, vocab
from protocol.errors import ProtocolError
from protocol.paths import portable_name

from . import auth, community, i18n, stream

HERE = Path(__file__).parent
SESSION_COOKIE = "sm_session"
LANG_COOKIE = "sm_lang"
PAGE_SIZE = 20
MAX_PAGE = 50                   # deeper pages are not useful to a teacher; keeps search cheap
MAX_QUERY_CHARS = 200
FACET_CACHE_SECONDS = 30.0      # subject / language / school lists on the search form
TEXT_PREVIEW_BYTES = 64 * 1024  # a text file's preview on the resource page
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
        self.sessions = auth.Sessions()
        self.limiter = auth.LoginLimiter()
        # scrypt takes 16 MiB and ~50 ms: a burst of sign-ins from the LAN queues here
        self.hash_limiter = trio.CapacityLimiter(HASH_THREADS)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(default=True), trim_blocks=True,
            lstrip_blocks=True)
        self.env.filters["when"] = lambda ms: time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
        self.env.filters["size"] = human_size
        self.env.filters["urlpath"] = lambda p: urllib.parse.quote(p, safe="/")
        self._facets: tuple[float, dict[str, Any]] | None = None

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

    def lang(self, request: Request) -> str:
        return i18n.choose(request.cookies.get(LANG_COOKIE),
                           request.headers.get("accept-language"))

    def render(self, request: Request, template: str, status: int = 200, **ctx: Any
               ) -> HTMLResponse:
        lang = self.lang(request)
        page = self.env.get_template(template).render(
            t=i18n.translator(lang), lang=lang, csrf=self.session(request).csrf,
            teacher=self.teacher(request), school=self.home.name, path=request.url.path,
            query=request.url.query, vocab=vocab,
            disk_low=storage.low_space(self.home.conn, self.home.path) is not None, **ctx)
        return HTMLResponse(page, status_code=status)

    def error(self, request: Request, status: int, key: str, **fmt: Any) -> HTMLResponse:
        message = i18n.translator(self.lang(request))(key).format(**fmt)
        return self.render(request, "error.html", status=status, message=message)

    def facet_lists(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._facets and now - self._facets[0] < FACET_CACHE_SECONDS:
            return self._facets[1]
        conn = self.home.conn
        lists = {
            "subjects": [v for (v,) in conn.execute(
                "SELECT value FROM facets WHERE facet = 'about' GROUP BY value "
                "ORDER BY count(*) DESC LIMIT 60")],
            "languages": [v for (v,) in conn.execute(
                "SELECT DISTINCT language FROM resources LIMIT 30")],
            "schools": [{"id": i, "name": n} for i, n in conn.execute(
                "SELECT school_id, name FROM feeds WHERE flagged IS NULL ORDER BY name "
                "LIMIT 200")],
        }
        self._facets = (now, lists)
        return lists


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
    if not records.is_resource_id(rid):
        return None
    try:
        return library.show(web.home, rid)
    except NotFound:
        return None


# -- browsing ------------------------------------------------------------------------------

def _choice(value: str | None, allowed: Any) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise ValueError(value)
    return value


async def community_page(request: Request) -> Response:
    """Read-only: the communities of this school, their schools, what is kept for them."""
    from node import community as ncommunity
    web: Web = request.app.state.web
    communities = []
    for c in ncommunity.list_communities(web.home):
        c["members"] = ncommunity.members(web.home, c["community_id"])["members"]
        communities.append(c)
    kept = ncommunity.pins(web.home)["totals"].get("community")
    return web.render(request, "community.html", communities=communities, kept=kept,
                      subscriptions=ncommunity.subscriptions(web.home))


async def search_page(request: Request) -> Response:
    web: Web = request.app.state.web
    p = request.query_params
    q = (p.get("q") or "").strip()
    try:
        if len(q) > MAX_QUERY_CHARS:
            raise ValueError("q")
        filters = {
            "subject": (p.get("subject") or "").strip()[:100] or None,
            "level": _choice(p.get("level"), vocab.LEVELS),
            "rtype": _choice(p.get("type"), vocab.RESOURCE_TYPES),
            "license": _choice(p.get("license"), vocab.LICENSES),
            "language": (p.get("language") or "").strip()[:35] or None,
            "school": (p.get("school") or "").strip()[:200] or None,
        }
        page = int(p.get("page") or 1)
        if not 1 <= page <= MAX_PAGE:
            raise ValueError("page")
    except ValueError:
        return web.error(request, 400, "bad_search")
    results = catalog.search(
        web.home.conn, q or None, subject=[filters["subject"]] if filters["subject"] else [],
        level=[filters["level"]] if filters["level"] else [], language=filters["language"],
        rtype=filters["rtype"], school=filters["school"], license=filters["license"],
        limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more = len(results) > PAGE_SIZE
    base = {k: v for k, v in p.items() if k != "page" and v}
    return web.render(request, "search.html", q=q, f=filters, results=results[:PAGE_SIZE],
                      page=page, more=more, lists=web.facet_lists(),
                      prev_url="?" + urllib.parse.urlencode({**base, "page": page - 1}),
                      next_url="?" + urllib.parse.urlencode({**base, "page": page + 1}))


def _preview_kind(ctype: str) -> str:
    if ctype.startswith("video/"):
        return "video"
    if ctype.startswith("audio/"):
        return "audio"
    if ctype in ("image/png", "image/jpeg", "image/gif", "image/webp"):
        return "image"
    if ctype == "application/pdf":
        return "pdf"
    if ctype in TEXT_TYPES:
        return "text"
    return "none"


async def resource_page(request: Request) -> Response:
    web: Web = request.app.state.web
    rid = request.path_params["rid"]
    res = resource_or_none(web, rid)
    if res is None:
        return web.error(request, 404, "no_resource")
    files = []
    for f in res["files"]:
        ctype = mimetypes.guess_type(f["path"])[0] or "application/octet-stream"
        kind = _preview_kind(ctype)
        item = {**f, "type": ctype, "preview": kind, "text": None}
        if kind == "text" and res["local"]:
            item["text"] = await trio.to_thread.run_sync(_text_preview, web, f)
        files.append(item)
    _, zip_renamed = stream.portable_entries([(f["path"], b"", 0) for f in res["files"]])
    return web.render(request, "resource.html", r=res, m=res["meta"], files=files,
                      zip_renamed=len(zip_renamed),
                      feedback=community.list_feedback(web.home, rid),
                      fulfils=community.fulfilled_requests(web.home, rid))


def _text_preview(web: Web, f: dict[str, Any]) -> str | None:
    try:
        data = b"".join(stream.iter_range(cid_from_str(f["cid"]), web.home.blocks.get, 0,
                                          min(f["size"], TEXT_PREVIEW_BYTES)))
    except (NotFound, ProtocolError, NodeError):
        return None
    return data.decode("utf-8", errors="replace")


def _file_entry(res: dict[str, Any], path: str) -> dict[str, Any] | None:
    for f in res["files"]:
        if f["path"] == path:  # only paths from the signed manifest: no file system lookup
            return f
    return None


def _disposition(kind: str, path: str) -> str:
    name = portable_name(path.rsplit("/", 1)[-1])  # saved on Windows/USB sticks too
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


async def file_bytes(request: Request) -> Response:
    web: Web = request.app.state.web
    res = resource_or_none(web, request.path_params["rid"])
    f = _file_entry(res, request.path_params["path"]) if res else None
    if f is None:
        return web.error(request, 404, "no_file")
    root, size = cid_from_str(f["cid"]), f["size"]
    if not web.home.blocks.has(root):
        return web.error(request, 404, "not_local")
    ctype = mimetypes.guess_type(f["path"])[0] or "application/octet-stream"
    download = request.query_params.get("download") == "1"
    # Only types a browser shows without running anything keep their type; everything else
    # (HTML, SVG, XML, scripts, archives, unknown) is bytes to save (specs/web.md §5).
    safe = ctype in INLINE_TYPES or ctype in TEXT_TYPES or ctype.startswith(("video/", "audio/"))
    inline = safe and not download
    if ctype in TEXT_TYPES:
        ctype = "text/plain; charset=utf-8"
    elif not safe:
        ctype = "application/octet-stream"
    headers = {
        "accept-ranges": "bytes",
        "content-disposition": _disposition("inline" if inline else "attachment", f["path"]),
        "content-security-policy": PDF_CSP if ctype == "application/pdf" else FILE_CSP,
        "etag": f'"{f["cid"]}"', "cache-control": "private, max-age=86400",
    }
    rng = None
    # If-Range is evaluated first: the client's copy is of another version, send it all
    if request.headers.get("if-range") in (None, headers["etag"]):
        try:
            rng = stream.parse_range(request.headers.get("range"), size)
        except stream.BadRange:
            return Response(status_code=416, headers={**headers, "content-length": "0",
                                                      "content-range": f"bytes */{size}"})
    start, end = rng if rng is not None else (0, size)
    headers["content-length"] = str(end - start)
    status = 200
    if rng is not None:
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=ctype)
    gen = stream.iter_range(root, web.home.blocks.get, start, end)
    return StreamingResponse(in_thread(gen), status_code=status, headers=headers,
                             media_type=ctype)


async def zip_download(request: Request) -> Response:
    web: Web = request.app.state.web
    res = resource_or_none(web, request.path_params["rid"])
    if res is None:
        return web.error(request, 404, "no_resource")
    if not res["local"]:
        return web.error(request, 404, "not_local")
    files, renamed = stream.portable_entries(
        [(f["path"], cid_from_str(f["cid"]), f["size"]) for f in res["files"]])
    note = (stream.RENAMED_NOTE, stream.renamed_note(renamed)) if renamed else None
    name = f"{res['resource_id']}-v{res['version']}"
    gc.touch(web.home.conn, cid_from_str(res["content_cid"]))   # newest in the cache
    gen = stream.iter_zip(files, web.home.blocks.get, prefix=name + "/", note=note)
    return StreamingResponse(in_thread(gen), media_type="application/zip", headers={
        "content-disposition": _disposition("attachment", name + ".zip")})


async def fetch_resource(request: Request) -> Response:
    from .teach import read_form
    web: Web = request.app.state.web
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    rid = request.path_params["rid"]
    if resource_or_none(web, rid) is None:
        return web.error(request, 404, "no_resource")
    try:
        started = await web.node.api_fetch(rid)
    except (NodeError, ProtocolError) as exc:
        return web.error(request, 400, "fetch_failed", error=str(exc))
    if request.headers.get("accept") == "application/json":
        return JSONResponse(started)
    return RedirectResponse(f"/r/{rid}", status_code=303)


async def transfers(request: Request) -> Response:
    web: Web = request.app.state.web
    items = await web.node.api_transfers()
    target = request.query_params.get("target")
    if target:
        items = [t for t in items if t["target"] == target]
    return JSONResponse(items, headers={"cache-control": "no-store"})


async def holders(request: Request) -> Response:
    """Schools known to hold a copy: this node if it has it, plus DHT providers of the root."""
    web: Web = request.app.state.web
    rid = request.path_params["rid"]
    r = resource_or_none(web, rid)
    if r is None:
        return JSONResponse({"error": "no such resource"}, status_code=404)
    node = web.node
    ids: list[str] = [node.home.school_id] if r["local"] else []
    routing = getattr(node, "routing", None)
    if routing is not None:
        from crypto import cid_from_str
        for info in await routing.find_providers(cid_from_str(r["content_cid"])):
            pid = info.peer_id.to_string()
            if pid not in ids:
                ids.append(pid)
    names = dict(node.home.conn.execute(
        f"SELECT school_id, name FROM feeds WHERE school_id IN ({','.join('?' * len(ids))})",
        ids).fetchall()) if ids else {}
    return JSONResponse([{"school_id": i, "school": names.get(i)} for i in ids],
                        headers={"cache-control": "no-store"})


async def set_language(request: Request) -> Response:
    code = request.path_params["code"]
    nxt = request.query_params.get("next") or "/"
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        nxt = "/"  # never redirect off this node
    resp = RedirectResponse(nxt, status_code=303)
    if code in i18n.LANGUAGES:
        resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, httponly=True, samesite="lax")
    return resp


async def not_found(request: Request, exc: Exception) -> Response:
    web: Web = request.app.state.web
    return web.error(request, 404, "not_found")


def make_app(node: Any, config: WebConfig) -> Starlette:
    from . import teach
    web = Web(node, config)
    routes = [
        Route("/", search_page),
        Route("/r/{rid}", resource_page),
        Route("/r/{rid}/files/{path:path}", file_bytes, methods=["GET", "HEAD"]),
        Route("/r/{rid}/zip", zip_download),
        Route("/r/{rid}/fetch", fetch_resource, methods=["POST"]),
        Route("/r/{rid}/feedback", teach.feedback, methods=["POST"]),
        Route("/api/transfers", transfers),
        Route("/api/holders/{rid}", holders),
        Route("/lang/{code}", set_language),
        Route("/login", teach.login, methods=["GET", "POST"]),
        Route("/logout", teach.logout, methods=["POST"]),
        Route("/publish", teach.publish, methods=["GET", "POST"]),
        Route("/requests", teach.requests_board, methods=["GET", "POST"]),
        Route("/community", community_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found},
                    middleware=[Middleware(Frame, sessions=web.sessions, config=config)])
    app.state.web = web
    return app

