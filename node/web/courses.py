"""Courses in the teacher web library (specs/courses.md, specs/web.md): a teacher's week
("本周课程 / This week": the lessons of their adopted courses in the coming days with the local
copies to open), the course list, a course as a syllabus tree with each lesson's date and
readiness, and publishing a course from its text outline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node import courses as ncourses
from node.errors import NodeError, NotFound
from protocol import courses as pc

from . import i18n
from .pages import MAX_QUERY_CHARS, Web
from .teach import _need_teacher, _one, read_form

WEEK_DAYS = 7            # today and the six days after it
MAX_OUTLINE_CHARS = 20_000    # (the form is at most 64 KiB url-encoded)


async def week_page(request: Request) -> Response:
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    teacher = web.teacher(request)
    rows = ncourses.status(web.home, days=WEEK_DAYS - 1, teacher=teacher)
    today = dt.date.today()
    days: dict[str, list[dict[str, Any]]] = {}
    for a in rows:
        for le in a["lessons"]:
            days.setdefault(le["date"], []).append({**le, "course_id": a["course_id"],
                                                    "course": a["title"], "class": a["class"],
                                                    "adoption": a["adoption"]})
    week = [{"date": d, "weekday": dt.date.fromisoformat(d).isoweekday(),
             "today": d == today.isoformat(), "lessons": days[d]} for d in sorted(days)]
    return web.render(request, "week.html", week=week, adoptions=rows)


async def courses_page(request: Request) -> Response:
    web: Web = request.app.state.web
    q = (request.query_params.get("q") or "").strip()
    if len(q) > MAX_QUERY_CHARS:
        return web.error(request, 400, "bad_search")
    return web.render(request, "courses.html", q=q,
                      items=ncourses.search(web.home.conn, q or None, limit=100))


async def course_page(request: Request) -> Response:
    web: Web = request.app.state.web
    kid = request.path_params["kid"]
    if not pc.is_course_id(kid):
        return web.error(request, 404, "no_course")
    try:
        course = ncourses.tree(web.home, kid)
    except NotFound:
        return web.error(request, 404, "no_course")
    return web.render(request, "course.html", c=course)


async def course_new(request: Request) -> Response:
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect
    if request.method == "GET":
        return web.render(request, "course_new.html", outline="", error=None)
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    outline = _one(form, "outline")
    if not outline:
        return web.render(request, "course_new.html", status=400, outline=outline,
                          error=_t(web, request)("course_outline_empty"))
    if len(outline) > MAX_OUTLINE_CHARS:
        return web.render(request, "course_new.html", status=400, outline="",
                          error=_t(web, request)("course_outline_long",
                                                 n=MAX_OUTLINE_CHARS))
    try:
        made = ncourses.publish(web.home, ncourses.parse_outline(outline))
    except NodeError as exc:
        return web.render(request, "course_new.html", status=400, outline=outline,
                          error=_t(web, request)("course_failed", detail=str(exc)))
    return RedirectResponse(f"/c/{made['course_id']}", status_code=303)


def _t(web: Web, request: Request) -> Any:
    return i18n.translator(web.lang(request))
