"""Text tools in the adapt flow: from a text file of a resource this node holds, a signed-in
teacher gets a reading-difficulty hint, keyword suggestions and drafts to download (pinyin,
simplified ↔ traditional), reviews them, and publishes the adaptation with the adapt form.
Everything runs on this node (:mod:`node.tools`); nothing is stored or published here.
"""

from __future__ import annotations

import urllib.parse
from pathlib import PurePosixPath
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from crypto import cid_from_str
from node import tools
from node.errors import NodeError, NotFound
from protocol.errors import ProtocolError

from . import stream
from .pages import FILE_CSP, Web, resource_or_none

DRAFTS = tuple(tools.RECIPES)   # ?make=: pinyin.html, pinyin.docx, traditional, simplified
MEDIA_TYPES = {".html": "text/html; charset=utf-8",
               ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
KEYWORDS = 10


def tool_file(path: str, size: int) -> bool:
    """Whether the text tools can read this file of a resource (shown as a link)."""
    return (PurePosixPath(path).suffix.lower() in (*tools.TEXT_SUFFIXES, tools.DOCX_SUFFIX)
            and size <= tools.MAX_INPUT_BYTES)


def _read(web: Web, f: dict[str, Any]) -> bytes:
    return b"".join(stream.iter_range(cid_from_str(f["cid"]), web.home.blocks.get, 0,
                                      f["size"]))


def _analyse(data: bytes, name: PurePosixPath) -> dict[str, Any]:
    text = tools.document_text(data, name)
    return {"hint": tools.reading_hint(text), "keywords": tools.keywords(text, KEYWORDS),
            "subjects": tools.subjects(text)}


def _draft(data: bytes, name: PurePosixPath, make: str) -> tuple[bytes, str]:
    text = tools.document_text(data, name)
    stem = name.stem
    if make == "pinyin.html":
        return tools.pinyin_html_page(text, stem).encode("utf-8"), f"{stem}.{make}"
    if make == "pinyin.docx":
        return tools.pinyin_docx(text), f"{stem}.{make}"
    if name.suffix.lower() == tools.DOCX_SUFFIX:
        return tools.convert_docx(data, name, make), f"{stem}.{make}.docx"
    return tools.convert(text, make).encode("utf-8"), f"{stem}.{make}{name.suffix}"


def _attachment(name: str) -> str:
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


async def tools_page(request: Request) -> Response:
    web: Web = request.app.state.web
    if web.teacher(request) is None:
        nxt = urllib.parse.quote(request.url.path)
        return RedirectResponse(f"/login?next={nxt}", status_code=303)
    rid, path = request.path_params["rid"], request.path_params["path"]
    res = resource_or_none(web, rid)
    f = next((f for f in res["files"] if f["path"] == path), None) if res else None
    if f is None or not tool_file(f["path"], f["size"]):
        return web.error(request, 404, "no_file")
    if not web.home.blocks.has(cid_from_str(f["cid"])):
        return web.error(request, 404, "not_local")
    make = request.query_params.get("make")
    if make is not None and make not in DRAFTS:
        return web.error(request, 400, "bad_tool")
    name = PurePosixPath(path)
    try:
        data = await trio.to_thread.run_sync(_read, web, f)
        if make is None:
            found = await trio.to_thread.run_sync(_analyse, data, name)
        else:
            draft, filename = await trio.to_thread.run_sync(_draft, data, name, make)
    except tools.ToolError:
        return web.error(request, 400, "tool_cannot_read")
    except (NotFound, ProtocolError, NodeError):
        return web.error(request, 404, "not_local")
    if make is not None:
        ctype = MEDIA_TYPES.get(PurePosixPath(filename).suffix, "text/plain; charset=utf-8")
        return Response(draft, media_type=ctype, headers={
            "content-disposition": _attachment(filename), "content-security-policy": FILE_CSP})
    query = {"based_on": rid, "keywords": ", ".join(found["keywords"])}
    if found["subjects"] and not res["meta"].get("about"):
        query["about"] = ", ".join(found["subjects"])
    adapt = "/publish?" + urllib.parse.urlencode(query)
    return web.render(request, "tools.html", r=res, m=res["meta"], f=f, hint=found["hint"],
                      keywords=found["keywords"], subjects=found["subjects"], adapt=adapt,
                      drafts=DRAFTS)
