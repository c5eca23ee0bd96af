"""Teacher web library over real HTTP on loopback: search pages, video streaming, many browsers.

    .venv/bin/python bench/web.py [--quick] [--resources N]

1. Search pages: a library of N resources (default 100,000) built with bench/search.py's
   synthetic builder; ~300 searches (words, filters, both) as full HTML pages over HTTP.
   Target: p95 < 100 ms end to end.
2. Video streaming: one 256 MiB file published into the home, read whole and in 4 MiB ranges.
   Target: >= 50 MiB/s.
3. 50 concurrent browsers (httpx clients) each loading search + resource pages. Target: no
   errors.
The server is the daemon's own (hypercorn trio worker) serving node.web.app on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import search as S  # noqa: E402

import httpx  # noqa: E402
import trio  # noqa: E402

from node import library  # noqa: E402
from node.home import open_home  # noqa: E402
from node.web.app import WebConfig  # noqa: E402
from node.web.server import serve  # noqa: E402

P95_TARGET_MS = 100.0
STREAM_TARGET = 50.0  # MiB/s
BROWSERS = 50


class BenchNode:
    def __init__(self, home) -> None:
        self.home = home

    async def api_fetch(self, target: str) -> dict:
        return {"id": 0}

    async def api_transfers(self) -> list:
        return []


def queries(n: int) -> list[dict]:
    rnd = random.Random(7)
    out = []
    for i in range(n):
        q: dict = {}
        kind = i % 4
        if kind in (0, 2):
            q["q"] = rnd.choice(S.ZH_TOPICS[:60] + ["fractions", "poetry", "science"])
        if kind in (1, 2):
            q["level"] = rnd.choice(list(S.vocab.LEVELS)[:5])
        if kind == 3:
            q["type"] = rnd.choice(S.vocab.RESOURCE_TYPES)
            q["license"] = "CC-BY-4.0"
        out.append(q)
    return out


async def main_async(args: argparse.Namespace, home_path: Path, video_mib: int) -> dict:
    home = open_home(home_path)
    src = home_path.parent / "video"
    src.mkdir(exist_ok=True)
    with open(src / "lecture.mp4", "wb") as f:
        for _ in range(video_mib):
            f.write(os.urandom(C.MiB))
    rid = library.publish(home, [src], {"title": "bench video"})["resource_id"]
    C.settle()
    out: dict = {}
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: serve(
            BenchNode(home), "127.0.0.1:0", task_status=task_status,
            config=WebConfig.for_home(home_path)))
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            # 1. search pages
            lat = []
            for q in queries(args.queries):
                t0 = time.perf_counter()
                r = await c.get("/", params=q)
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.status_code
            out["search_p50_ms"] = round(C.median(lat), 1)
            out["search_p95_ms"] = round(C.percentile(lat, 95), 1)
            # 2. streaming
            t0 = time.perf_counter()
            n = 0
            async with c.stream("GET", f"/r/{rid}/files/lecture.mp4") as r:
                async for chunk in r.aiter_raw():
                    n += len(chunk)
            dt = time.perf_counter() - t0
            assert n == video_mib * C.MiB
            out["stream_whole_mib_s"] = round(n / C.MiB / dt, 1)
            t0 = time.perf_counter()
            n = 0
            step = 4 * C.MiB
            for off in range(0, video_mib * C.MiB, step):
                r = await c.get(f"/r/{rid}/files/lecture.mp4",
                                headers={"range": f"bytes={off}-{off + step - 1}"})
                assert r.status_code == 206
                n += len(r.content)
            out["stream_ranges_mib_s"] = round(n / C.MiB / (time.perf_counter() - t0), 1)
        # 3. concurrent browsers
        errors = 0
        pages = 0
        t0 = time.perf_counter()

        async def browser(i: int) -> None:
            nonlocal errors, pages
            async with httpx.AsyncClient(base_url=url, timeout=60) as b:
                for q in queries(args.browser_pages)[i % 4:]:
                    for path, params in (("/", q), (f"/r/{rid}", None)):
                        try:
                            r = await b.get(path, params=params)
                            errors += r.status_code != 200
                        except httpx.HTTPError:
                            errors += 1
                        pages += 1
        async with trio.open_nursery() as inner:
            for i in range(BROWSERS):
                inner.start_soon(browser, i)
        out["browsers"] = BROWSERS
        out["browser_pages"] = pages
        out["browser_errors"] = errors
        out["browser_pages_per_s"] = round(pages / (time.perf_counter() - t0), 1)
        nursery.cancel_scope.cancel()
    home.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--resources", type=int)
    args = ap.parse_args()
    n = args.resources or (5_000 if args.quick else 100_000)
    args.queries = 100 if args.quick else 300
    args.browser_pages = 4 if args.quick else 10
    video_mib = 64 if args.quick else 256
    C.header("web library", args.quick)
    tmp = C.make_tmpdir("web")
    try:
        home_path = tmp / "home"
        S.build(home_path, n)
        out = trio.run(main_async, args, home_path, video_mib)
    finally:
        C.rmtree(tmp)
    out["resources"] = n
    print(C.fmt_table(["measure", "value", "target"], [
        ["search page p50 (ms)", out["search_p50_ms"], ""],
        ["search page p95 (ms)", out["search_p95_ms"], f"< {P95_TARGET_MS:.0f}"],
        ["video whole file (MiB/s)", out["stream_whole_mib_s"], f">= {STREAM_TARGET:.0f}"],
        ["video 4 MiB ranges (MiB/s)", out["stream_ranges_mib_s"], f">= {STREAM_TARGET:.0f}"],
        [f"{BROWSERS} browsers: pages / errors", f"{out['browser_pages']} / "
         f"{out['browser_errors']}", "0 errors"],
    ]))
    C.summary("web", out)


if __name__ == "__main__":
    main()
