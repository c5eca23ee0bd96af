"""The operator's pages: run the node from the browser (specs/web.md §1, §3).

Only a signed-in account with the ``operator`` role sees them; teachers and anonymous visitors
get 403.  Every POST carries the session's CSRF token (:func:`.teach.read_form`).  Node data
comes from the running node's control API methods (``api_status``, ``api_peers``,
``api_transfers``, ``api_transfer_control``), the same the CLI uses; limits, communities and
USB bundles call the same node functions as ``schoolmesh limits``, ``schoolmesh community`` and
``schoolmesh export``/``import`` (USB jobs run in the background: :mod:`.usb`).
"""

from __future__ import annotations

import time
import urllib.parse
from datetime import datetime
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from node import community as ncommunity
from node import db, identities
from node import limits as nlimits
from node import startup
from node import storage as nstorage
from node import transfers as ntransfers
from node.errors import NodeError
from protocol import limits as plimits
from protocol import units as punits
from protocol.errors import LocalProtocolError

from . import auth, charts, i18n, usb
from .pages import UPLOAD_LIMIT_SETTING, Web
from .teach import read_form

MAX_UPLOAD_LIMIT_MIB = 64 * 1024   # the largest upload limit the storage page accepts
MAX_PINS_SHOWN = 200     # the storage page lists the most recent pins, totals cover all
DONE_KEYS = ("op_added", "op_password_set", "op_removed")


def _operator(request: Request) -> tuple[Web, str | None]:
    web: Web = request.app.state.web
    return web, web.operator(request)


def _forbidden(web: Web, request: Request) -> Response:
    return web.error(request, 403, "operators_only")


async def _operator_form(request: Request
                         ) -> tuple[Web, str | None, dict[str, list[str]], Response | None]:
    """A POST to an operator page: (web, operator, form, None), or a refusal (403: bad CSRF
    token first, then not an operator) as the last item."""
    web, op = _operator(request)
    form = await read_form(request)
    if form is None:
        return web, op, {}, web.error(request, 403, "bad_csrf")
    if op is None:
        return web, op, {}, _forbidden(web, request)
    return web, op, form, None


async def status_page(request: Request) -> Response:
    """The node: school, addresses, web URLs, connected peers (LAN or not), traffic."""
    web, op = _operator(request)
    if op is None:
        return _forbidden(web, request)
    status = await web.node.api_status()
    peers = await web.node.api_peers()
    return web.render(request, "op_status.html", s=status, peers=peers)


def actions_for(state: str) -> list[str]:
    """The buttons a transfer in ``state`` gets: the actions that change it (the queue's
    state table, node/transfers.py)."""
    return [a for a in ntransfers.ACTIONS
            if ntransfers.TRANSITIONS[a].get(state, state) != state]


async def transfers_page(request: Request) -> Response:
    web, op = _operator(request)
    if op is None:
        return _forbidden(web, request)
    items = await web.node.api_transfers()
    items.sort(key=lambda t: (t["state"] in ntransfers.FINAL, -t["id"]))
    return web.render(request, "op_transfers.html", items=items, actions_for=actions_for)


async def transfer_control(request: Request) -> Response:
    """POST /operator/transfers/{tid}/{action}: pause, resume or cancel."""
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    try:
        await web.node.api_transfer_control(request.path_params["tid"],
                                            request.path_params["action"])
    except NodeError as exc:
        return web.error(request, 409, "op_failed", error=str(exc))
    return RedirectResponse("/operator/transfers", status_code=303)


async def storage_page(request: Request) -> Response:
    """GET: disk, what is kept and why, the upload limit.  POST: set the upload limit."""
    web, op = _operator(request)
    error = None
    if request.method == "POST":
        web, op, form, refused = await _operator_form(request)
        if refused is not None:
            return refused
        text = (form.get("upload_limit_mib") or [""])[0].strip()
        if text.isdigit() and 1 <= int(text) <= MAX_UPLOAD_LIMIT_MIB:
            with db.write(web.home.conn) as c:
                db.set_setting(c, UPLOAD_LIMIT_SETTING, str(int(text) * 1024 * 1024))
            return RedirectResponse("/operator/storage", status_code=303)
        error = "op_upload_limit_bad"
    if op is None:
        return _forbidden(web, request)
    kept = await trio.to_thread.run_sync(ncommunity.pins, web.home)
    disk = await trio.to_thread.run_sync(nstorage.disk, web.home.conn, web.home.path)
    return web.render(request, "op_storage.html", status=400 if error else 200, kept=kept,
                      disk=disk, pins=kept["pins"][:MAX_PINS_SHOWN],
                      more=len(kept["pins"]) > MAX_PINS_SHOWN, error=error,
                      upload_limit_mib=web.upload_limit() // (1024 * 1024),
                      max_mib=MAX_UPLOAD_LIMIT_MIB)


