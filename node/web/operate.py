"""The operator's pages: run the node from the browser (specs/web.md §1, §3).

Only a signed-in account with the ``operator`` role sees them; teachers and anonymous visitors
get 403.  Every POST carries the session's CSRF token (:func:`.teach.read_form`).  Node data
comes from the running node's control API methods (``api_status``, ``api_peers``,
``api_transfers``, ``api_transfer_control``), the same the CLI uses.
"""

from __future__ import annotations

import urllib.parse

import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node import community as ncommunity
from node import db, identities
from node import storage as nstorage
from node import transfers as ntransfers
from node.errors import NodeError

from . import auth
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
