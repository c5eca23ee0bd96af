"""The studio story in a real headless Chromium across two real nodes (specs/teachers.md):
a master teacher at node A sets a task in a studio; a village teacher at node B, on a phone
(360 px wide, zh-CN), joins with the invite code (B's library dials A's address from the code
and follows A; the first try says to try again until A's feed has arrived), adapts the lesson
and submits it; the master
teacher reviews it at A; the village teacher's record of contributions at B counts it.

Node B is opened as ``localhost`` and node A as ``127.0.0.1``: cookies do not separate ports,
host names do, so both teachers stay signed in in the one browser.
"""

from __future__ import annotations

import re
import shutil

import pytest
import trio

from crypto import keys as crypto_keys
from node import identities, library
from node import studio as ns
from node.home import init_home
from node.p2p import host as p2p
from node.teachers import signing_as
from test_web_browser import CHROMIUM, Browser, sync_playwright  # noqa: F401
from test_web_browser import browser  # noqa: F401  (fixture)

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover
    pass

PW = "粉笔和黑板-2026"
DEADLINE = 30
PHONE = {"width": 360, "height": 740}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
    pytest.mark.skipif(not shutil.os.path.exists(CHROMIUM), reason="no chromium"),
]


@pytest.fixture(autouse=True)
def _quick_seal(monkeypatch):
    """Teachers' keys sealed with scrypt N = 2^12 instead of 2^17 here, to keep the suite fast:
    the cost is a header field every reader takes from the file; test_vectors_teachers.py
    opens keys sealed with the production cost."""
    monkeypatch.setattr(crypto_keys, "SCRYPT_LOG2_N", 12)


async def wait_for(nodes, condition, what: str) -> None:
    with trio.fail_after(DEADLINE):
        while not condition():
            for n in nodes:
                n.wake()
            await trio.sleep(0.1)


def sign_in(page: Page, url: str, name: str) -> None:
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PW)
    page.click("main form button[type=submit]")
    expect(page.locator("header form[action='/logout'] button")).to_be_visible()


