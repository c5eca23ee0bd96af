"""The AI assistant (issue 18) against a real engine: llama-cpp-python's OpenAI-compatible server
running a tiny random-weight llama model that bench/_ai_engine.py writes with gguf.  The model
itself travels as an ``ai-model`` resource: the engine of this module runs on the file that
``schoolmesh ai use`` extracted from verified blocks.

Whole path: web task → streamed answer (relayed by the served web library) → draft → edit →
publish with provenance → shown on the resource page, found by the AI-assisted filter."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
import trio

from bench._ai_engine import MODEL_NAME, build_tiny_gguf, engine, free_port
from conftest import Cli, corrupt_block
from node import ai, catalog, library
from node.home import init_home
from node.web import auth
from node.web.app import WebConfig
from node.web.server import serve
from test_web import PASSWORD, FakeNode, csrf_of


TOKENS = 96   # llama-cpp-python's streaming slows down with the answer's length; keep it short


@pytest.fixture(scope="module")
def model_home(tmp_path_factory):
    """A home holding the tiny model as an ai-model resource, made the engine's model file
    with ``schoolmesh ai use``."""
    base = tmp_path_factory.mktemp("model")
    src = base / "src"
    src.mkdir()
    build_tiny_gguf(src / "tiny-llama.gguf")
    (src / "LICENSE.txt").write_text("random weights, CC0\n", "utf-8")
    home = init_home(base / "home", "示范学校", "demonstration")
    res = library.publish(home, [src], {"title": "Tiny llama", "license": "CC0-1.0",
                                        "inLanguage": "zh-CN",
                                        "learningResourceType": "ai-model"})
    home.close()
    cli = Cli(base / "home")
    used = cli.json("ai", "use", res["resource_id"])
    return {"path": base / "home", "res": res, "used": used, "src": src, "cli": cli}


@pytest.fixture(scope="module")
def engine_url(model_home):
    with engine(Path(model_home["used"]["model_file"])) as url:
        yield url


def test_ai_use_extracts_the_verified_model(model_home):
    used, src = model_home["used"], model_home["src"]
    data = (src / "tiny-llama.gguf").read_bytes()
    assert Path(used["model_file"]).read_bytes() == data
    assert used["sha256"] == hashlib.sha256(data).hexdigest()
    shown = model_home["cli"].json("ai", "show")
    assert shown["model_file"] == used["model_file"]
    assert shown["model_resource"] == model_home["res"]["resource_id"]


def test_ai_use_refuses_what_is_not_a_held_verified_model(tmp_path):
    cli = Cli(tmp_path / "h")
    home = init_home(tmp_path / "h", "龙泉小学", "school")
    src = tmp_path / "m"
    src.mkdir()
    (src / "m.gguf").write_bytes(os.urandom(300_000))
    model = library.publish(home, [src], {"title": "M", "license": "MIT",
                                          "learningResourceType": "ai-model"})
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("课文", "utf-8")
    lesson = library.publish(home, [tmp_path / "t"], {"title": "L", "license": "MIT"})
    home.close()
    assert "not a resource of type ai-model" in cli.fail("ai", "use", lesson["resource_id"])
    corrupt_block(tmp_path / "h", model["files"][0]["cid"])
    assert "corrupted" in cli.fail("ai", "use", model["resource_id"])
    assert not any((tmp_path / "h" / "ai-models").rglob("*.gguf"))
    assert "ai.model_file" not in json.dumps(cli.json("ai", "show"))  # nothing pointed at it
    assert cli.json("ai", "show")["model_file"] is None


def test_cli_set_show_clear(tmp_path):
    cli = Cli(tmp_path / "h")
    init_home(tmp_path / "h", "龙泉小学", "school").close()
    key = tmp_path / "key"
    key.write_text("sk-secret-123\n")
    key.chmod(0o644)
    err = cli.fail("ai", "set", "--endpoint", "http://127.0.0.1:8080", "--model", "qwen",
                   "--api-key-file", key)
    assert "readable by others" in err and "sk-secret" not in err
    key.chmod(0o600)
    out = cli.ok("ai", "set", "--endpoint", "http://127.0.0.1:8080/", "--model", "qwen",
                 "--api-key-file", key).stdout
    assert "sk-secret" not in out and str(key) in out
    shown = cli.json("ai", "show")
    assert shown["endpoint"] == "http://127.0.0.1:8080" and shown["model"] == "qwen"
    assert "sk-secret" not in json.dumps(shown)
    assert "not an http(s) URL" in cli.fail("ai", "set", "--endpoint", "ftp://x",
                                            "--model", "m")
    cli.ok("ai", "clear")
    assert cli.json("ai", "show")["endpoint"] is None


# --- the web path -----------------------------------------------------------------------------

@pytest.fixture
def school(tmp_path):
    home = init_home(tmp_path / "home", "龙泉小学", "school")
    auth.add_teacher(home.conn, "李老师", PASSWORD)
    src = tmp_path / "src"
    src.mkdir()
    (src / "课文.txt").write_text("春天来了，小草从地里钻出来。村子里的孩子们去田里看麦苗。\n"
                                "读课文，认生字，写词语。\n", "utf-8")
    (src / "lecture.vtt").write_text("WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\n今天我们学习"
                                     "分数。\n", "utf-8")
    res = library.publish(home, [src], {"title": "春天", "about": ["语文"],
                                        "educationalLevel": ["lower-primary"],
                                        "license": "CC-BY-4.0"})
    yield home, res
    home.close()


async def _served(nursery, home):
    return await nursery.start(serve, FakeNode(home), "127.0.0.1:0")


async def _sign_in(c: httpx.AsyncClient) -> None:
    page = await c.get("/login")
    r = await c.post("/login", data={"csrf": csrf_of(page.text), "name": "李老师",
                                     "password": PASSWORD})
    assert r.status_code == 303, r.text


async def _events(c: httpx.AsyncClient, url: str, form: dict) -> list[tuple[str, object]]:
    """POST a task and read the server-sent events as they arrive."""
    out: list[tuple[str, object]] = []
    async with c.stream("POST", url, data=form) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
    return out


async def test_task_streams_into_a_draft_published_with_provenance(school, engine_url):
    home, res = school
    ai.set_config(home.conn, engine_url, MODEL_NAME, None, max_tokens=TOKENS)
    rid = res["resource_id"]
    async with trio.open_nursery() as nursery:
        base = await _served(nursery, home)
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            page = await c.get(f"/r/{rid}")
            assert "/ai" not in page.text           # the assistant is for teachers
            await _sign_in(c)
            page = await c.get(f"/r/{rid}")
            assert f'href="/r/{rid}/ai"' in page.text
            form_page = await c.get(f"/r/{rid}/ai")
            assert "简化到 N 年级" in form_page.text and MODEL_NAME in form_page.text
            events = await _events(c, f"/r/{rid}/ai", {
                "csrf": csrf_of(form_page.text), "task": "simplify", "grade": "2",
                "context": "", "file": "课文.txt"})
            chunks = [d for e, d in events if e == "chunk"]
            assert len(chunks) > 1, events           # streamed, not one block
            assert events[-1][0] == "done", events[-1]
            draft_url = events[-1][1]["draft"]
            answer = "".join(chunks).strip()
            assert answer

            draft = await c.get(draft_url)
            assert draft.status_code == 200
            assert "基于《春天》" in draft.text and MODEL_NAME in draft.text
            edited = "春天到了。小草长出来了。（李老师改过）"
            r = await c.post(draft_url, data={
                "csrf": csrf_of(draft.text), "action": "publish", "title": "春天（简化）",
                "text": edited, "about": "语文", "keywords": "春天",
                "educationalLevel": "lower-primary"})
            assert r.status_code == 303, r.text
            new_rid = r.headers["location"].rsplit("/", 1)[1]
            shown = await c.get(f"/r/{new_rid}")
            assert f"由 AI 辅助改编（{MODEL_NAME}），李老师审阅" in shown.text
            en = await c.get(f"/r/{new_rid}", headers={"accept-language": "en"})
            assert f"AI-assisted adaptation ({MODEL_NAME}), reviewed by 李老师" in en.text
            assert (await c.get(draft_url)).status_code == 404   # used up
            found = await c.get("/", params={"ai": "1"})
            assert "春天（简化）" in found.text and ">春天<" not in found.text
        nursery.cancel_scope.cancel()

    meta = library.show(home, new_rid)["meta"]
    assert meta["isBasedOn"] == [rid] and meta["creator"] == "李老师"
    assert meta["tool"] == ai.provenance(MODEL_NAME, ai.instructions("simplify", grade=2))
    got = library.show(home, new_rid)["files"]
    assert [f["path"] for f in got] == ["ai-simplify.md"]
    assert [r["resource_id"] for r in catalog.search(home.conn, ai_assisted=True)] == [new_rid]


async def test_summarise_uses_the_transcript_and_output_is_capped(school, engine_url,
                                                                  monkeypatch):
    home, res = school
    monkeypatch.setattr(ai, "MAX_OUTPUT_CHARS", 40)
    ai.set_config(home.conn, engine_url, MODEL_NAME, None, max_tokens=TOKENS)
    from node.web.assist import _text_of
    vtt = (res["files"] and "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\n今天我们学习分数。\n")
    assert _text_of(vtt.encode(), "lecture.vtt") == "今天我们学习分数。"
    chat, _ = ai.messages("summarise", "今天我们学习分数。")
    text = "".join([d async for d in ai.stream_chat(ai.show_config(home.conn), chat)])
    assert 0 < len(text) <= 40


async def test_errors_in_the_teachers_language(school, tmp_path, monkeypatch):
    home, res = school
    rid = res["resource_id"]
    async with trio.open_nursery() as nursery:
        base = await _served(nursery, home)
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            await _sign_in(c)
            page = await c.get(f"/r/{rid}/ai")
            assert "尚未设置 AI 助手" in page.text
            csrf = csrf_of((await c.get("/publish")).text)
            form = {"csrf": csrf, "task": "simplify", "grade": "2", "context": "", "file": ""}
            r = await c.post(f"/r/{rid}/ai", data=form)
            assert r.status_code == 503 and "尚未设置 AI 助手" in r.text

            # endpoint down: nothing listens on the port
            ai.set_config(home.conn, f"http://127.0.0.1:{free_port()}", "m", None)
            events = await _events(c, f"/r/{rid}/ai", form)
            assert events[-1][0] == "error" and "无法连接 AI 引擎" in events[-1][1]["message"]
            en = {"accept-language": "en"}
            r = await c.post(f"/r/{rid}/ai", data=form, headers=en)
            assert "The AI engine cannot be reached" in r.text

            # an engine that accepts and never answers: the read timeout
            listener = trio.socket.socket()
            await listener.bind(("127.0.0.1", 0))
            listener.listen(5)
            monkeypatch.setattr(ai, "READ_TIMEOUT", 0.5)
            ai.set_config(home.conn, f"http://127.0.0.1:{listener.getsockname()[1]}", "m",
                          None)
            events = await _events(c, f"/r/{rid}/ai", form)
            assert events[-1][0] == "error" and "AI 引擎响应太慢" in events[-1][1]["message"]
            listener.close()

            # oversize input, missing context, bad task, bad grade: refused before asking
            big = tmp_path / "big"
            big.mkdir()
            (big / "long.txt").write_text("字" * (ai.MAX_SOURCE_CHARS + 1), "utf-8")
            long_rid = library.publish(home, [big], {"title": "长", "license": "MIT"})[
                "resource_id"]
            r = await c.post(f"/r/{long_rid}/ai", data=form)
            assert r.status_code == 400 and "文本太长" in r.text
            r = await c.post(f"/r/{rid}/ai", data=form | {"task": "localise"},
                             headers=en)
            assert r.status_code == 400 and "Describe the local context" in r.text
            r = await c.post(f"/r/{rid}/ai", data=form | {"task": "localise",
                                                           "context": "x" * 501})
            assert r.status_code == 400 and "文本太长" in r.text
            assert (await c.post(f"/r/{rid}/ai", data=form | {"task": "poem"})).status_code \
                == 400
            assert (await c.post(f"/r/{rid}/ai", data=form | {"grade": "12"})).status_code \
                == 400
            assert (await c.post(f"/r/{rid}/ai", data=form | {"csrf": "x"})).status_code \
                == 403
            assert (await c.get("/ai/drafts/0123456789abcdef")).status_code == 404
        nursery.cancel_scope.cancel()


def test_subject_suggestions_and_cli_filter(tmp_path):
    from node import tools
    assert tools.subjects("把一个长方形平均分成4份，每份是它的四分之一。计算分数加法。") == ["数学"]
    assert tools.subjects("读课文，认生字，写词语，朗读古诗。")[0] == "语文"
    assert tools.subjects("今天天气很好。") == []
    cli = Cli(tmp_path / "h")
    init_home(tmp_path / "h", "龙泉小学", "school").close()
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "练习.txt").write_text("计算分数加法和减法：1/2 + 1/4，长方形的面积。",
                                           "utf-8")
    out = cli.ok("publish", tmp_path / "f", "--title", "练习").stdout
    assert "suggested subjects: 数学" in out
    assert cli.json("search", "--ai-assisted") == []
    assert len(cli.json("search")) == 1


async def test_engine_refusal_is_reported(school, engine_url):
    """A text within the node's limit but beyond the engine's context window: the engine
    (llama-cpp-python) starts a 200 stream and ends it without [DONE]; shown as a refusal."""
    home, _ = school
    ai.set_config(home.conn, engine_url, MODEL_NAME, None, max_tokens=TOKENS)
    chat, _ = ai.messages("exercises", "龘" * 3000)   # byte tokens: ~9,000 > n_ctx
    with pytest.raises(ai.AIError) as caught:
        async for _ in ai.stream_chat(ai.show_config(home.conn), chat):
            pass
    assert caught.value.key == "ai_engine_error" and "without [DONE]" in caught.value.detail
