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

from node import board, catalog, identities, library, oversight, tools
from node.teachers import signing_as
from node.errors import NodeError
from protocol import records, vocab
from protocol.errors import ProtocolError

from . import auth, staging
from .pages import Web, resource_or_none
from .upload import UploadError, edit_changes, form_meta, in_own_connection, publish_upload

MAX_FORM_BYTES = 64 * 1024      # an url-encoded form (sign-in, request, feedback)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return urllib.parse.urlsplit(origin).netloc == host


async def read_form(request: Request, limit: int = MAX_FORM_BYTES
                    ) -> dict[str, list[str]] | None:
    """The url-encoded form, or None if it is too big, cross-origin or lacks the CSRF token."""
    if not _same_origin(request):
        return None
    body = bytearray()
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > limit:
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
    key = await trio.to_thread.run_sync(identities.unlock, web.home.conn, name, password,
                                        limiter=web.hash_limiter)
    if request.state.session.current is not None:
        web.teacher_keys.pop(request.state.session.current.sid, None)
    session = request.state.session.replace(name)
    if key is not None:
        web.teacher_keys[session.sid] = key
    return RedirectResponse(nxt, status_code=303)


async def logout(request: Request) -> Response:
    web: Web = request.app.state.web
    if await read_form(request) is None:
        return web.error(request, 403, "bad_csrf")
    if request.state.session.current is not None:
        web.teacher_keys.pop(request.state.session.current.sid, None)
    request.state.session.replace(None)
    return RedirectResponse("/", status_code=303)


def _need_teacher(web: Web, request: Request) -> Response | None:
    """A redirect to the sign-in page unless a teacher is signed in — and, for a teacher with
    an identity, unless their key is unsealed (it is not kept across a restart)."""
    name = web.teacher(request)
    if name is None or (web.signer(request) is None
                        and identities.public_of(web.home.conn, name) is not None):
        nxt = urllib.parse.quote(request.url.path + ("?" + request.url.query
                                                     if request.url.query else ""))
        return RedirectResponse(f"/login?next={nxt}", status_code=303)
    return None


def _form_defaults(web: Web, based_on: str | None, fulfils: str | None,
                   keywords: str | None = None, tool: str | None = None,
                   about: str | None = None) -> dict[str, Any]:
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
            values.update(meta_values({k: m[k] for k in catalog.CURRICULUM_FIELDS
                                       if k in m}))
            values["isBasedOn"] = [based_on]
            values["based_on_title"] = m["title"]
            values["based_on_license"] = m["license"]
            if src["meta"]["license"] in vocab.LICENSES:
                values["license"] = m["license"]
    if keywords:  # suggested by the text tools (node/web/drafts.py)
        values["keywords"] = keywords
    if about:  # subjects suggested from the text (node/tools.py subjects)
        values["about"] = about[:2000]
    if tool in tools.RECIPES:  # the files will be a draft of that tool
        values["tool"] = tool
    if fulfils and records.is_request_id(fulfils) and board.request_exists(web.home, fulfils):
        values["fulfils"] = [fulfils]
    return values


def _draft_files_of(web: Web, rid: str | None) -> list[dict[str, Any]]:
    """The files an adaptation or a new version starts with: the resource's, if held here."""
    res = resource_or_none(web, rid) if rid else None
    if res is None or not res["local"]:
        return []
    return [{"path": f["path"], "size": f["size"], "kept": True} for f in res["files"]]


def _kept_links(web: Web, rid: str | None) -> dict[str, Any]:
    if not _draft_files_of(web, rid):
        return {}
    return library.file_links(web.home, rid)  # type: ignore[arg-type]


def _render_form(web: Web, request: Request, *, token: str, values: dict[str, Any],
                 files: list[dict[str, Any]], status: int = 200, error: str | None = None,
                 detail: str = "", edit: dict[str, Any] | None = None) -> Response:
    based_on = (values.get("isBasedOn") or [None])[0]
    query = {"draft": token, **({"based_on": based_on} if based_on and not edit else {})}
    action = (f"/r/{edit['resource_id']}/edit" if edit else "/publish") + "?" + \
        urllib.parse.urlencode(query)
    return web.render(request, "publish.html", status=status, v=values, error=error,
                      detail=detail, requests=board.list_requests(web.home, 50),
                      action=action, draft_files=files, edit=edit,
                      limit=web.upload_limit(), no_derivatives=library.NO_DERIVATIVES)


