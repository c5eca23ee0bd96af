"""Studios, mentoring and records of contributions in the web library (specs/teachers.md §6,
§7): /studios, /studio/{sid}, /studio/{sid}/{action}, /teacher/{key}, /teacher/{key}/record.csv.

Every action is the signed-in teacher's, signed with their key (unsealed at sign-in).
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timezone
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node import contributions, identities
from node import studio as ns
from node.errors import NodeError
from node.teachers import certificates, name_of
from protocol import studio as ps

from .pages import Web
from .teach import _need_teacher, _one, read_form

DIAL_SECONDS = 5     # per invite-code address, when a teacher joins
ACTIONS = ("task", "submit", "review", "comment", "invite", "pair", "log")


def _names(web: Web, keys: Any) -> dict[bytes, str]:
    return {k: name_of(web.home.conn, k) or identities.key_id(k)[:12] for k in keys}


def _my_resources(web: Web, key: bytes | None) -> list[dict[str, Any]]:
    if key is None:
        return []
    rows = web.home.conn.execute(
        "SELECT r.resource_id, r.title FROM resources r JOIN teacher_signatures s"
        " ON s.feed = r.feed AND s.seq = r.first_seq WHERE s.teacher = ? AND r.retracted = 0"
        " ORDER BY r.created DESC LIMIT 100", (key,)).fetchall()
    return [{"resource_id": r[0], "title": r[1]} for r in rows]


def _title(web: Web, rid: str | None) -> str | None:
    if rid is None:
        return None
    row = web.home.conn.execute("SELECT title FROM resources WHERE resource_id = ?",
                                (rid,)).fetchone()
    return row[0] if row else None


async def studios_page(request: Request) -> Response:
    web: Web = request.app.state.web
    error = None
    if request.method == "POST":
        form = await read_form(request)
        if form is None:
            return web.error(request, 403, "bad_csrf")
        if (redirect := _need_teacher(web, request)) is not None:
            return redirect
        key = web.signer(request)
        try:
            if _one(form, "action") == "join":
                await _dial_seeds(web, _one(form, "code"))
                d = ns.join(web.home, key, _one(form, "code"))
            else:
                d = ns.create(web.home, key, _one(form, "name"), _one(form, "about") or None)
            return RedirectResponse(f"/studio/{d['studio']}", status_code=303)
        except NodeError as exc:
            error = str(exc)
    key = web.signer(request)
    all_ = list(ns.studios(web.home.conn).values())
    rows = [{"id": s.id, "name": s.name, "master": _names(web, [s.master])[s.master],
             "members": len(s.members), "tasks": len(s.tasks),
             "mine": key is not None and key.public.raw in s.members} for s in all_]
    return web.render(request, "studios.html", status=400 if error else 200, studios=rows,
                      error=error, has_key=key is not None,
                      me=identities.key_id(key.public.raw) if key else None)


async def _listen_addrs(web: Web) -> list[str]:
    """This node's addresses for an invite code (none when the node does not listen)."""
    status = getattr(web.node, "api_status", None)
    if status is None:
        return []
    try:
        return list((await status())["listen"])[:4]
    except (NodeError, KeyError, AttributeError):
        return []


async def _dial_seeds(web: Web, code: str) -> None:
    """Connect to the founding node's addresses of an invite code, best effort, so its feed
    (and the studio) arrives; a bad code is reported by ``studio.join``."""
    connect = getattr(web.node, "api_connect", None)
    try:
        seeds = ps.decode_code(code)["seeds"]
    except Exception:  # noqa: BLE001 - the join reports the bad code
        return
    if connect is None:
        return
    for addr in seeds:
        with trio.move_on_after(DIAL_SECONDS):
            try:
                await connect(addr)
                return
            except NodeError:
                continue


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


def _due(text: str) -> int:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise NodeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return int(day.timestamp() * 1000) + 86_399_999   # the end of that day (UTC)