async def accounts_page(request: Request) -> Response:
    """GET: the accounts.  POST: add one (name, password, role)."""
    web, op = _operator(request)
    if request.method == "GET":
        if op is None:
            return _forbidden(web, request)
        key, name = request.query_params.get("done"), request.query_params.get("name", "")
        return _accounts(web, request, done=(key, name) if key in DONE_KEYS else None)
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    name = (form.get("name") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    role = (form.get("role") or ["teacher"])[0]
    subjects = (form.get("subjects") or [""])[0].replace("，", ",").split(",")
    try:
        await trio.to_thread.run_sync(identities.add, web.home, name, password, subjects, role,
                                      limiter=web.hash_limiter)
    except NodeError as exc:
        return _accounts(web, request, status=400, error=str(exc))
    return _done("op_added", name)


async def account_action(request: Request) -> Response:
    """POST /operator/accounts/{name}/{password,remove}."""
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    name, action = request.path_params["name"], request.path_params["action"]
    try:
        if action == "password":
            password = (form.get("password") or [""])[0]
            await trio.to_thread.run_sync(identities.reset, web.home, name, password,
                                          limiter=web.hash_limiter)
            done = "op_password_set"
        elif action == "remove":
            if name == op:
                raise NodeError("you cannot remove your own account here (use "
                                "'schoolmesh teacher remove')")
            identities.remove(web.home, name)
            done = "op_removed"
        else:
            return web.error(request, 404, "not_found")
    except NodeError as exc:
        return _accounts(web, request, status=400, error=str(exc))
    return _done(done, name)


def _done(key: str, name: str) -> Response:
    """Back to the list after a change (a reload does not post the form again)."""
    query = urllib.parse.urlencode({"done": key, "name": name})
    return RedirectResponse(f"/operator/accounts?{query}", status_code=303)


def _accounts(web: Web, request: Request, status: int = 200, error: str | None = None,
              done: tuple[str, str] | None = None) -> Response:
    return web.render(request, "op_accounts.html", status=status,
                      accounts=auth.list_teachers(web.home.conn), roles=auth.ROLES,
                      error=error, done=done, quote=urllib.parse.quote)


# -- limits and the month's traffic -----------------------------------------------------------

def _month_now() -> tuple[str, str]:
    now = datetime.now()
    return nlimits.month_of(now), nlimits.day_of(now)


def _limits_context(web: Web) -> dict[str, Any]:
    conn = web.home.conn
    current = nlimits.load(conn)
    month, today = _month_now()
    up, down = nlimits.used(conn, month)
    days = nlimits.days(conn, month)
    budget = current.monthly_budget
    uses: dict[str, list[int]] = {}
    for _, protocol, sent, received in nlimits.protocol_days(conn, month):
        row = uses.setdefault(protocol, [0, 0])
        row[0] += sent
        row[1] += received
    return {"limits": current.describe(), "month": month, "today": today,
            "uses": sorted(uses.items(), key=lambda kv: -sum(kv[1])),
            "protocol_key": i18n.protocol_key,
            "used": up + down, "used_up": up, "used_down": down, "budget": budget,
            "percent": None if not budget else min(100, (up + down) * 100 // budget),
            "days": days, "unknown": max(0, up + down - sum(u + d for _, u, d in days))}


async def limits_page(request: Request) -> Response:
    """GET: the limits in force and the month's traffic (chart and table).  POST: change the
    rates or the budget, as ``schoolmesh limits set --up/--down/--monthly-budget``."""
    web, op = _operator(request)
    if request.method == "GET":
        if op is None:
            return _forbidden(web, request)
        done = request.query_params.get("done") == "1"
        return web.render(request, "op_limits.html", done=done, **_limits_context(web))
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    values = {k: (form.get(k) or [""])[0].strip() for k in ("up", "down", "monthly_budget")}
    try:
        changes: dict[str, Any] = {}
        for key in ("up", "down"):
            if values[key]:
                changes[key] = plimits.parse_rate(values[key])
        if values["monthly_budget"]:
            changes["monthly_budget"] = plimits.parse_budget(values["monthly_budget"])
        new = plimits.update(nlimits.load(web.home.conn), **changes)
        nlimits.save(web.home.conn, new)
    except LocalProtocolError as exc:
        return web.render(request, "op_limits.html", status=400, error=str(exc),
                          form=values, **_limits_context(web))
    return RedirectResponse("/operator/limits?done=1", status_code=303)


async def traffic_chart(request: Request) -> Response:
    """GET /operator/limits/{daily,month,protocols}.svg: the charts of the limits page."""
    web, op = _operator(request)
    if op is None:
        return _forbidden(web, request)
    t = i18n.translator(web.lang(request))
    month, today = _month_now()
    days = nlimits.days(web.home.conn, month)
    if request.path_params["chart"] == "daily":
        svg = charts.daily_svg(month, days, {"title": t("op_chart_daily", month=month),
                                             "sent": t("op_sent"),
                                             "received": t("op_received")})
    elif request.path_params["chart"] == "month":
        budget = nlimits.load(web.home.conn).monthly_budget
        svg = charts.total_svg(month, days, budget, today,
                               {"title": t("op_chart_month", month=month),
                                "used": t("op_used_so_far"), "budget": t("op_budget")})
    elif request.path_params["chart"] == "protocols":
        def use(protocol: str) -> str:
            key = i18n.protocol_key(protocol)
            return t(key) if key else protocol
        rows = [(d, use(p), s + r) for d, p, s, r in
                nlimits.protocol_days(web.home.conn, month)]
        svg = charts.protocols_svg(month, rows, {"title": t("op_chart_protocols", month=month),
                                                 "other": t("op_other")})
    else:
        return web.error(request, 404, "not_found")
    return Response(svg, media_type="image/svg+xml",
                    headers={"content-security-policy": charts.SVG_CSP,
                             "cache-control": "no-store"})


# -- communities ------------------------------------------------------------------------------

INVITE_TTLS = {"1d": 86_400_000, "7d": 7 * 86_400_000, "14d": 14 * 86_400_000,
               "30d": 30 * 86_400_000}


async def communities_page(request: Request) -> Response:
    """GET: the communities of this school.  POST: found one (``community create``)."""
    web, op = _operator(request)
    if request.method == "GET":
        if op is None:
            return _forbidden(web, request)
        return _communities(web, request)
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    name = (form.get("name") or [""])[0].strip()
    description = (form.get("description") or [""])[0].strip() or None
    try:
        if not name:
            raise NodeError("give the community a name")
        d = await trio.to_thread.run_sync(ncommunity.create, web.home, name, description)
    except NodeError as exc:
        return _communities(web, request, status=400, error=str(exc))
    return RedirectResponse(f"/operator/communities/{d['community_id']}", status_code=303)


def _communities(web: Web, request: Request, status: int = 200, error: str | None = None
                 ) -> Response:
    return web.render(request, "op_communities.html", status=status, error=error,
                      items=ncommunity.list_communities(web.home))


def _known_community(web: Web, cid: str) -> bool:
    return any(r["community"] == cid for r in ncommunity.rows(web.home.conn))


async def community_detail(request: Request) -> Response:
    """GET /operator/communities/{cid}: members, remove buttons, the invite form."""
    web, op = _operator(request)
    if op is None:
        return _forbidden(web, request)
    cid = request.path_params["cid"]
    if not _known_community(web, cid):
        return web.error(request, 404, "not_found")
    removed = request.query_params.get("removed")
    return _community(web, request, cid, removed=removed)


def _community(web: Web, request: Request, cid: str, status: int = 200, **ctx: Any
               ) -> Response:
    d = ncommunity.members(web.home, cid)
    me = next((m for m in d["members"] if m["you"]), None)
    issuer = me is not None and me["status"] == "active" and \
        me["role"] == "demonstration"
    return web.render(request, "op_community.html", status=status, c=d, issuer=issuer,
                      ttls=list(INVITE_TTLS), **ctx)


async def community_invite(request: Request) -> Response:
    """POST: a one-time invite code (``community invite``), shown once with its QR code."""
    from markupsafe import Markup

    from . import qr
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    cid = request.path_params["cid"]
    if not _known_community(web, cid):
        return web.error(request, 404, "not_found")
    role = (form.get("role") or ["member"])[0]
    ttl = INVITE_TTLS.get((form.get("expires") or ["7d"])[0])
    try:
        if role not in ("member", "demonstration") or ttl is None:
            raise NodeError("choose a role and how long the invite is valid")
        status = await web.node.api_status()
        seeds = startup.reachable_addrs(status["listen"])
        d = await trio.to_thread.run_sync(
            lambda: ncommunity.invite(web.home, cid, role=role, ttl_ms=ttl, seeds=seeds))
    except NodeError as exc:
        return _community(web, request, cid, status=400, error=str(exc))
    expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(d["expires"] / 1000))
    return _community(web, request, cid, invite=d, expires=expires,
                      invite_qr=Markup(qr.svg(d["code"])))


async def community_remove(request: Request) -> Response:
    """POST /operator/communities/{cid}/remove/{school}: a signed revocation."""
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    cid, school = request.path_params["cid"], request.path_params["school"]
    if not _known_community(web, cid):
        return web.error(request, 404, "not_found")
    reason = (form.get("reason") or [""])[0].strip() or None
    try:
        await trio.to_thread.run_sync(ncommunity.remove, web.home, school, cid, reason)
    except NodeError as exc:
        return _community(web, request, cid, status=400, error=str(exc))
    query = urllib.parse.urlencode({"removed": school})
    return RedirectResponse(f"/operator/communities/{cid}?{query}", status_code=303)


# -- USB --------------------------------------------------------------------------------------

async def usb_page(request: Request) -> Response:
    """GET: the drives, the chosen folder's bundles, the jobs.  ``?dir=`` chooses a folder."""
    web, op = _operator(request)
    if op is None:
        return _forbidden(web, request)
    return await _usb(web, request, request.query_params.get("dir", ""))


async def _usb(web: Web, request: Request, chosen: str, status: int = 200,
               error: str | None = None) -> Response:
    drives = await trio.to_thread.run_sync(usb.mounted_drives)
    files, folder = [], None
    if chosen and error is None:
        try:
            folder = usb.folder(chosen)
            files = await trio.to_thread.run_sync(usb.bundles_in, folder)
        except NodeError as exc:
            status, error = 400, str(exc)
    name = f"schoolmesh-{time.strftime('%Y%m%d')}.car"
    jobs = sorted(web.jobs.items.values(), key=lambda j: -j.id)
    return web.render(request, "op_usb.html", status=status, error=error, drives=drives,
                      chosen=chosen, folder=folder, files=files, default_name=name, jobs=jobs,
                      communities=ncommunity.list_communities(web.home))


async def usb_export(request: Request) -> Response:
    """POST: export to the chosen folder (``schoolmesh export``) as a background job."""
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    get = lambda k: (form.get(k) or [""])[0].strip()  # noqa: E731
    chosen = get("dir")
    try:
        folder = usb.folder(chosen)
        name = get("name") or f"schoolmesh-{time.strftime('%Y%m%d')}.car"
        if "/" in name or name.startswith(".") or not name.lower().endswith(".car"):
            raise NodeError(f"{name}: a file name ending in .car, without folders")
        max_size = punits.parse_size(get("max_size"), minimum=1, what="max size") \
            if get("max_size") else None
        communities = [c for c in form.get("community", []) if c]
        work = usb.export_work(web.home, folder / name, communities=communities,
                               max_size=max_size)
        job = web.jobs.submit("export", str(folder / name), work)
    except (NodeError, LocalProtocolError) as exc:
        return await _usb(web, request, chosen, status=400, error=str(exc))
    return RedirectResponse(f"/operator/usb/jobs/{job.id}", status_code=303)


async def usb_import(request: Request) -> Response:
    """POST: import the chosen bundle files (``schoolmesh import``) as a background job."""
    web, op, form, refused = await _operator_form(request)
    if refused is not None:
        return refused
    chosen = (form.get("dir") or [""])[0].strip()
    try:
        folder = usb.folder(chosen)
        names = [n for n in form.get("file", []) if n]
        if not names:
            raise NodeError("choose the bundle file(s) to import")
        if any("/" in n or n in (".", "..") for n in names):
            raise NodeError("bundle names are file names in the chosen folder")
        files = [folder / n for n in names]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise NodeError(f"{missing[0]}: no such file")
        job = web.jobs.submit("import", str(folder), usb.import_work(web.home, files))
    except NodeError as exc:
        return await _usb(web, request, chosen, status=400, error=str(exc))
    return RedirectResponse(f"/operator/usb/jobs/{job.id}", status_code=303)


async def usb_job(request: Request) -> Response:
    """GET /operator/usb/jobs/{id}: the job's progress (the page reloads itself while it
    runs); ``/operator/usb/jobs/{id}.json``: the same as JSON."""
    web, op = _operator(request)
    if op is None:
        return _forbidden(web, request)
    job = web.jobs.items.get(request.path_params["jid"])
    if job is None:
        return web.error(request, 404, "not_found")
    if request.path_params.get("fmt") == "json":
        return JSONResponse(job.as_json(), headers={"cache-control": "no-store"})
    return web.render(request, "op_usb_job.html", job=job)
