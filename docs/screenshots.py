"""Regenerate docs/screenshots/*.png: the main pages of the teacher web library, in Chinese and
English, desktop and phone width (with a teacher's own resources, a slide preview and the
adapt form on a phone).

Starts a throwaway node (temporary home, 127.0.0.1 only) that publishes the lessons in samples/
(plus the small test clip, so the resource page shows a video player), then drives Debian's
headless ``chromium`` with Playwright: signs in, posts a request and a piece of feedback, and
photographs the pages.  Run from the repository root::

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import trio
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node import library  # noqa: E402
from node.daemon import Node, Options  # noqa: E402
from node.home import init_home  # noqa: E402
from node.web import auth  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "screenshot password"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars"]
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}


class ThrowawayNode:
    """A node with sample resources, served by trio on a thread of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url: str | None = None
        self.ids: dict[str, str] = {}
        self.up = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> ThrowawayNode:
        self.thread.start()
        self.up.wait(120)
        if self.url is None:
            raise RuntimeError(f"the node did not start: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:
            self.error = exc
            self.up.set()

    async def _serve(self) -> None:
        home = init_home(self.tmp / "home", "龙泉小学", "school")
        auth.add_teacher(home.conn, "李老师", PASSWORD)
        lesson = self.tmp / "分数的初步认识"
        shutil.copytree(ROOT / "samples" / "分数的初步认识", lesson)
        shutil.copy(ROOT / "tests" / "data" / "clip.webm", lesson / "折纸演示.webm")
        (lesson / "课件.pptx").write_bytes(_slides())
        frac = library.publish(home, [lesson], {
            "title": "分数的初步认识（第一课时）", "about": ["数学"],
            "educationalLevel": ["lower-primary"], "learningResourceType": "lesson-plan",
            "creator": "李老师", "keywords": ["分数", "折纸"], "timeRequired": "PT40M",
            "description": "三年级上册：用折纸认识几分之一，含课堂练习和折纸演示视频。"})
        library.publish(home, [ROOT / "samples" / "water-cycle"], {
            "title": "The Water Cycle", "about": ["science"],
            "educationalLevel": ["upper-primary"], "inLanguage": "en",
            "learningResourceType": "lesson-plan", "license": "CC-BY-SA-4.0"})
        library.publish(home, [ROOT / "samples" / "分数的初步认识" / "练习题.txt"], {
            "title": "分数练习（复式班改编）", "about": ["数学"],
            "educationalLevel": ["lower-primary"], "learningResourceType": "worksheet",
            "isBasedOn": [frac["resource_id"]]})
        self.ids["frac"] = frac["resource_id"]
        _community(home)
        try:
            async with trio.open_nursery() as nursery:
                node = await nursery.start(Node(home, Options(
                    listen=["/ip4/127.0.0.1/tcp/0"], web="127.0.0.1:0")).serve)
                self.url = node.web_url
                self.up.set()
                await trio.to_thread.run_sync(self.stop.wait)
                nursery.cancel_scope.cancel()
        finally:
            home.close()


def _slides() -> bytes:
    """Three slides (python-pptx), so the resource has an Office file to preview."""
    import io

    import pptx
    deck = pptx.Presentation()
    for title, text in (("分数的初步认识", "三年级上册 · 第一课时"),
                        ("折一折", "把一张纸平均分成 2 份，每份是它的二分之一"),
                        ("练一练", "涂色表示四分之一")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _community(home: Any) -> None:
    """A community founded by this node with two village schools admitted (their profiles
    replicated), and one subscription: what the Community page shows."""
    from crypto import SchoolKey
    from node import community, db, feeds
    from node.home import now_ms
    from protocol import records
    cid = community.create(home, "青山片区结对帮扶")["community_id"]
    for name in ("青山村小学", "石岭村小学"):
        key = SchoolKey.generate()
        profile = records.sign_entry(key, seq=1, prev=None, time=now_ms(), kind="profile",
                                     body={"name": name, "role": "school"})
        with db.write(home.conn) as conn:
            feeds.append(conn, profile)
        library.append_entry(home, records.KIND_CERTIFICATE, {
            "community": cid, "school": key.school_id, "role": "member", "issued": now_ms()})
    community.subscribe(home, "科学", "upper-primary")


def shoot(page: Page, name: str) -> None:
    path = OUT / f"{name}.png"
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path))
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="schoolmesh-shots-") as tmp, \
            ThrowawayNode(Path(tmp)) as node, sync_playwright() as p:
        url, frac = node.url, node.ids["frac"]
        ctx = p.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            locale="zh-CN", viewport=DESKTOP)
        ctx.set_default_timeout(20_000)
        page = ctx.new_page()
        # sign in; a request on the board and one piece of feedback, as a teacher would
        page.goto(url + "/login")
        page.fill("#name", "李老师")
        page.fill("#password", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url(url + "/")
        page.goto(url + "/requests")
        page.fill("#subject", "科学")
        page.select_option("#level", "upper-primary")
        page.fill("#description", "需要一个关于水循环的小实验视频，适合五年级。")
        page.click("main form button[type=submit]")
        page.goto(f"{url}/r/{frac}")
        page.select_option("#rating", "5")
        page.fill("#comment", "折纸环节学生很投入。")
        page.click("#feedback button[type=submit]")
        page.wait_for_selector("ul.feedback")

        for lang in ("zh-CN", "en"):
            page.goto(f"{url}/lang/{lang}?next=/")
            tag = "zh" if lang == "zh-CN" else "en"
            for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                page.set_viewport_size(viewport)
                page.goto(url + "/?subject=" + ("数学" if lang == "zh-CN" else ""))
                shoot(page, f"search-{tag}-{size}")
                page.goto(f"{url}/r/{frac}")
                page.wait_for_function("document.querySelector('video').readyState >= 2")
                page.wait_for_timeout(300)  # the first frame painted, not a spinner
                shoot(page, f"resource-{tag}-{size}")
            page.set_viewport_size(PHONE)
            page.goto(url + "/mine")
            shoot(page, f"mine-{tag}-phone")
            page.goto(f"{url}/r/{frac}/view/%E8%AF%BE%E4%BB%B6.pptx")   # 课件.pptx
            page.wait_for_selector("div.preview[data-state=ready]", timeout=180_000)
            shoot(page, f"preview-{tag}-phone")
            page.goto(f"{url}/publish?based_on={frac}")
            shoot(page, f"publish-{tag}-phone")
            page.set_viewport_size(DESKTOP)
            page.goto(f"{url}/publish?based_on={frac}")
            shoot(page, f"publish-{tag}-desktop")
            page.goto(url + "/requests")
            shoot(page, f"requests-{tag}-desktop")
            page.goto(url + "/community")
            shoot(page, f"community-{tag}-desktop")
        ctx.close()


if __name__ == "__main__":
    main()