async def studio_page(request: Request, error: str | None = None, status: int = 200
                      ) -> Response:
    web: Web = request.app.state.web
    sid = request.path_params["sid"]
    s = ns.studios(web.home.conn).get(sid)
    if s is None:
        return web.error(request, 404, "no_studio")
    key = web.signer(request)
    me = key.public.raw if key else None
    people = set(s.members) | {c["teacher"] for c in s.comments.values()}
    names = _names(web, people)
    tasks = []
    for t in sorted(s.tasks.values(), key=lambda t: (t["due"], t["id"])):
        subs = [{"hash": h.hex(), "teacher": names.get(x["teacher"], "?"),
                 "teacher_key": identities.key_id(x["teacher"]), "resource": x["resource"],
                 "title": _title(web, x["resource"]) or x["resource"], "on_time": x["on_time"],
                 "review": x["review"], "time": x["time"]}
                for h, x in s.submissions.items() if x["task"] == t["id"]]
        tasks.append({**t, "due_day": _day(t["due"]), "submissions": subs,
                      "resource_title": _title(web, t.get("resource"))})
    threads: dict[str, dict[str, Any]] = {}
    for h, c in sorted(s.comments.items(), key=lambda kv: (kv[1]["time"], kv[0])):
        th = threads.setdefault(c["resource"], {"resource": c["resource"],
                                                "title": _title(web, c["resource"]),
                                                "comments": []})
        th["comments"].append({**c, "hash": h.hex(), "who": names.get(c["teacher"], "?"),
                               "reply_to": c["reply_to"].hex() if c["reply_to"] else None})
    pairs = [{"hash": h.hex(), "mentor": names.get(p["mentor"], "?"),
              "apprentice": names.get(p["apprentice"], "?"),
              "mine": me in (p["mentor"], p["apprentice"]),
              "log": [{**x, "who": names.get(x["teacher"], "?")} for x in p["log"]]}
             for h, p in s.pairs.items()]
    members = [{"name": names[k], "key": identities.key_id(k), "hex": k.hex(),
                "school_id": m["school_id"], "master": k == s.master}
               for k, m in s.members.items()]
    return web.render(
        request, "studio.html", status=status, s=s, tasks=tasks, threads=list(threads.values()),
        pairs=pairs, members=members, master_name=names[s.master],
        is_master=me == s.master, is_member=me in s.members, error=error,
        mine=_my_resources(web, me), code=request.query_params.get("code"))


async def studio_action(request: Request) -> Response:
    web: Web = request.app.state.web
    sid, action = request.path_params["sid"], request.path_params["action"]
    if action not in ACTIONS:
        return web.error(request, 404, "not_found")
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    key = web.signer(request)
    anchor = ""
    try:
        if action == "task":
            ns.add_task(web.home, key, sid, _one(form, "title"), _due(_one(form, "due")),
                        _one(form, "description") or None, _one(form, "resource") or None)
            anchor = "#tasks"
        elif action == "submit":
            ns.submit(web.home, key, sid, _one(form, "task"), _one(form, "resource"))
            anchor = "#tasks"
        elif action == "review":
            try:
                rating = int(_one(form, "rating"))
            except ValueError:
                raise NodeError("rating must be 1-5") from None
            ns.review(web.home, key, sid, _one(form, "submission"), rating,
                      _one(form, "comment") or None)
            anchor = "#tasks"
        elif action == "comment":
            ns.comment(web.home, key, sid, _one(form, "resource"), _one(form, "text"),
                       _one(form, "reply_to") or None)
            anchor = "#lesson-study"
        elif action == "invite":
            d = ns.invite(web.home, key, sid, _one(form, "school"), await _listen_addrs(web))
            return RedirectResponse(
                f"/studio/{sid}?code={urllib.parse.quote(d['code'])}#invite", status_code=303)
        elif action == "pair":
            ns.pair(web.home, key, sid, bytes.fromhex(_one(form, "mentor")),
                    bytes.fromhex(_one(form, "apprentice")))
            anchor = "#mentoring"
        elif action == "log":
            ns.log(web.home, key, sid, _one(form, "pair"), _one(form, "note"),
                   _one(form, "text"), _one(form, "resource") or None)
            anchor = "#mentoring"
    except (NodeError, ValueError) as exc:
        return await studio_page(request, error=str(exc), status=400)
    return RedirectResponse(f"/studio/{sid}{anchor}", status_code=303)


def _teacher_key(web: Web, text: str) -> bytes | None:
    try:
        return identities.parse_key_id(text)
    except NodeError:
        return None


async def record_page(request: Request) -> Response:
    web: Web = request.app.state.web
    key = _teacher_key(web, request.path_params["key"])
    if key is None:
        return web.error(request, 404, "no_teacher")
    rec = contributions.of(web.home.conn, key)
    return web.render(request, "record.html", rec=rec, name=name_of(web.home.conn, key),
                      certs=certificates(web.home.conn, key), key=identities.key_id(key),
                      categories=contributions.CATEGORIES)


async def record_csv(request: Request) -> Response:
    web: Web = request.app.state.web
    key = _teacher_key(web, request.path_params["key"])
    if key is None:
        return web.error(request, 404, "no_teacher")
    body = contributions.to_csv(contributions.of(web.home.conn, key))
    return Response(body.encode("utf-8-sig"), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="contributions-{key.hex()[:12]}.csv"'})
