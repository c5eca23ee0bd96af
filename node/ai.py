"""The AI assistant (issue 18): the node asks an OpenAI-compatible chat endpoint (a llama.cpp
server on the school PC or at the demonstration school, or a provider's API) to draft an
adaptation of a resource, and relays the answer as it streams in.

The operator sets the endpoint (``schoolmesh ai set``); the API key stays in a file of the
operator's (only its path is stored, and the file must not be readable by others); the key is
never printed.  Every request has size limits and timeouts; every failure is an
:class:`AIError` whose ``key`` names a message the web library shows in the teacher's language.
A finished answer becomes a *draft* (a file under ``HOME/ai-drafts``) that the teacher edits;
nothing is published here.  ``schoolmesh ai use`` points the local engine at a model file
(GGUF) held as a resource of type ``ai-model``, extracted from verified blocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import NodeError

# provenance (meta.tool, specs/records.md §5.2): what a resource drafted by the assistant says
TOOL_NAME = "schoolmesh-ai"   # = node.catalog.AI_TOOL

# limits
MAX_SOURCE_CHARS = 12_000     # the resource text sent to the engine
MAX_CONTEXT_CHARS = 500       # the teacher's local context ("localise")
MAX_OUTPUT_CHARS = 20_000     # the answer kept (the stream stops there)
MAX_TOKENS = 1024             # asked of the engine unless the operator sets another limit
MAX_TOKENS_RANGE = range(16, 8193)
MAX_KEY_BYTES = 4096
CONNECT_TIMEOUT = 5.0         # seconds to reach the engine
READ_TIMEOUT = 60.0           # seconds without a byte from the engine (first token included)
TOTAL_TIMEOUT = 300.0         # seconds for a whole answer
GRADES = range(1, 10)

SETTING_ENDPOINT, SETTING_MODEL, SETTING_KEY_FILE = "ai.endpoint", "ai.model", "ai.key_file"
SETTING_MODEL_FILE, SETTING_MODEL_RESOURCE = "ai.model_file", "ai.model_resource"
SETTING_MAX_TOKENS = "ai.max_tokens"
MODEL_TYPE = "ai-model"
MODEL_SUFFIX = ".gguf"

SYSTEM = ("你是一位帮助中国乡村小学教师改编教学资源的助手。回答用简体中文，内容准确、适合儿童，"
          "不编造事实。你写的是草稿，教师会审阅和修改。")
# task → instructions ({grade} and {context} are filled in from the teacher's form)
TASKS: dict[str, str] = {
    "multigrade": "把下面的教学资源改编为复式班（多个年级同堂）使用：为低年级和高年级分别安排"
                  "学习任务和活动，并说明教师如何在两组之间分配时间。",
    "localise": "把下面教学资源中的例子改成贴近本地学生生活的例子。本地情况：{context}。"
                "保留原来的知识点和难度。",
    "simplify": "把下面的教学资源改写得更简单，适合{grade}年级学生阅读：用常用字、短句子，"
                "保留主要内容。",
    "exercises": "根据下面的教学资源编写5道练习题，并在最后给出答案。",
    "summarise": "下面是一段教学视频的文字稿。请写一份简短的摘要，列出主要知识点。",
}
TRANSCRIPT_SUFFIXES = (".vtt", ".srt")


class AIError(NodeError):
    """The assistant cannot answer; ``key`` names the message (node/web/i18n.py)."""

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key, self.detail = key, detail


# --- configuration ---------------------------------------------------------------------------

def check_endpoint(url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AIError("ai_bad_config", f"endpoint {url!r} is not an http(s) URL "
                      "(example: http://127.0.0.1:8080)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise AIError("ai_bad_config", "the endpoint must not carry a query, fragment or "
                      "credentials (give the key with --api-key-file)")
    return url.strip().rstrip("/")


def read_key(path: Path) -> str:
    """The API key in ``path``: the file must be the operator's alone (no group/other bits)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise AIError("ai_bad_config", f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AIError("ai_bad_config", f"{path} is not a file")
    if st.st_mode & 0o077:
        raise AIError("ai_bad_config", f"{path} is readable by others "
                      f"(mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {path}")
    if st.st_size > MAX_KEY_BYTES:
        raise AIError("ai_bad_config", f"{path} is too big for an API key")
    key = path.read_text("utf-8").strip()
    if not key or any(not c.isprintable() or c.isspace() for c in key):
        raise AIError("ai_bad_config", f"{path} does not hold one API key on one line")
    return key