async def _form_page(web: Web, request: Request, edit: dict[str, Any] | None
                     ) -> Response | None:
    """GET of a publish/edit form: the draft of ``?draft=`` if there is one (re-shown after
    an error), else a fresh form."""
    teacher = web.teacher(request) or ""
    token = request.query_params.get("draft")
    target = edit["resource_id"] if edit else None
    if staging.valid_token(token) and (d := web.drafts.load(token, teacher)) is not None \
            and d.state["target"] == target:
        if d.done:
            return RedirectResponse(f"/r/{d.done}", status_code=303)
        return _render_form(web, request, token=token, values=d.state["values"],
                            files=d.files(), error=d.state["error"],
                            detail=d.state.get("detail", ""), edit=edit)
    return None


async def publish(request: Request) -> Response:
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    if request.method == "GET":
        if (page := await _form_page(web, request, None)) is not None:
            return page
        values = _form_defaults(web, request.query_params.get("based_on"),
                                request.query_params.get("fulfils"),
                                request.query_params.get("keywords"),
                                request.query_params.get("tool"),
                                request.query_params.get("about"))
        based_on = (values["isBasedOn"] or [None])[0]
        return _render_form(web, request, token=staging.new_token(), values=values,
                            files=_draft_files_of(web, based_on))
    based_on = request.query_params.get("based_on")
    if based_on is not None and not records.is_resource_id(based_on):
        based_on = None
    teacher = web.teacher(request) or ""

    def commit(fields: dict[str, list[str]], draft: staging.Draft) -> dict[str, Any]:
        meta = form_meta(fields, teacher)   # checked by library.publish (defaults first)
        staged = [draft.files_dir] if draft.state["staged"] else []
        return in_own_connection(web.home, lambda home: library.publish(
            home, staged, meta, keep=draft.kept_links()))

    return await _receive(web, request, None, lambda: _kept_links(web, based_on), commit)


async def _receive(web: Web, request: Request, edit: dict[str, Any] | None,
                   kept: Any, commit: Any) -> Response:
    """POST of a publish/edit form into its draft, at most once per draft."""
    if not _same_origin(request):
        return web.error(request, 403, "bad_csrf")
    teacher = web.teacher(request) or ""
    token = request.query_params.get("draft")
    if not staging.valid_token(token):
        token = staging.new_token()     # a form from before drafts: still published once
    async with web.draft_lock(token):
        draft = web.drafts.load(token, teacher)
        if draft is not None and draft.state["target"] != (edit["resource_id"] if edit else None):
            return web.error(request, 403, "bad_csrf")    # a draft of another form
        if draft is None:
            if web.drafts.taken(token):
                return web.error(request, 403, "bad_csrf")
            draft = web.drafts.create(token, teacher, kept=await trio.to_thread.run_sync(kept),
                                      target=edit["resource_id"] if edit else None)
        if draft.done:   # sent twice: the first one was published
            return RedirectResponse(f"/r/{draft.done}", status_code=303)
        try:
            with signing_as(web.signer(request)):
                result = await publish_upload(web, request, draft, commit)
        except UploadError as exc:
            if exc.status == 403:
                return web.error(request, 403, "bad_csrf")
            draft.state.update(error=exc.key, detail=exc.detail)
            if draft.folder.exists():
                await trio.to_thread.run_sync(draft.save)
            values = exc.values or draft.state["values"] or \
                (_edit_values(edit) if edit else _form_defaults(web, None, None))
            return _render_form(web, request, token=token, values=values, files=draft.files(),
                                status=exc.status, error=exc.key, detail=exc.detail, edit=edit)
        await trio.to_thread.run_sync(draft.finish, result["resource_id"])
    return RedirectResponse(f"/r/{result['resource_id']}", status_code=303)


# -- my resources ------------------------------------------------------------------------------