def fits(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_master_sets_task_village_teacher_submits_on_phone_and_is_counted(
        nursery, tmp_path, browser):  # noqa: F811
    from node.daemon import Node, Options
    a_home = init_home(tmp_path / "a", "城关示范小学", "demonstration")
    b_home = init_home(tmp_path / "b", "山村小学", "school")
    identities.add(a_home, "liu", PW, ["数学"])
    wang = identities.add(b_home, "wang", PW, ["数学"])
    master = identities.unlock(a_home.conn, "liu", PW)
    src = tmp_path / "lesson"
    src.mkdir()
    (src / "教案.txt").write_text("分数的初步认识\n一、导入\n二、新授\n", "utf-8")
    with signing_as(master):
        lesson = library.publish(a_home, [src], {"title": "分数的初步认识", "about": ["数学"],
                                                 "educationalLevel": ["lower-primary"]})
    lesson = lesson["resource_id"]
    sid = ns.create(a_home, master, "刘老师数学名师工作室")["studio"]
    options = dict(listen=["/ip4/127.0.0.1/tcp/0"], web="127.0.0.1:0", request_timeout=3.0)
    a = await nursery.start(Node(a_home, Options(**options)).serve)
    b = await nursery.start(Node(b_home, Options(**options)).serve)
    # the invite code carries A's address: B's web library dials it when wang joins
    code = ns.invite(a_home, master, sid, b_home.school_id, p2p.listen_addrs(a.host))["code"]
    url_a = a.web_url
    url_b = b.web_url.replace("127.0.0.1", "localhost")
    await browser.run(lambda ctx: ctx.clear_cookies())

    def set_task(page: Page) -> None:           # the master teacher, at node A
        sign_in(page, url_a, "liu")
        page.goto(f"{url_a}/studio/{sid}")
        page.fill("#title", "把《分数的初步认识》改编为复式班教案")
        page.fill("#due", "2099-12-15")
        page.fill("#resource", lesson)
        page.click("form[action$='/task'] button[type=submit]")
        page.wait_for_url(re.compile(r"#tasks$"))
        expect(page.locator("section.task h3")).to_have_text("把《分数的初步认识》改编为复式班教案")
    await browser.page(set_task)

    def join_early(page: Page) -> None:         # the first try: A's feed is not at B yet
        page.set_viewport_size(PHONE)
        sign_in(page, url_b, "wang")
        page.goto(url_b + "/studios")
        page.fill("#code", code)
        page.click("form[action='/studios'] input[value=join] ~ button")
        expect(page.locator("p.error")).to_contain_text("try again")
    assert sid not in ns.studios(b_home.conn)   # B does not replicate A before the code
    await browser.page(join_early)
    await wait_for((a, b), lambda: sid in ns.studios(b_home.conn)
                   and ns.studios(b_home.conn)[sid].tasks, "B has the studio and its task")

    def phone(page: Page) -> str:               # the village teacher, on a phone at node B
        page.set_viewport_size(PHONE)
        page.goto(url_b + "/studios")
        if page.locator("header form[action='/logout']").count() == 0:
            sign_in(page, url_b, "wang")
            page.goto(url_b + "/studios")
        page.fill("#code", code)
        page.click("form[action='/studios'] input[value=join] ~ button")
        page.wait_for_url(re.compile(rf"/studio/{sid}$"))
        assert fits(page), "the studio page scrolls sideways at 360 px"
        page.click(f"section.task a[href='/publish?based_on={lesson}']")
        page.wait_for_url(re.compile(r"based_on="))
        page.fill("#title", "分数的初步认识（复式班）")
        page.set_input_files("#files", [{"name": "复式班教案.txt", "mimeType": "text/plain",
                                         "buffer": "一、二年级同堂：动静搭配".encode()}])
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/r/[^/]+$"))
        expect(page.locator("a.teacher")).to_have_text("wang")   # named by key, not free text
        adapted = page.url.rsplit("/", 1)[1]
        page.goto(f"{url_b}/studio/{sid}")
        page.select_option("section.task form[action$='/submit'] select", adapted)
        page.click("section.task form[action$='/submit'] button")
        page.wait_for_url(re.compile(r"#tasks$"))
        expect(page.locator("li.submission")).to_contain_text("分数的初步认识（复式班）")
        expect(page.locator("li.submission")).to_contain_text("按时")
        assert fits(page)
        return adapted
    adapted = await browser.page(phone)
    await wait_for((a, b), lambda: ns.studios(a_home.conn)[sid].submissions,
                   "A has the submission")

    def review(page: Page) -> None:             # the master teacher reviews it at A
        page.goto(f"{url_a}/studio/{sid}")
        expect(page.locator("li.submission")).to_contain_text("分数的初步认识（复式班）")
        page.select_option("li.submission select[name=rating]", "5")
        page.fill("li.submission textarea[name=comment]", "动静搭配设计得好")
        page.click("li.submission form button")
        page.wait_for_url(re.compile(r"#tasks$"))
        expect(page.locator("p.review")).to_contain_text("动静搭配设计得好")
    await browser.page(review)
    await wait_for((a, b), lambda: all(
        x["review"] for x in ns.studios(b_home.conn)[sid].submissions.values()),
        "B has the review")

    def record(page: Page) -> None:             # the village teacher's record, on the phone
        page.set_viewport_size(PHONE)
        page.goto(f"{url_b}/studio/{sid}")
        expect(page.locator("p.review")).to_contain_text("★★★★★")
        page.goto(f"{url_b}/teacher/{wang['key']}")
        expect(page.locator("h1")).to_contain_text("wang")
        expect(page.locator("td.n-adapted")).to_have_text("1")
        expect(page.locator("td.n-tasks_on_time")).to_have_text("1")
        expect(page.locator("ol.entries")).to_contain_text("按时完成的任务")
        assert fits(page)
    await browser.page(record)
    assert adapted
    a_home.close()
    b_home.close()
