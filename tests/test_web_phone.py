"""The web library on a phone: at 360 px no page scrolls sideways, in either language, signed in
as a teacher and as an operator.  Every page of the route table (node/web/app.py) is visited,
so a new page is checked as soon as it is added; upload progress and one post per click in a
real Chromium."""

from __future__ import annotations

import re
import shutil
import urllib.parse

import pytest
import trio
from starlette.routing import Route

from node import library
from node.home import init_home
from node.web import auth
from test_web_browser import (  # noqa: F401  (fixtures and the browser driver)
    DATA, PASSWORD, TEST_SECONDS, Page, browser, expect, pytestmark, sign_in,
)

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # pragma: no cover - skipped by pytestmark
    PlaywrightError = Exception

PHONE = {"width": 360, "height": 740}
LONG = "一" * 3 + "Photosynthesis_and_the_carbon_cycle_worksheet_for_multi_grade_classes"
OVERFLOW_JS = """() => {
    const w = window.innerWidth, out = [];
    for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right > w + 0.5 && getComputedStyle(el).position !== 'absolute')
            out.push(el.tagName + '.' + el.className + ': ' + (el.textContent || '').slice(0, 40));
    }
    return {scroll: document.documentElement.scrollWidth, inner: w, wide: out.slice(0, 5)};
}"""


@pytest.fixture
async def site(nursery, tmp_path, browser):
    from crypto import CID_RAW, cid_to_str, make_cid
    from node.daemon import Node, Options
    home = init_home(tmp_path / "home", "龙泉县第一中心小学附属幼儿园" * 2, "school")
    from node import identities, studio
    wang = identities.add(home, "wang", PASSWORD, ["数学"])   # a teacher identity: studios
    auth.add_teacher(home.conn, "zhao_operator_with_a_long_name", PASSWORD, role="operator")
    src = tmp_path / "lesson"
    src.mkdir()
    (src / f"{LONG}.txt").write_text(LONG * 3, "utf-8")
    (src / "实验.avi").write_bytes(b"RIFF....AVI ")
    shutil.copy(DATA / "clip.webm", src / "clip.webm")
    res = library.publish(home, [src], {
        "title": LONG, "about": [LONG], "keywords": [LONG], "creator": "wang",
        "description": LONG * 4, "license": "CC-BY-4.0"})
    rid = res["resource_id"]
    library.append_entry(home, "request", {"subject": LONG[:40], "level": "upper-primary",
                                           "description": LONG * 3})
    library.append_entry(home, "feedback", {"resource": rid, "used": True, "rating": 4,
                                            "comment": LONG * 2})
    node = await nursery.start(Node(home, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                                  web="127.0.0.1:0")).serve)
    tid = (await node.api_fetch(cid_to_str(make_cid(CID_RAW, b"held by no school"))))["id"]
    # the text tools' dictionaries load at their first use (seconds on a busy machine): here,
    # not inside a page visit with its time limit
    from node import tools
    await trio.to_thread.run_sync(tools.keywords, LONG, 3)
    await browser.run(lambda ctx: ctx.clear_cookies())
    key = identities.unlock(home.conn, "wang", PASSWORD)
    sid = studio.create(home, key, LONG[:60], LONG)["studio"]
    from node import courses
    kid = courses.publish(home, courses.parse_outline(
        f"title: {LONG[:60]}\nsubject: 科学\ngrade: 3\nvolume: 下册\nunits:\n"
        f"  - title: {LONG[:60]}\n    lessons:\n"
        f"      - {{title: {LONG[:60]}, periods: 2, resources: [{rid}]}}\n",
        yaml_hint=True))["course_id"]
    from node import community
    cid = community.create(home, LONG[:60])["community_id"]
    samples = {"kid": kid, "cid": cid, "chart": "daily", "jid": "1", "fmt": "json",
               "did": "0" * 16,
               "rid": rid, "path": urllib.parse.quote(f"{LONG}.txt"), "n": "1", "tid": str(tid),
               "name": "wang", "code": "en", "action": "pause", "sid": sid, "key": wang["key"]}
    with trio.fail_after(TEST_SECONDS):
        yield node, samples
    home.close()


# parameters of one route that differ from SAMPLES (a page about a file of another kind)
OVERRIDES = {"/r/{rid}/view/{path:path}": {"path": urllib.parse.quote("实验.avi")}}


def _pages(app, samples: dict[str, str]) -> list[str]:
    """Every GET route of the web library with its parameters filled in, plus the forms in
    the states a phone user meets (an adaptation with the original's files)."""
    urls = []
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        params = re.findall(r"{(\w+)(?::\w+)?}", route.path)
        missing = [p for p in params if p not in samples]
        assert not missing, f"{route.path}: add a sample value for {missing} to this test"
        values = {**samples, **OVERRIDES.get(route.path, {})}
        urls.append(re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], route.path))
    return urls + [f"/publish?based_on={samples['rid']}"]


