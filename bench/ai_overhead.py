"""The node's per-request overhead for the AI assistant: web → engine → page, against calling
the engine directly, in the same run, with the same tiny model (bench/_ai_engine.py).

    .venv/bin/python bench/ai_overhead.py [--quick] [-n N]

Direct: POST the engine's /v1/chat/completions (stream=true) with the messages the node would
send, read to [DONE].  Through the node: a signed-in teacher POSTs the task to the served web
library (hypercorn, 127.0.0.1), which reads the resource's text, asks the engine, relays the
stream as server-sent events and stores the draft; read to the ``done`` event.  Both answers run
to the same token limit (the model makes end-of-text unlikely), so the difference of the medians
is the node's overhead.  Also the median time to the first chunk both ways.  Never fails on
timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common as C  # noqa: E402
from _ai_engine import MODEL_NAME, build_tiny_gguf, engine  # noqa: E402

import httpx  # noqa: E402
import trio  # noqa: E402

from node import ai, library  # noqa: E402
from node.home import init_home  # noqa: E402
from node.web import auth  # noqa: E402
from node.web.server import serve  # noqa: E402

PASSWORD = "correct horse battery"
TEXT = "春天来了，小草从地里钻出来。村子里的孩子们去田里看麦苗。读课文，认生字，写词语。\n"


class BenchNode:
    def __init__(self, home) -> None:
        self.home = home

    def teacher_urls(self) -> list[str]:
        return []


async def _direct(client: httpx.AsyncClient, url: str, chat: list, tokens: int
                  ) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    body = {"model": MODEL_NAME, "messages": chat, "stream": True, "max_tokens": tokens}
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data:") and first is None:
                first = time.perf_counter() - t0
            if line.strip() == "data: [DONE]":
                break
    return time.perf_counter() - t0, first or 0.0


async def _via_node(client: httpx.AsyncClient, path: str, form: dict) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    done = False
    async with client.stream("POST", path, data=form) as r:
        if r.status_code != 200:
            raise SystemExit(f"node answered {r.status_code}")
        async for line in r.aiter_lines():
            if line.startswith("event: chunk") and first is None:
                first = time.perf_counter() - t0
            if line.startswith("event: done"):
                done = True
            if line.startswith("event: error"):
                raise SystemExit(f"node error: {line}")
    if not done:
        raise SystemExit("node stream ended without a draft")
    return time.perf_counter() - t0, first or 0.0


async def run(n: int, tokens: int, tmp: Path) -> dict:
    home = init_home(tmp / "home", "龙泉小学", "school")
    auth.add_teacher(home.conn, "li", PASSWORD)
    (tmp / "src").mkdir()
    (tmp / "src" / "课文.txt").write_text(TEXT, "utf-8")
    rid = library.publish(home, [tmp / "src"], {"title": "春天", "license": "CC-BY-4.0"})[
        "resource_id"]
    model = build_tiny_gguf(tmp / "tiny.gguf")
    chat, _ = ai.messages("simplify", TEXT.strip(), grade=2)
    with engine(model) as url:
        ai.set_config(home.conn, url, MODEL_NAME, None, max_tokens=tokens)
        async with trio.open_nursery() as nursery:
            base = await nursery.start(serve, BenchNode(home), "127.0.0.1:0")
            async with httpx.AsyncClient(base_url=base, timeout=120) as web, \
                    httpx.AsyncClient(timeout=120) as direct:
                import re
                page = await web.get("/login")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                await web.post("/login", data={"csrf": csrf, "name": "li",
                                               "password": PASSWORD})
                page = await web.get(f"/r/{rid}/ai")   # the signed-in session's token
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                form = {"csrf": csrf, "task": "simplify", "grade": "2", "context": "",
                        "file": "课文.txt"}
                await _direct(direct, url, chat, tokens)            # warm-up both ways
                await _via_node(web, f"/r/{rid}/ai", form)
                d_tot, d_first, w_tot, w_first = [], [], [], []
                for _ in range(n):                          # interleaved
                    t, f = await _direct(direct, url, chat, tokens)
                    d_tot.append(t)
                    d_first.append(f)
                    t, f = await _via_node(web, f"/r/{rid}/ai", form)
                    w_tot.append(t)
                    w_first.append(f)
            nursery.cancel_scope.cancel()
    home.close()
    med = statistics.median
    return {"n": n, "max_tokens": tokens,
            "direct_ms": round(med(d_tot) * 1000, 1),
            "node_ms": round(med(w_tot) * 1000, 1),
            "overhead_ms": round((med(w_tot) - med(d_tot)) * 1000, 1),
            "direct_first_chunk_ms": round(med(d_first) * 1000, 1),
            "node_first_chunk_ms": round(med(w_first) * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 requests each way")
    ap.add_argument("-n", type=int, default=20, help="requests each way (default 20)")
    ap.add_argument("--tokens", type=int, default=128,
                    help="answer length in tokens (default 128; llama-cpp-python's streaming "
                         "slows down on long answers, which would hide the node's share)")
    args = ap.parse_args()
    n = 5 if args.quick else args.n
    tmp = C.make_tmpdir("ai")
    try:
        result = trio.run(run, n, args.tokens, tmp)
    finally:
        C.rmtree(tmp)
    print(f"direct engine:   median {result['direct_ms']} ms per answer "
          f"(first chunk {result['direct_first_chunk_ms']} ms)")
    print(f"through the node: median {result['node_ms']} ms per answer "
          f"(first chunk {result['node_first_chunk_ms']} ms)")
    print(f"node overhead:   {result['overhead_ms']} ms per request (median of {n}, "
          f"{result['max_tokens']} tokens each)")
    print("SUMMARY " + json.dumps({"bench": "ai_overhead", **result}))


if __name__ == "__main__":
    main()
