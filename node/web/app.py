"""The route table of the teacher web library (specs/web.md): which handler of :mod:`.browse`
(reading), :mod:`.teach` (sign-in, publish, requests, feedback) or :mod:`.drafts` (text
tools in the adapt flow) answers which URL.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import assist, browse, courses, drafts, operate, report, studios, teach
from .pages import HERE, Frame, Web, WebConfig

__all__ = ["WebConfig", "make_app"]


def make_app(node: Any, config: WebConfig) -> Starlette:
    web = Web(node, config)
    routes = [
        Route("/", browse.search_page),
        Route("/r/{rid}", browse.resource_page),
        Route("/r/{rid}/files/{path:path}", browse.file_bytes, methods=["GET", "HEAD"]),
        Route("/r/{rid}/zip", browse.zip_download),
        Route("/r/{rid}/view/{path:path}", browse.view_page),
        Route("/r/{rid}/pages/{n:int}/{path:path}", browse.page_image),
        Route("/r/{rid}/video/{path:path}", browse.converted_video, methods=["GET", "HEAD"]),
        Route("/r/{rid}/fetch", browse.fetch_resource, methods=["POST"]),
        Route("/r/{rid}/feedback", teach.feedback, methods=["POST"]),
        Route("/r/{rid}/edit", teach.edit, methods=["GET", "POST"]),
        Route("/r/{rid}/tools/{path:path}", drafts.tools_page),
        Route("/r/{rid}/retract", teach.retract, methods=["POST"]),
        Route("/mine", teach.mine),
        Route("/r/{rid}/ai", assist.assistant, methods=["GET", "POST"]),
        Route("/ai/drafts/{did}", assist.draft_page, methods=["GET", "POST"]),
        Route("/api/transfers", browse.transfers),
        Route("/api/holders/{rid}", browse.holders),
        Route("/lang/{code}", browse.set_language),
        Route("/login", teach.login, methods=["GET", "POST"]),
        Route("/logout", teach.logout, methods=["POST"]),
        Route("/publish", teach.publish, methods=["GET", "POST"]),
        Route("/requests", teach.requests_board, methods=["GET", "POST"]),
        Route("/community", browse.community_page),
        Route("/studios", studios.studios_page, methods=["GET", "POST"]),
        Route("/studio/{sid}", studios.studio_page),
        Route("/studio/{sid}/{action}", studios.studio_action, methods=["POST"]),
        Route("/teacher/{key}", studios.record_page),
        Route("/teacher/{key}/record.csv", studios.record_csv),
        Route("/week", courses.week_page),
        Route("/courses", courses.courses_page),
        Route("/courses/new", courses.course_new, methods=["GET", "POST"]),
        Route("/c/{kid}", courses.course_page),
        Route("/report", report.report_page),
        Route("/where", browse.where_page),
        Route("/operator", operate.status_page),
        Route("/operator/transfers", operate.transfers_page),
        Route("/operator/transfers/{tid:int}/{action}", operate.transfer_control,
              methods=["POST"]),
        Route("/operator/storage", operate.storage_page, methods=["GET", "POST"]),
        Route("/operator/accounts", operate.accounts_page, methods=["GET", "POST"]),
        Route("/operator/accounts/{name}/{action}", operate.account_action, methods=["POST"]),
        Route("/operator/limits", operate.limits_page, methods=["GET", "POST"]),
        Route("/operator/limits/{chart}.svg", operate.traffic_chart),
        Route("/operator/communities", operate.communities_page, methods=["GET", "POST"]),
        Route("/operator/communities/{cid}", operate.community_detail),
        Route("/operator/communities/{cid}/invite", operate.community_invite,
              methods=["POST"]),
        Route("/operator/communities/{cid}/remove/{school}", operate.community_remove,
              methods=["POST"]),
        Route("/operator/usb", operate.usb_page),
        Route("/operator/usb/export", operate.usb_export, methods=["POST"]),
        Route("/operator/usb/import", operate.usb_import, methods=["POST"]),
        Route("/operator/usb/jobs/{jid:int}.{fmt}", operate.usb_job),
        Route("/operator/usb/jobs/{jid:int}", operate.usb_job),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: browse.not_found},
                    middleware=[Middleware(Frame, sessions=web.sessions, config=config)])
    app.state.web = web
    return app

