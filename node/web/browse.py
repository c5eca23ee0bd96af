"""Reading the library: search, resource pages, previews, file bytes with HTTP Range (served
from the block store by :mod:`.stream`), zip downloads, the community page (specs/web.md).
"""

from __future__ import annotations

import mimetypes
import urllib.parse
from pathlib import PurePosixPath
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import (
    FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse,
)

from crypto import cid_from_str
from node import board, catalog, gc, oversight, teachers
from node.errors import NodeError, NotFound
from protocol import vocab
from protocol.errors import ProtocolError
from protocol.paths import portable_name

from . import i18n, preview, stream
from .drafts import tool_file
from .pages import (
    FILE_CSP, INLINE_TYPES, LANG_COOKIE, MAX_PAGE, MAX_QUERY_CHARS, PAGE_SIZE, PDF_CSP,
    TEXT_PREVIEW_BYTES, TEXT_TYPES, Web, in_thread, resource_or_none,
)

MAX_WHERE_URLS = 4   # addresses on the printable page (a computer with many interfaces)


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


async def where_page(request: Request) -> Response:
    """Printable: the addresses of this library in large type, each with a QR code."""
    from markupsafe import Markup

    from . import qr
    web: Web = request.app.state.web
    urls = web.node.teacher_urls() or [str(request.base_url)]
    codes = [(u, Markup(qr.svg(u))) for u in urls[:MAX_WHERE_URLS]]
    return web.render(request, "where.html", codes=codes)


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
            "grade": vocab.parse_grade(p["grade"]) if (p.get("grade") or "").strip() else None,
            "volume": _choice(p.get("volume"), vocab.VOLUMES),
            "edition": (p.get("edition") or "").strip()[:100] or None,
            "ai": p.get("ai") == "1",
        }
        page = int(p.get("page") or 1)
        if not 1 <= page <= MAX_PAGE:
            raise ValueError("page")
    except (ValueError, ProtocolError):
        return web.error(request, 400, "bad_search")
    results = catalog.search(
        web.home.conn, q or None, subject=[filters["subject"]] if filters["subject"] else [],
        level=[filters["level"]] if filters["level"] else [], language=filters["language"],
        rtype=filters["rtype"], school=filters["school"], license=filters["license"],
        grade=filters["grade"], volume=filters["volume"], edition=filters["edition"],
        ai_assisted=filters["ai"], limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
        hide=oversight.hidden_from_me(web.home))
    more = len(results) > PAGE_SIZE
    base = {k: v for k, v in p.items() if k != "page" and v}
    from node import courses   # courses matching the words appear above the resources
    course_hits = courses.search(web.home.conn, q, limit=5) if q and page == 1 else []
    return web.render(request, "search.html", q=q, f=filters, results=results[:PAGE_SIZE],
                      courses=course_hits,
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
        h = oversight.hidden(web.home).get(rid)
        if h is not None:
            return web.error(request, 404, "hidden_resource", reason=h.reason)
        return web.error(request, 404, "no_resource")
    files = []
    for f in res["files"]:
        ctype = mimetypes.guess_type(f["path"])[0] or "application/octet-stream"
        kind = _preview_kind(ctype)
        item = {**f, "type": ctype, "preview": kind, "text": None,
                "tools": tool_file(f["path"], f["size"]), "view": preview.kind(f["path"]),
                "convert": preview.kind(f["path"]) == "unplayable"
                and preview.available(f["path"])}
        if kind == "text" and res["local"]:
            item["text"] = await trio.to_thread.run_sync(_text_preview, web, f)
        files.append(item)
    _, zip_renamed = stream.portable_entries([(f["path"], b"", 0) for f in res["files"]])
    return web.render(request, "resource.html", r=res, m=res["meta"], files=files,
                      own_school_id=web.home.school_id, cur=catalog.curriculum(res["meta"]),
                      mine=res["school_id"] == web.home.school_id,
                      zip_renamed=len(zip_renamed), signed_by=_signed_by(web, rid),
                      feedback=board.list_feedback(web.home, rid),
                      copies=oversight.holders_of(web.home, rid),
                      moderated=oversight.hidden(web.home).get(rid),
                      fulfils=board.fulfilled_requests(web.home, rid))


def _signed_by(web: Web, rid: str) -> dict[str, str] | None:
    """The teacher who signed the resource's first version (specs/teachers.md), if one did."""
    row = web.home.conn.execute(
        "SELECT s.teacher FROM resources r JOIN teacher_signatures s ON s.feed = r.feed"
        " AND s.seq = r.first_seq WHERE r.resource_id = ?", (rid,)).fetchone()
    if row is None:
        return None
    return {"key": "t" + row[0].hex(), "name": teachers.name_of(web.home.conn, row[0]) or ""}


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


def _local_file(web: Web, request: Request) -> tuple[Any, Any, Response | None]:
    res = resource_or_none(web, request.path_params["rid"])
    f = _file_entry(res, request.path_params["path"]) if res else None
    if f is None:
        return res, f, web.error(request, 404, "no_file")
    if not web.home.blocks.has(cid_from_str(f["cid"])):
        return res, f, web.error(request, 404, "not_local")
    return res, f, None


async def view_page(request: Request) -> Response:
    """A file's preview page: its pages as images (Office, PDF), made in the background."""
    web: Web = request.app.state.web
    res, f, refused = _local_file(web, request)
    if refused is not None:
        return refused
    what = preview.kind(f["path"])
    if what is None:
        return RedirectResponse(f"/r/{res['resource_id']}/files/"
                                f"{urllib.parse.quote(f['path'])}", status_code=303)
    st: dict[str, Any] = {"state": "unplayable"}
    if what == "pages" and not preview.available(f["path"]):
        st = {"state": "unavailable"}
    elif preview.available(f["path"]):
            root, size = cid_from_str(f["cid"]), f["size"]
            st = web.previews.request(f["cid"], f["path"], lambda: stream.iter_range(
                root, web.home.blocks.get, 0, size))
    resp = web.render(request, "preview.html", r=res, m=res["meta"], f=f, st=st,
                      ext=PurePosixPath(f["path"]).suffix.lower())
    if st["state"] in ("pending", "busy"):
        resp.headers["refresh"] = "3"
    return resp


async def converted_video(request: Request) -> Response:
    """The MP4 made for viewing a video browsers cannot play (Range as any file)."""
    web: Web = request.app.state.web
    res, f, refused = _local_file(web, request)
    if refused is not None:
        return refused
    p = web.previews.video_file(f["cid"])
    if p is None:
        return web.error(request, 404, "no_file")
    return FileResponse(p, media_type="video/mp4", headers={
        "cache-control": "private, max-age=86400", "content-security-policy": FILE_CSP})


async def page_image(request: Request) -> Response:
    """One page of a file's preview (PNG), once made."""
    web: Web = request.app.state.web
    res, f, refused = _local_file(web, request)
    if refused is not None:
        return refused
    p = web.previews.page_file(f["cid"], request.path_params["n"])
    if p is None:
        return web.error(request, 404, "no_file")
    return FileResponse(p, media_type="image/png", headers={
        "cache-control": "private, max-age=86400", "content-security-policy": FILE_CSP})


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
    names = catalog.school_names(node.home.conn, ids)
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
