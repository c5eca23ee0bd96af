"""The teacher web library in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

One browser per module.  Playwright's sync API must stay on the thread that started it, so the
browser lives in its own thread and each test hands it functions to run (``Browser.run``) while
the test's trio loop serves a real node on 127.0.0.1.  Cookies are cleared at every test start
(cookies do not separate ports, and each test has its own node).
"""

from __future__ import annotations

import queue
import re
import shutil
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import pytest
import trio

from node import library
from node.home import init_home
from node.web import auth

try:
    from playwright.sync_api import BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parents[1] / "samples"
PASSWORD = "correct horse battery"
STEP_SECONDS = 45       # one browser step (a page or a short flow)
TEST_SECONDS = 120      # a whole test, node start included
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed "
                       "(pip install -e '.[test]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium: `make test` installs "
                       "Debian's chromium (apt-get install chromium)"),
]


class Browser:
    """A headless Chromium on a thread of its own; ``await run(fn)`` calls ``fn(context)`` there."""

    def __init__(self, user_data_dir: Path) -> None:
        self.user_data_dir = user_data_dir
        self.jobs: queue.Queue[tuple[Callable[[BrowserContext], Any], Future] | None] = \
            queue.Queue()
        self.ready: Future = Future()
        self.thread = threading.Thread(target=self._main, name="chromium", daemon=True)
        self.thread.start()
        self.ready.result(timeout=60)

    def _main(self) -> None:
        try:
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(
                    str(self.user_data_dir), executable_path=CHROMIUM, headless=True,
                    args=ARGS, locale="zh-CN", viewport={"width": 1024, "height": 800})
                ctx.set_default_timeout(15_000)
                self.ready.set_result(True)
                try:
                    while (job := self.jobs.get()) is not None:
                        fn, fut = job
                        if fut.set_running_or_notify_cancel():
                            try:
                                fut.set_result(fn(ctx))
                            except BaseException as exc:  # handed to the test
                                fut.set_exception(exc)
                finally:
                    ctx.close()
        except BaseException as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
            raise

    async def run(self, fn: Callable[[BrowserContext], Any]) -> Any:
        fut: Future = Future()
        self.jobs.put((fn, fut))
        with trio.fail_after(STEP_SECONDS):
            return await trio.to_thread.run_sync(fut.result, abandon_on_cancel=True)

    async def page(self, fn: Callable[[Page], Any]) -> Any:
        """``fn(page)`` on a fresh tab, closed afterwards."""
        def job(ctx: BrowserContext) -> Any:
            page = ctx.new_page()
            try:
                return fn(page)
            finally:
                page.close()
        return await self.run(job)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture
async def site(nursery, tmp_path, browser):
    """A real node serving the web library on 127.0.0.1, with a video lesson and a sample."""
    from node.daemon import Node, Options
    home = init_home(tmp_path / "home", "龙泉小学", "school")
    auth.add_teacher(home.conn, "wang", PASSWORD)
    auth.add_teacher(home.conn, "zhao", PASSWORD, role="operator")
    src = tmp_path / "lesson"
    src.mkdir()
    shutil.copy(DATA / "clip.webm", src / "clip.webm")
    (src / "练习.txt").write_text("分数练习\n1/2 + 1/4 = ?\n", "utf-8")
    video = library.publish(home, [src], {
        "title": "分数的初步认识（视频）", "about": ["数学"],
        "educationalLevel": ["lower-primary"], "learningResourceType": "micro-lecture",
        "license": "CC-BY-4.0"})
    water = library.publish(home, [SAMPLES / "water-cycle"], {
        "title": "The water cycle", "about": ["科学"], "educationalLevel": ["upper-primary"],
        "learningResourceType": "lesson-plan", "inLanguage": "en", "license": "CC-BY-4.0"})
    node = await nursery.start(Node(home, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                                  web="127.0.0.1:0")).serve)
    assert node.web_url.startswith("http://127.0.0.1:")
    await browser.run(lambda ctx: ctx.clear_cookies())
    with trio.fail_after(TEST_SECONDS):
        yield node.web_url, {"video": video["resource_id"], "water": water["resource_id"],
                             "node": node}
    home.close()