def set_config(conn: Any, endpoint: str, model: str, key_file: Path | None,
               max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    from . import db
    endpoint = check_endpoint(endpoint)
    if max_tokens not in MAX_TOKENS_RANGE:
        raise AIError("ai_bad_config", f"max tokens must be {MAX_TOKENS_RANGE.start}-"
                      f"{MAX_TOKENS_RANGE.stop - 1}")
    model = model.strip()
    if not model or len(model) > 200 or not model.isprintable():
        raise AIError("ai_bad_config", "the model name must be 1-200 printable characters")
    if key_file is not None:
        key_file = key_file.resolve()
        read_key(key_file)
    with db.write(conn):
        db.set_setting(conn, SETTING_ENDPOINT, endpoint)
        db.set_setting(conn, SETTING_MODEL, model)
        db.set_setting(conn, SETTING_MAX_TOKENS, str(max_tokens))
        if key_file is None:
            conn.execute("DELETE FROM settings WHERE key = ?", (SETTING_KEY_FILE,))
        else:
            db.set_setting(conn, SETTING_KEY_FILE, str(key_file))
    return show_config(conn)


def show_config(conn: Any) -> dict[str, Any]:
    """The configuration, without the key (only whether a key file is set)."""
    from . import db
    return {"endpoint": db.get_setting(conn, SETTING_ENDPOINT),
            "model": db.get_setting(conn, SETTING_MODEL),
            "api_key_file": db.get_setting(conn, SETTING_KEY_FILE),
            "max_tokens": int(db.get_setting(conn, SETTING_MAX_TOKENS) or MAX_TOKENS),
            "model_file": db.get_setting(conn, SETTING_MODEL_FILE),
            "model_resource": db.get_setting(conn, SETTING_MODEL_RESOURCE)}


def clear_config(conn: Any) -> None:
    from . import db
    with db.write(conn):
        conn.execute("DELETE FROM settings WHERE key LIKE 'ai.%'")


def configured(conn: Any) -> bool:
    c = show_config(conn)
    return bool(c["endpoint"] and c["model"])


# --- tasks, instructions, provenance ---------------------------------------------------------

def instructions(task: str, *, grade: int | None = None, context: str = "") -> str:
    """The full instructions of a task (system + task text), as hashed into ``meta.tool``."""
    if task not in TASKS:
        raise AIError("ai_bad_task", f"unknown task {task!r}: give one of {', '.join(TASKS)}")
    context = context.strip()
    if task == "localise":
        if not context:
            raise AIError("ai_need_context")
        if len(context) > MAX_CONTEXT_CHARS:
            raise AIError("ai_too_long", f"local context over {MAX_CONTEXT_CHARS} characters")
    if task == "simplify" and grade not in GRADES:
        raise AIError("ai_bad_grade")
    return SYSTEM + "\n" + TASKS[task].format(grade=grade, context=context)


def messages(task: str, source: str, *, grade: int | None = None, context: str = ""
             ) -> tuple[list[dict[str, str]], str]:
    """The chat messages for ``task`` on ``source`` text, and the instructions."""
    text = instructions(task, grade=grade, context=context)
    if not source.strip():
        raise AIError("ai_no_text")
    if len(source) > MAX_SOURCE_CHARS:
        raise AIError("ai_too_long", f"the text has {len(source)} characters; the assistant "
                      f"takes at most {MAX_SOURCE_CHARS}")
    system, task_text = text.split("\n", 1)
    return [{"role": "system", "content": system},
            {"role": "user", "content": task_text + "\n\n" + source}], text


def provenance(model: str, instructions_text: str) -> dict[str, str]:
    """``meta.tool`` of a resource drafted by the assistant (specs/records.md §5.2)."""
    from importlib.metadata import version
    return {"name": TOOL_NAME, "version": version("schoolmesh"), "model": model,
            "instructionsHash": hashlib.sha256(instructions_text.encode("utf-8")).hexdigest()}


def is_ai_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("name") == TOOL_NAME


# --- the engine ------------------------------------------------------------------------------

async def stream_chat(config: dict[str, Any], chat: list[dict[str, str]]
                      ) -> AsyncIterator[str]:
    """Text deltas of the engine's streamed answer (``/v1/chat/completions``, stream=true).

    Stops quietly at MAX_OUTPUT_CHARS; raises AIError on every failure."""
    import httpx
    import trio
    if not (config.get("endpoint") and config.get("model")):
        raise AIError("ai_not_configured")
    headers = {"accept": "text/event-stream"}
    if config.get("api_key_file"):
        headers["authorization"] = "Bearer " + read_key(Path(config["api_key_file"]))
    body = {"model": config["model"], "messages": chat, "stream": True,
            "max_tokens": config.get("max_tokens") or MAX_TOKENS}
    url = config["endpoint"] + "/v1/chat/completions"
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    sent = 0
    # No cancel scope may span a yield of this generator (its consumer may iterate it from
    # another task), so the whole-answer limit is a deadline checked after each line; each
    # read is bounded by READ_TIMEOUT.
    deadline = trio.current_time() + TOTAL_TIMEOUT
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code != 200:
                    detail = (await resp.aread())[:300].decode("utf-8", "replace")
                    raise AIError("ai_engine_error", f"HTTP {resp.status_code}: {detail}")
                # Read to the end of the stream even after [DONE] or the output limit:
                # leaving httpx's nested stream generators half-read leaks them.
                finished = False
                async with aclosing(resp.aiter_lines()) as lines:
                    async for line in lines:
                        if trio.current_time() > deadline:
                            raise AIError("ai_timeout",
                                          f"no whole answer within {TOTAL_TIMEOUT:.0f} s")
                        if finished or not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            finished = True
                            continue
                        delta = _delta(data)[:MAX_OUTPUT_CHARS - sent]
                        if delta:
                            sent += len(delta)
                            yield delta
                        finished = sent >= MAX_OUTPUT_CHARS
                if not finished:   # e.g. llama-cpp-python when the prompt overflows its context
                    raise AIError("ai_engine_error", "the engine ended its answer without "
                                  "[DONE] (the text may be too long for its context; see "
                                  "the engine's log)")
    except httpx.TimeoutException:
        raise AIError("ai_timeout", f"the engine sent nothing for {READ_TIMEOUT:g} s") \
            from None
    except httpx.HTTPError as exc:
        raise AIError("ai_unreachable", f"{url}: {exc}") from None


def _delta(data: str) -> str:
    try:
        event = json.loads(data)
        if "error" in event:
            raise AIError("ai_engine_error", str(event["error"])[:300])
        choice = event["choices"][0]
        return choice.get("delta", {}).get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise AIError("ai_bad_reply", data[:200]) from None


# --- drafts ----------------------------------------------------------------------------------

def _drafts_dir(home: Any) -> Path:
    return Path(home.path) / "ai-drafts"


def save_draft(home: Any, *, teacher: str, resource: str, task: str, model: str,
               instructions_text: str, text: str) -> str:
    """Keep a finished answer for its teacher to edit; returns the draft's id."""
    from .bundle import write_atomic
    folder = _drafts_dir(home)
    folder.mkdir(mode=0o700, exist_ok=True)
    draft_id = secrets.token_hex(8)
    data = {"teacher": teacher, "resource": resource, "task": task, "model": model,
            "instructions": instructions_text, "text": text, "created": int(time.time())}
    write_atomic(folder / f"{draft_id}.json", json.dumps(data, ensure_ascii=False).encode(),
                 overwrite=False)
    return draft_id


def load_draft(home: Any, draft_id: str) -> dict[str, Any] | None:
    if len(draft_id) != 16 or not all(c in "0123456789abcdef" for c in draft_id):
        return None
    try:
        return json.loads((_drafts_dir(home) / f"{draft_id}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def delete_draft(home: Any, draft_id: str) -> None:
    if load_draft(home, draft_id) is not None:
        (_drafts_dir(home) / f"{draft_id}.json").unlink(missing_ok=True)


# --- models as resources -----------------------------------------------------------------------

def use_model(home: Any, rid: str) -> dict[str, Any]:
    """Point the local engine at the model file of resource ``rid`` (type ``ai-model``):
    its GGUF file is written from verified blocks to ``HOME/ai-models/RID/`` (each block's
    hash is checked as it is read) and the path is stored as the engine's model file."""
    from crypto import cid_from_str
    from . import db, library
    from .errors import NotFound
    res = library.show(home, rid)
    if res["meta"].get("learningResourceType") != MODEL_TYPE:
        raise AIError("ai_not_model", f"{rid} is not a resource of type {MODEL_TYPE}")
    if res["retracted"] or res["signature"] != "valid":
        raise AIError("ai_not_model", f"{rid} is retracted or its signature does not verify")
    models = [f for f in res["files"] if PurePosixPath(f["path"]).suffix.lower() == MODEL_SUFFIX]
    if len(models) != 1:
        raise AIError("ai_not_model", f"{rid} must hold exactly one {MODEL_SUFFIX} file")
    f = models[0]
    if not res["local"]:
        raise NotFound(f"{rid} is not held on this node: fetch it first "
                       f"('schoolmesh get {rid}' or a USB bundle)")
    from protocol import unixfs
    out_dir = Path(home.path) / "ai-models" / rid
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / PurePosixPath(f["path"]).name
    tmp = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as fh:
            size = 0
            for chunk in unixfs.iter_file_chunks(cid_from_str(f["cid"]), home.blocks.get,
                                                 f["size"]):
                fh.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if size != f["size"]:
            raise AIError("ai_not_model", f"{f['path']}: {size} bytes read, record says "
                          f"{f['size']}")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with db.write(home.conn):
        db.set_setting(home.conn, SETTING_MODEL_FILE, str(out))
        db.set_setting(home.conn, SETTING_MODEL_RESOURCE, rid)
        if not db.get_setting(home.conn, SETTING_MODEL):
            db.set_setting(home.conn, SETTING_MODEL, PurePosixPath(f["path"]).stem)
    return {"resource_id": rid, "model_file": str(out), "size": size,
            "sha256": digest.hexdigest(), "title": res["meta"]["title"]}
