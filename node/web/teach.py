"""Pages that change something: sign-in, publish/adapt, the requests board, feedback.

Every POST carries the session's CSRF token and, when the browser sends one, an Origin equal to
this node's; writing pages also need a signed-in teacher (specs/web.md §3).
"""

from __future__ import annotations

import math
import urllib.parse
from contextlib import aclosing
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node import board, library, tools
from node.errors import NodeError
from protocol import records, vocab
from protocol.errors import ProtocolError

from . import auth
from .pages import Web, resource_or_none
from .upload import UploadError, publish_upload

MAX_FORM_BYTES = 64 * 1024      # an url-encoded form (sign-in, request, feedback)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return urllib.parse.urlsplit(origin).netloc == host


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """The url-encoded form, or None if it is too big, cross-origin or lacks the CSRF token."""
    if not _same_origin(request):
        return None
    body = bytearray()
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True,
                                     max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return None
    session = request.state.session.current
    if not auth.csrf_ok(session, (form.get("csrf") or [None])[0]):
        return None
    return form


def _one(form: dict[str, list[str]], key: str) -> str:
    return (form.get(key) or [""])[0].strip()


def _client_ip(request: Request) -> str:
    """The address of the connection's peer as the server sees it (no forwarding header)."""
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    web: Web = request.app.state.web
    nxt = request.query_params.get("next") or "/"
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    if request.method == "GET":
        return web.render(request, "login.html", error=None, name="", next=nxt)
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    name, password = _one(form, "name"), (form.get("password") or [""])[0]
    ip = _client_ip(request)
    wait = web.limiter.retry_after(ip, name)
    if wait > 0:  # refused at once: nothing is hashed, counted or waited for here
        seconds = math.ceil(wait)
        resp = web.render(request, "login.html", status=429, error="too_many", name=name,
                          next=nxt, error_args={"seconds": seconds})
        resp.headers["retry-after"] = str(seconds)
        return resp
    ok = await trio.to_thread.run_sync(auth.authenticate, web.home.conn, name, password,
                                       limiter=web.hash_limiter)
    if not ok:
        web.limiter.failed(ip, name)
        return web.render(request, "login.html", status=401, error="bad_login", name=name,
                          next=nxt)
    web.limiter.succeeded(ip, name)
    request.state.session.replace(name)
    return RedirectResponse(nxt, status_code=303)


async def logout(request: Request) -> Response:
    web: Web = request.app.state.web
    if await read_form(request) is None:
        return web.error(request, 403, "bad_csrf")
    request.state.session.replace(None)
    return RedirectResponse("/", status_code=303)


def _need_teacher(web: Web, request: Request) -> Response | None:
    if web.teacher(request) is None:
        nxt = urllib.parse.quote(request.url.path + ("?" + request.url.query
                                                     if request.url.query else ""))
        return RedirectResponse(f"/login?next={nxt}", status_code=303)
    return None


def _form_defaults(web: Web, based_on: str | None, fulfils: str | None,
                   keywords: str | None = None, tool: str | None = None) -> dict[str, Any]:
    from node import db
    values: dict[str, Any] = {"inLanguage": db.get_setting(web.home.conn, "language", "zh-CN"),
                              "license": vocab.DEFAULT_LICENSE, "educationalLevel": [],
                              "isBasedOn": [], "fulfils": []}
    if based_on:
        src = resource_or_none(web, based_on)
        if src is not None:
            m = src["meta"]
            for k in ("title", "description", "inLanguage", "learningResourceType",
                      "timeRequired", "supply", "classroom", "educationalLevel"):
                if k in m:
                    values[k] = m[k]
            values["about"] = ", ".join(m.get("about", []))
            values["keywords"] = ", ".join(m.get("keywords", []))
            values["isBasedOn"] = [based_on]
            values["based_on_title"] = m["title"]
            if src["meta"]["license"] in vocab.LICENSES:
                values["license"] = m["license"]
    if keywords:  # suggested by the text tools (node/web/drafts.py)
        values["keywords"] = keywords
    if tool in tools.RECIPES:  # the files will be a draft of that tool
        values["tool"] = tool
    if fulfils and records.is_request_id(fulfils) and board.request_exists(web.home, fulfils):
        values["fulfils"] = [fulfils]
    return values


async def publish(request: Request) -> Response:
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    if request.method == "GET":
        values = _form_defaults(web, request.query_params.get("based_on"),
                                request.query_params.get("fulfils"),
                                request.query_params.get("keywords"),
                                request.query_params.get("tool"))
        return web.render(request, "publish.html", v=values, error=None,
                          requests=board.list_requests(web.home, 50))
    if not _same_origin(request):
        return web.error(request, 403, "bad_csrf")
    try:
        result = await publish_upload(web, request, web.teacher(request) or "")
    except UploadError as exc:
        if exc.status == 403:
            return web.error(request, 403, "bad_csrf")
        values = exc.values or _form_defaults(web, None, None)
        t_error = exc.key
        return web.render(request, "publish.html", status=exc.status, v=values, error=t_error,
                          detail=exc.detail, requests=board.list_requests(web.home, 50))
    return RedirectResponse(f"/r/{result['resource_id']}", status_code=303)


async def requests_board(request: Request) -> Response:
    web: Web = request.app.state.web
    if request.method == "GET":
        return web.render(request, "requests.html", items=board.list_requests(web.home),
                          error=None, v={})
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    body = {"subject": _one(form, "subject"), "level": _one(form, "level"),
            "description": _one(form, "description")}
    try:
        records.validate_body(records.KIND_REQUEST, body, local=True)
        library.append_entry(web.home, records.KIND_REQUEST, body)
    except (ProtocolError, NodeError) as exc:
        return web.render(request, "requests.html", status=400,
                          items=board.list_requests(web.home), error=str(exc), v=body)
    return RedirectResponse("/requests", status_code=303)


async def feedback(request: Request) -> Response:
    web: Web = request.app.state.web
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    rid = request.path_params["rid"]
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    if resource_or_none(web, rid) is None:
        return web.error(request, 404, "no_resource")
    body: dict[str, Any] = {"resource": rid, "used": _one(form, "used") == "yes"}
    try:
        body["rating"] = int(_one(form, "rating"))
    except ValueError:
        return web.error(request, 400, "bad_feedback")
    if comment := _one(form, "comment"):
        body["comment"] = comment
    try:
        library.append_entry(web.home, records.KIND_FEEDBACK, body)
    except (ProtocolError, NodeError):
        return web.error(request, 400, "bad_feedback")
    return RedirectResponse(f"/r/{rid}#feedback", status_code=303)