def sign_in(page: Page, url: str, name: str = "wang") -> None:
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page.locator("header form[action='/logout'] button")).to_be_visible()


async def test_search_then_stream_the_video(site, browser):
    url, ids = site

    def flow(page: Page) -> dict:
        media: list = []
        page.on("response", lambda r: media.append(r) if "/files/" in r.url else None)
        page.goto(url + "/")
        assert page.locator("ol.results li").count() == 2
        page.select_option("select[name=subject]", "数学")
        page.select_option("select[name=level]", "lower-primary")
        page.click("form.search button[type=submit]")
        page.wait_for_url(re.compile(r"subject="))
        assert "level=lower-primary" in page.url
        results = page.locator("ol.results li a.title")
        expect(results).to_have_count(1)
        expect(results).to_have_text("分数的初步认识（视频）")
        results.click()
        page.wait_for_url(f"**/r/{ids['video']}")
        expect(page.locator("pre.text")).to_contain_text("1/2 + 1/4")
        page.wait_for_function("document.querySelector('video').readyState >= 1")
        size = page.evaluate("""async () => {
            const v = document.querySelector('video');
            v.muted = true;
            await v.play();
            await new Promise(r => { const t = () => v.currentTime > 0.2 ? r() : setTimeout(t, 50); t(); });
            v.pause();
            return [v.videoWidth, v.videoHeight];
        }""")
        videos = [r for r in media if "clip.webm" in r.url]
        return {"size": size, "responses": [
            (r.status, r.request.all_headers().get("range"), r.all_headers().get("content-range"))
            for r in videos]}

    got = await browser.page(flow)
    assert got["size"] == [160, 120]
    total = (DATA / "clip.webm").stat().st_size
    assert got["responses"], "the video element issued no request"
    for status, rng, content_range in got["responses"]:
        assert rng and rng.startswith("bytes="), got
        assert status == 206 and content_range.endswith(f"/{total}"), got


async def test_sign_in_publish_and_adapt(site, browser):
    url, ids = site

    def flow(page: Page) -> dict:
        page.goto(url + "/publish")
        page.wait_for_url(re.compile(r"/login\?next=/publish"))  # signed out: sent to sign in
        sign_in(page, url)
        page.goto(url + "/publish")
        page.fill("#title", "分数加法练习")
        page.fill("#description", "两道练习题")
        page.fill("#about", "数学, math")
        page.select_option("#level", ["upper-primary"])
        page.select_option("#type", "worksheet")
        page.set_input_files("#files", [
            {"name": "练习.txt", "mimeType": "text/plain", "buffer": "1/3 + 1/3 = ?".encode()},
            {"name": "答案.txt", "mimeType": "text/plain", "buffer": "2/3".encode()}])
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/r/[^/]+$"))
        expect(page.locator("h1")).to_have_text("分数加法练习")
        expect(page.locator("dl.facts").first).to_contain_text("wang")
        expect(page.locator("ul.files")).to_contain_text("答案.txt")
        published = page.url.rsplit("/", 1)[1]
        # adapt the video lesson: the form opens pre-filled and carries isBasedOn
        page.goto(f"{url}/r/{ids['video']}")
        page.click(f"a[href='/publish?based_on={ids['video']}']")
        page.wait_for_url(re.compile(r"based_on="))
        assert page.input_value("#title") == "分数的初步认识（视频）"
        assert page.input_value("#about") == "数学"
        assert page.locator("input[name=isBasedOn]").get_attribute("value") == ids["video"]
        page.fill("#title", "分数的初步认识（改编）")
        page.set_input_files("#files", [
            {"name": "教案.md", "mimeType": "text/markdown", "buffer": "# 改编".encode()}])
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/r/[^/]+$"))
        adapted = page.url.rsplit("/", 1)[1]
        based_on = page.locator(f"a[href='/r/{ids['video']}']")
        expect(based_on).to_have_text("分数的初步认识（视频）")
        page.goto(f"{url}/r/{ids['video']}")
        expect(page.locator(f"a[href='/r/{adapted}']")).to_have_text("分数的初步认识（改编）")
        return {"published": published, "adapted": adapted}

    got = await browser.page(flow)
    assert got["published"] != got["adapted"]


