"""The AI assistant in the web library (issue 18): a signed-in teacher picks a task on a resource
this node holds, sees the engine's answer stream in, edits the draft, and publishes it as an
adaptation that records the tool (``meta.tool``) and the source (``isBasedOn``).

``POST /r/{rid}/ai`` relays the engine's stream (node/ai.py) as server-sent events:
``event: chunk`` (data: a JSON string), then ``event: done`` (data: ``{"draft": URL}``) or
``event: error`` (data: ``{"message": ...}`` in the teacher's language).  Problems found before
the engine is asked (no configuration, bad task, text too long) are an error page (400/503).
Nothing is published until the teacher posts the draft form.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from node import ai, library, tools
from node.errors import NodeError, NotFound
from node.teachers import signing_as
from protocol import records, vocab
from protocol.errors import ProtocolError

from . import i18n
from .drafts import _read
from .pages import Web, resource_or_none
from .teach import _need_teacher, read_form

MAX_DRAFT_FORM_BYTES = 512 * 1024   # the edited draft (≤ MAX_OUTPUT_CHARS, url-encoded) + meta
_CUE = re.compile(r"^\s*(\d+|WEBVTT.*|NOTE.*|[\d:.,]+\s*-->\s*[\d:.,]+.*)\s*$")


def _transcript(name: str) -> bool:
    p = PurePosixPath(name)
    return p.suffix.lower() in ai.TRANSCRIPT_SUFFIXES or any(
        w in p.stem.lower() for w in ("transcript", "文字稿", "字幕"))


def _readable(f: dict[str, Any]) -> bool:
    suffix = PurePosixPath(f["path"]).suffix.lower()
    return (suffix in (*tools.TEXT_SUFFIXES, tools.DOCX_SUFFIX, *ai.TRANSCRIPT_SUFFIXES)
            and f["size"] <= tools.MAX_INPUT_BYTES)


def _text_of(data: bytes, path: str) -> str:
    p = PurePosixPath(path)
    if p.suffix.lower() in ai.TRANSCRIPT_SUFFIXES:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise tools.ToolError(f"{path}: not UTF-8 text") from None
        return "\n".join(line for line in text.splitlines()
                         if line.strip() and not _CUE.match(line))
    return tools.document_text(data, p)


def _source_text(web: Web, res: dict[str, Any], task: str, path: str) -> str:
    """The text the task works on: the chosen file, else every readable file (for
    "summarise", the transcripts only)."""
    files = [f for f in res["files"] if _readable(f)]
    if task == "summarise":
        files = [f for f in files if _transcript(f["path"])]
    if path:
        files = [f for f in files if f["path"] == path]
    parts, total = [], 0
    for f in files:
        text = _text_of(_read(web, f), f["path"])
        parts.append(text)
        total += len(text)
        if total > ai.MAX_SOURCE_CHARS:
            break   # too long already: ai.messages says so
    return "\n\n".join(parts)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def assistant(request: Request) -> Response:
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect   # the answer becomes a resource the teacher signs: key unsealed
    teacher = web.teacher(request) or ""
    res = resource_or_none(web, request.path_params["rid"])
    if res is None:
        return web.error(request, 404, "no_resource")
    if not res["local"]:
        return web.error(request, 404, "not_local")
    config = ai.show_config(web.home.conn)
    if request.method == "GET":
        files = [f["path"] for f in res["files"] if _readable(f)]
        return web.render(request, "ai.html", r=res, m=res["meta"], files=files,
                          tasks=list(ai.TASKS), configured=ai.configured(web.home.conn),
                          config=config)
    form = await read_form(request)
    if form is None:
        return web.error(request, 403, "bad_csrf")
    one = {k: (form.get(k) or [""])[0].strip() for k in ("task", "grade", "context", "file")}
    t = i18n.translator(web.lang(request))
    try:
        if not ai.configured(web.home.conn):
            raise ai.AIError("ai_not_configured")
        grade = int(one["grade"]) if one["grade"].isdigit() else None
        ai.instructions(one["task"], grade=grade, context=one["context"])  # checks the form
        source = await trio.to_thread.run_sync(_source_text, web, res, one["task"], one["file"])
        chat, instructions = ai.messages(one["task"], source, grade=grade,
                                         context=one["context"])
    except ai.AIError as exc:
        status = 503 if exc.key == "ai_not_configured" else 400
        return web.error(request, status, exc.key, detail=exc.detail)
    except tools.ToolError:
        return web.error(request, 400, "tool_cannot_read")
    except (NotFound, ProtocolError, NodeError):
        return web.error(request, 404, "not_local")

    async def events() -> AsyncIterator[bytes]:
        parts: list[str] = []
        try:
            async for delta in ai.stream_chat(config, chat):
                parts.append(delta)
                yield _sse("chunk", delta)
            text = "".join(parts).strip()
            if not text:
                raise ai.AIError("ai_bad_reply", "empty answer")
            draft = await trio.to_thread.run_sync(lambda: ai.save_draft(
                web.home, teacher=teacher, resource=res["resource_id"], task=one["task"],
                model=config["model"], instructions_text=instructions, text=text))
            yield _sse("done", {"draft": f"/ai/drafts/{draft}"})
        except ai.AIError as exc:
            yield _sse("error", {"key": exc.key,
                                 "message": t(exc.key).format(detail=exc.detail)})

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


def _draft_values(web: Web, d: dict[str, Any], src: dict[str, Any] | None,
                  t: Any) -> dict[str, Any]:
    m = src["meta"] if src else {}
    title = f"{m.get('title', '')}（{t('ai_task_' + d['task'])}）".strip("（）")[:200]
    about = m.get("about") or tools.subjects(d["text"])
    return {"title": title, "text": d["text"], "about": ", ".join(about),
            "keywords": ", ".join(m.get("keywords", [])),
            "educationalLevel": m.get("educationalLevel", [])}


async def draft_page(request: Request) -> Response:
    web: Web = request.app.state.web
    if (redirect := _need_teacher(web, request)) is not None:
        return redirect   # the answer becomes a resource the teacher signs: key unsealed
    teacher = web.teacher(request) or ""
    did = request.path_params["did"]
    d = ai.load_draft(web.home, did)
    if d is None or d["teacher"] != teacher:
        return web.error(request, 404, "ai_no_draft")
    src = resource_or_none(web, d["resource"])
    t = i18n.translator(web.lang(request))
    if request.method == "GET":
        return web.render(request, "ai_draft.html", d=d, did=did, src=src,
                          v=_draft_values(web, d, src, t), error=None)
    form = await read_form(request, MAX_DRAFT_FORM_BYTES)
    if form is None:
        return web.error(request, 403, "bad_csrf")

    def one(k: str) -> str:
        return (form.get(k) or [""])[0].strip()
    if one("action") == "discard":
        await trio.to_thread.run_sync(ai.delete_draft, web.home, did)
        return RedirectResponse(f"/r/{d['resource']}", status_code=303)
    text = one("text").replace("\r\n", "\n")
    values = {"title": one("title"), "text": text, "about": one("about"),
              "keywords": one("keywords"),
              "educationalLevel": [v for v in form.get("educationalLevel", []) if v]}
    if not text:
        return web.render(request, "ai_draft.html", status=400, d=d, did=did, src=src,
                          v=values, error=t("ai_empty"))
    if len(text) > ai.MAX_OUTPUT_CHARS:
        return web.render(request, "ai_draft.html", status=400, d=d, did=did, src=src, v=values,
                          error=t("ai_too_long").format(detail=f"> {ai.MAX_OUTPUT_CHARS}"))

    def listed(s: str) -> list[str]:
        return list(dict.fromkeys(x.strip() for x in s.replace("，", ",").split(",")
                                  if x.strip()))
    m = src["meta"] if src else {}
    meta: dict[str, Any] = {
        "title": values["title"], "creator": teacher,
        "inLanguage": m.get("inLanguage", "zh-CN"),
        "license": m.get("license") if m.get("license") in vocab.LICENSES
        else vocab.DEFAULT_LICENSE,
        "isBasedOn": [d["resource"]],
        "tool": ai.provenance(d["model"], d["instructions"])}
    for key, items in (("about", listed(values["about"])),
                       ("keywords", listed(values["keywords"])),
                       ("educationalLevel", list(dict.fromkeys(values["educationalLevel"])))):
        if items:
            meta[key] = items
    try:
        records.validate_meta(meta)
    except ProtocolError as exc:
        return web.render(request, "ai_draft.html", status=400, d=d, did=did, src=src,
                          v=values, error=str(exc))
    from .upload import in_own_connection
    folder = web.config.upload_dir / f"{secrets.token_hex(8)}.{os.getpid()}"
    try:
        (folder / "files").mkdir(mode=0o700, parents=True)
        (folder / "files" / f"ai-{d['task']}.md").write_text(text + "\n", "utf-8")
        files = folder / "files"
        with signing_as(web.signer(request)):   # the reviewing teacher signs it too
            result = await trio.to_thread.run_sync(in_own_connection, web.home,
                                                   lambda home: library.publish(
                                                       home, [files], meta))
    except (NodeError, ProtocolError, OSError) as exc:
        return web.render(request, "ai_draft.html", status=400, d=d, did=did, src=src,
                          v=values, error=str(exc))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    await trio.to_thread.run_sync(ai.delete_draft, web.home, did)
    return RedirectResponse(f"/r/{result['resource_id']}", status_code=303)