def _editable(web: Web, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    """The resource of the URL if the signed-in teacher may change it (published from this
    node under their name, not withdrawn), else the response that says why not."""
    teacher = web.teacher(request)
    if teacher is None:
        return None, _need_teacher(web, request)
    res = resource_or_none(web, request.path_params["rid"])
    if res is None:
        return None, web.error(request, 404, "no_resource")
    if res["school_id"] != web.home.school_id or res["meta"].get("creator") != teacher:
        return None, web.error(request, 403, "not_yours")
    if res["retracted"]:
        return None, web.error(request, 409, "retracted")
    return res, None


def _edit_values(res: dict[str, Any]) -> dict[str, Any]:
    """A resource's metadata as the edit form shows it."""
    v: dict[str, Any] = {k: "" for k in ("title", "description", "inLanguage", "license",
                                         "learningResourceType", "timeRequired", "supply",
                                         "classroom", "about", "keywords",
                                         *catalog.CURRICULUM_FIELDS)}
    v.update(meta_values(res["meta"]))
    v.update(isBasedOn=[], fulfils=[])
    return v


async def mine(request: Request) -> Response:
    """The signed-in teacher's resources: those published from this node under their name."""
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    teacher = web.teacher(request) or ""
    items = library.teacher_resources(web.home, teacher)
    # feedback from other schools reaches the author here (visiting marks it read), and what
    # a community hid, with the reason (node/oversight.py)
    unread = oversight.unread(web.home, teacher)
    rids = [r["resource_id"] for r in items]
    stats = {rid: (n, avg, used) for rid, n, avg, used in web.home.conn.execute(
        "SELECT resource_id, count(*), round(avg(rating), 1), sum(used) FROM feedback "
        f"WHERE resource_id IN ({','.join('?' * len(rids))}) GROUP BY resource_id", rids)}
    page = web.render(request, "mine.html", items=items, stats=stats, new=unread,
                      feedback_items=oversight.my_feedback(web.home),
                      notices=oversight.moderation_notices(web.home))
    oversight.mark_read(web.home, teacher)
    return page


async def edit(request: Request) -> Response:
    """A new version of one's own resource: metadata, files added, replaced or left out."""
    web: Web = request.app.state.web
    res, refused = _editable(web, request)
    if res is None:
        return refused  # type: ignore[return-value]
    rid = res["resource_id"]
    if request.method == "GET":
        if (page := await _form_page(web, request, res)) is not None:
            return page
        return _render_form(web, request, token=staging.new_token(), values=_edit_values(res),
                            files=_draft_files_of(web, rid), edit=res)

    def commit(fields: dict[str, list[str]], draft: staging.Draft) -> dict[str, Any]:
        staged = [draft.files_dir] if draft.state["staged"] else []
        try:
            return in_own_connection(web.home, lambda home: library.update(
                home, rid, staged, edit_changes(fields), keep=draft.kept_links(),
                require_change=True))
        except library.NothingChanged:
            raise UploadError(400, "nothing_changed") from None

    return await _receive(web, request, res, lambda: _kept_links(web, rid), commit)


async def retract(request: Request) -> Response:
    """Withdraw one's own resource (a signed ``resource.retract``; copies elsewhere stop
    being offered)."""
    web: Web = request.app.state.web
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    res, refused = _editable(web, request)
    if res is None:
        return refused  # type: ignore[return-value]
    reason = _one(form, "reason")[:500] or None
    once = _one(form, "once")
    go, location = web.once.claim(once)
    if not go:
        return RedirectResponse(location or "/mine", status_code=303)
    try:
        with signing_as(web.signer(request)):
            await trio.to_thread.run_sync(in_own_connection, web.home,
                                          lambda home: library.retract(
                                              home, res["resource_id"], reason))
    except (ProtocolError, NodeError) as exc:
        web.once.finish(once, None)
        return web.error(request, 400, "retract_failed", error=str(exc))
    web.once.finish(once, "/mine")
    return RedirectResponse("/mine", status_code=303)


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
    once = _one(form, "once")
    go, location = web.once.claim(once)
    if not go:
        return RedirectResponse(location or "/requests", status_code=303)
    try:
        records.validate_body(records.KIND_REQUEST, body, local=True)
        with signing_as(web.signer(request)):
            library.append_entry(web.home, records.KIND_REQUEST, body)
    except (ProtocolError, NodeError) as exc:
        web.once.finish(once, None)
        return web.render(request, "requests.html", status=400,
                          items=board.list_requests(web.home), error=str(exc), v=body)
    web.once.finish(once, "/requests")
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
    once = _one(form, "once")
    go, location = web.once.claim(once)
    if not go:
        return RedirectResponse(location or f"/r/{rid}#feedback", status_code=303)
    try:
        with signing_as(web.signer(request)):
            library.append_entry(web.home, records.KIND_FEEDBACK, body)
    except (ProtocolError, NodeError):
        web.once.finish(once, None)
        return web.error(request, 400, "bad_feedback")
    web.once.finish(once, f"/r/{rid}#feedback")
    return RedirectResponse(f"/r/{rid}#feedback", status_code=303)


def meta_values(m: dict[str, Any]) -> dict[str, Any]:
    """A record's metadata as the form shows it (lists joined, unit/lesson as "5 title")."""
    v: dict[str, Any] = dict(m)
    v.setdefault("educationalLevel", [])
    for k in ("about", "keywords"):
        if isinstance(m.get(k), list):
            v[k] = ", ".join(m[k])
    for k in ("unit", "lesson"):
        if k in m:
            v[k] = vocab.part_label(m[k])
    return v