async def test_request_board_and_feedback(site, browser):
    url, ids = site

    def flow(page: Page) -> None:
        sign_in(page, url)
        page.goto(url + "/requests")
        page.fill("#subject", "科学")
        page.select_option("#level", "upper-primary")
        page.fill("#description", "需要一个关于水循环的实验视频")
        page.click("main form button[type=submit]")
        expect(page.locator("ul.requests li")).to_contain_text("需要一个关于水循环的实验视频")
        page.goto(f"{url}/r/{ids['water']}")
        expect(page.locator("#feedback")).to_contain_text("暂无反馈")
        page.check("input[name=used][value=yes]")
        page.select_option("#rating", "4")
        page.fill("#comment", "学生很喜欢")
        page.click("#feedback button[type=submit]")
        page.wait_for_url(re.compile(ids["water"]))
        expect(page.locator("ul.feedback .stars")).to_have_text("★★★★☆")
        expect(page.locator("ul.feedback")).to_contain_text("学生很喜欢")

    await browser.page(flow)


async def test_language_switch(site, browser):
    url, ids = site

    def flow(page: Page) -> None:
        page.goto(f"{url}/r/{ids['water']}")  # the browser asks for zh-CN
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("header nav")).to_contain_text("资源需求")
        expect(page.locator("dl.facts").first).to_contain_text("有效")  # signature status
        page.click("header a[lang=en]")
        page.wait_for_url(f"**/r/{ids['water']}")  # back on the same page
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("header nav")).to_contain_text("Requests")
        expect(page.locator("main")).to_contain_text("Lineage")
        expect(page.locator("dl.facts").first).to_contain_text("valid")
        page.goto(url + "/")  # the choice is remembered
        expect(page.locator("h1")).to_have_text("Teaching library")
        page.click("header a[lang='zh-CN']")
        expect(page.locator("h1")).to_have_text("教学资源库")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    await browser.page(flow)


async def test_operator_pauses_a_transfer_in_chinese(site, browser):
    from crypto import CID_RAW, cid_to_str, make_cid
    url, ids = site
    node = ids["node"]
    tid = (await node.api_fetch(cid_to_str(make_cid(CID_RAW, b"held by no school"))))["id"]

    def flow(page: Page) -> None:
        sign_in(page, url, "zhao")
        page.click("header nav a[href='/operator']")
        page.wait_for_url("**/operator")
        expect(page.locator("h1")).to_have_text("节点状态")
        expect(page.locator("dl.node")).to_contain_text(node.home.school_id)
        expect(page.locator("main")).to_contain_text("当前没有连接任何学校")
        page.click("nav.opnav a[href='/operator/transfers']")
        row = page.locator(f"#transfer-{tid}")
        row.get_by_role("button", name="暂停").click()
        expect(row).to_have_attribute("data-state", "paused")
        expect(row.locator("td.state")).to_have_text("已暂停")
        expect(row.get_by_role("button", name="继续")).to_be_visible()

    await browser.page(flow)
    assert node.transfers[tid]["state"] == "paused"


async def test_where_page_code_scans_in_the_browser(site, browser, tmp_path):
    import subprocess

    import qr_decode
    url, _ = site
    shot = tmp_path / "where.png"

    def flow(page: Page) -> None:
        page.goto(url + "/")
        page.click("footer a[href='/where']")
        expect(page.locator("h1")).to_contain_text("打开教学资源库")
        expect(page.locator("figcaption.url")).to_have_text(url + "/")
        page.locator("figure.qr svg").screenshot(path=str(shot))

    await browser.page(flow)
    decoded = subprocess.run([qr_decode.need_zbarimg(), "--quiet", "--raw", str(shot)],
                             capture_output=True, text=True, timeout=60).stdout
    assert decoded.splitlines() == [url + "/"]