async def test_no_page_scrolls_sideways_on_a_phone(site, browser):
    node, samples = site
    url = node.web_url
    from node.web.app import WebConfig, make_app
    paths = _pages(make_app(node, WebConfig.for_home(node.home.path)), samples)
    assert "/mine" in paths and f"/r/{samples['rid']}" in paths

    pages: list[str] = []          # the paths that answered HTML: pages to look at again

    def visit(page: Page, lang: str) -> tuple[int, dict]:
        page.set_viewport_size(PHONE)
        page.goto(f"{url}/lang/{lang}?next=/")
        seen, bad = 0, {}
        for path in list(pages or paths):
            try:
                r = page.goto(url + path, wait_until="domcontentloaded", timeout=30_000)
            except PlaywrightError as exc:   # a download (the zip) is no page
                assert "Download is starting" in str(exc), f"{path}: {exc}"
                continue
            if "text/html" not in r.headers.get("content-type", ""):
                continue   # file bytes, JSON, an image
            seen += 1
            if path not in pages:
                pages.append(path)
            got = page.evaluate(OVERFLOW_JS)
            if got["scroll"] > got["inner"]:
                bad[f"{lang} {path}"] = got
        return seen, bad

    seen, bad = 0, {}
    for who in ("wang", "zhao_operator_with_a_long_name"):
        await browser.run(lambda ctx: ctx.clear_cookies())
        await browser.page(lambda page: sign_in(page, url, who))
        for lang in ("zh-CN", "en"):       # one browser step per language and account
            n, wide = await browser.page(lambda page: visit(page, lang))
            seen += n
            bad.update({f"{who} {k}": v for k, v in wide.items()})
    assert not bad, bad
    assert seen >= 4 * 15


async def test_upload_shows_progress_and_posts_once(site, browser, tmp_path):
    node, samples = site
    url = node.web_url
    big = tmp_path / "讲课视频.bin"
    big.write_bytes(b"\0" * (6 * 1024 * 1024))

    def flow(page: Page) -> dict:
        page.set_viewport_size(PHONE)
        sign_in(page, url)
        page.goto(url + "/publish")
        expect(page.locator("label[for=files]")).to_contain_text("每次最多上传 2.0 GiB")
        page.fill("#title", "分数练习")
        page.set_input_files("#files", str(big))
        # slow the upload down so progress and the disabled button can be seen
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 20, "downloadThroughput": -1,
            "uploadThroughput": 4 * 1024 * 1024})
        page.click("main form button[type=submit]")
        button = page.locator("main form button[type=submit]")
        expect(button).to_be_disabled()
        expect(page.locator("progress.upload")).to_be_visible()   # the first progress event
        expect(page.locator("output.upload")).to_contain_text("%")
        text = page.locator("output.upload").text_content()
        button.dispatch_event("click")          # a second press: nothing more is sent
        page.wait_for_url(re.compile(r"/r/[^/]+$"), timeout=40_000)
        return {"text": text, "rid": page.url.rsplit("/", 1)[1]}

    got = await browser.page(flow)
    assert got["text"].startswith("正在上传") and got["text"].endswith("%")
    titles = [t for (t,) in node.home.conn.execute(
        "SELECT title FROM resources WHERE title = '分数练习'")]
    assert titles == ["分数练习"]


async def test_a_form_error_on_the_phone_keeps_the_chosen_files(site, browser):
    node, samples = site
    url = node.web_url

    def flow(page: Page) -> str:
        page.set_viewport_size(PHONE)
        sign_in(page, url)
        page.goto(url + "/publish")
        page.fill("#title", "分数练习")
        page.fill("#inLanguage", "not a language!")
        page.set_input_files("#files", [
            {"name": "练习.txt", "mimeType": "text/plain", "buffer": "1/2 + 1/4".encode()}])
        page.click("main form button[type=submit]")
        # sent by the upload script; refused; the draft's page shows the error and the file
        expect(page.locator("main p.error")).to_contain_text("请检查表单")
        expect(page.locator("input[name=keep][value='练习.txt']")).to_be_checked()
        assert page.input_value("#title") == "分数练习"
        page.fill("#inLanguage", "zh-CN")
        page.click("main form button[type=submit]")     # no file chosen again
        page.wait_for_url(re.compile(r"/r/[^/]+$"))
        return page.url.rsplit("/", 1)[1]

    rid = await browser.page(flow)
    assert [f["path"] for f in library.show(node.home, rid)["files"]] == ["练习.txt"]