async def test_operator_limits_communities_usb_in_chinese(site, browser, tmp_path):
    """The operator's limits (chart), communities (invite with QR code) and USB pages in
    zh-CN: an export to a folder the operator types runs to the end with its progress page."""
    url, ids = site
    drive = tmp_path / "usb"
    drive.mkdir()

    def flow(page: Page) -> dict:
        charts: list[tuple[str, int]] = []
        page.on("response", lambda r: charts.append((r.url, r.status))
                if r.url.endswith(".svg") else None)
        sign_in(page, url, "zhao")
        page.goto(url + "/operator")
        page.click("nav.opnav a[href='/operator/limits']")
        expect(page.locator("h1")).to_have_text("限速与流量")
        page.fill("#down", "10M")
        page.fill("#monthly_budget", "20GB")
        page.get_by_role("button", name="保存").click()
        expect(page.locator("p.ok")).to_contain_text("已保存")
        expect(page.locator("dd.down")).to_have_text("10Mbit/s")
        page.wait_for_load_state("load")        # the page's images loaded (or failed to)
        widths = page.eval_on_selector_all("figure.chart img",
                                           "els => els.map(e => e.naturalWidth)")
        page.click("nav.opnav a[href='/operator/communities']")
        expect(page.locator("main")).to_contain_text("本校尚未加入任何社区")
        page.fill("#cname", "龙泉学区")
        page.get_by_role("button", name="创建").click()
        expect(page.locator("h1")).to_have_text("龙泉学区")
        page.get_by_role("button", name="生成邀请码").click()
        expect(page.locator("section.invite")).to_contain_text("一次性邀请码")
        expect(page.locator("section.invite figure.qr svg")).to_be_visible()
        code = page.locator("textarea.code").input_value()
        page.click("nav.opnav a[href='/operator/usb']")
        expect(page.locator("h1")).to_have_text("U 盘")
        page.fill("#dir", str(drive))
        page.get_by_role("button", name="打开").click()
        expect(page.locator("p.chosen")).to_contain_text(str(drive))
        page.get_by_role("button", name="导出").click()
        expect(page.locator("p.state")).to_have_attribute("data-state", "done", timeout=30_000)
        expect(page.locator("p.ok")).to_contain_text("已写入")
        return {"widths": widths, "code": code, "charts": charts}

    got = await browser.page(flow)
    assert got["widths"] == [760, 760], got["charts"]   # both SVG charts loaded as images
    assert len(got["code"]) > 100
    assert [p.suffix for p in drive.iterdir()] == [".car"]
@pytest.fixture(scope="module")
def ai_engine(tmp_path_factory):
    """A real OpenAI-compatible engine (llama-cpp-python's server) on a tiny random model."""
    from bench._ai_engine import build_tiny_gguf, engine
    model = build_tiny_gguf(tmp_path_factory.mktemp("ai") / "tiny.gguf")
    with engine(model) as url:
        yield url


async def test_ai_answer_streams_into_a_draft_the_teacher_publishes(site, browser, ai_engine):
    from bench._ai_engine import MODEL_NAME
    from node import ai
    url, ids = site
    ai.set_config(ids["node"].home.conn, ai_engine, MODEL_NAME, None, max_tokens=64)

    def flow(page: Page) -> str:
        sign_in(page, url)
        page.goto(f"{url}/r/{ids['video']}")
        page.click("a.ai-link")
        page.wait_for_url(f"**/r/{ids['video']}/ai")
        page.select_option("#task", "exercises")
        page.click("form.ai-task button[type=submit]")
        expect(page.locator("p.ai-draft")).to_be_visible()
        answer = page.locator("pre.ai-answer").text_content() or ""
        page.click("p.ai-draft a")
        page.wait_for_url(re.compile(r"/ai/drafts/[0-9a-f]{16}$"))
        assert page.input_value("#text").strip() == answer.strip()
        page.fill("#text", "1. 1/2 + 1/4 = ?\n答案：3/4")
        page.click("button[value=publish]")
        page.wait_for_url(re.compile(r"/r/[^/]+$"))
        expect(page.locator("dd.ai-made")).to_have_text(
            f"由 AI 辅助改编（{MODEL_NAME}），wang审阅")
        return answer

    assert (await browser.page(flow)).strip()
