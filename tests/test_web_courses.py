"""Courses in the teacher web library, in a real headless Chromium (zh-CN): a teacher's week,
the course page as a syllabus tree, publishing a course from its outline. Reuses the browser
and the served node of tests/test_web_browser.py."""

from __future__ import annotations

import datetime as dt
import re

from test_web_browser import browser, pytestmark, sign_in, site  # noqa: F401  (fixtures)

from node import courses
from protocol import courses as pc

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass

UNKNOWN = "r" + "z" * 26     # a resource no feed of this node describes


async def test_week_and_course_pages_in_chinese(site, browser):
    url, ids = site
    home = ids["node"].home
    made = courses.publish(home, courses.parse_outline(
        "title: 三年级数学（上册）\nsubject: 数学\ngrade: 3\nvolume: 上册\nedition: 人教版\n"
        f"# 1 分数的初步认识\n- 1 认识几分之一 (2): {ids['video']}\n"
        f"# 2 水的循环\n- 1 水从哪里来: {ids['water']} {UNKNOWN}\n"))
    kid = made["course_id"]
    today = dt.date.today()
    every_day = pc.Timetable(tuple((d, 1) for d in range(1, 8)))
    courses.adopt(home, kid, "三年级一班", today, every_day, teacher="wang")
    courses.adopt(home, kid, "五年级二班", today, every_day, teacher="zhao")   # not wang's

    def flow(page: Page) -> dict:
        page.goto(url + "/week")
        page.wait_for_url(re.compile(r"/login\?next=/week"))    # signed out: sent to sign in
        sign_in(page, url)
        page.goto(url + "/week")
        expect(page.locator("h1")).to_have_text("本周课程")
        lessons = page.locator("li.lesson")
        expect(lessons).to_have_count(2)                     # wang's class only
        first, second = lessons.nth(0), lessons.nth(1)
        expect(first).to_contain_text("三年级一班")
        expect(first).to_contain_text("第1单元 分数的初步认识")
        expect(first).to_contain_text("已就绪")
        expect(second).to_contain_text("缺少资源")
        expect(second).to_contain_text("本校未同步发布此资源的学校")
        expect(page.locator("section.day h2").first).to_contain_text("今天")
        out = {"days": page.locator("section.day").count(), "second_day":
               page.locator("section.day h2").nth(1).inner_text()}
        first.locator(f"a[href='/r/{ids['video']}']").click()       # the local copy
        page.wait_for_url(f"**/r/{ids['video']}")
        expect(page.locator("h1")).to_have_text("分数的初步认识（视频）")
        # the course page: a syllabus tree with each lesson's date and status per class
        page.goto(f"{url}/c/{kid}")
        expect(page.locator("h1")).to_have_text("三年级数学（上册）")
        expect(page.locator("li.unit h3")).to_have_text(["第1单元 分数的初步认识",
                                                         "第2单元 水的循环"])
        expect(page.locator("li.lesson").first).to_contain_text("2 课时")
        expect(page.locator("li.lesson").first.locator(".when")).to_have_count(2)
        expect(page.locator("li.lesson").nth(1)).to_contain_text("（本资源库中没有）")
        expect(page.locator("dl.facts")).to_contain_text("人教版")
        # the course list and the search page find it
        page.goto(url + "/courses?q=分数")
        expect(page.locator("ol.courses a.title")).to_have_text(["三年级数学（上册）"])
        page.goto(url + "/?q=水的循环")
        expect(page.locator("ol.courses a.title")).to_have_text(["三年级数学（上册）"])
        # publishing from the web: a bad outline is refused with a message, a good one works
        page.goto(url + "/courses/new")
        page.fill("#outline", "title: 音乐\n# 1 唱歌\n- 1 上学歌\n")
        page.click("main form button[type=submit]")
        expect(page.locator("p.error")).to_contain_text("课程未发布")
        expect(page.locator("p.error")).to_contain_text("subject")
        page.fill("#outline", "title: 一年级音乐\nsubject: 音乐\ngrade: 一年级\n"
                  f"# 1 唱歌\n- 1 上学歌 (1 课时): {ids['water']}\n")
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"/c/k[a-z2-7]{26}$"))
        expect(page.locator("h1")).to_have_text("一年级音乐")
        expect(page.locator("dl.facts")).to_contain_text("1年级")
        missing = page.goto(f"{url}/c/k{'a' * 26}")
        out["missing_status"] = missing.status
        expect(page.locator("main")).to_contain_text("本资源库中没有这个课程")
        return out

    got = await browser.page(flow)
    assert got["missing_status"] == 404
    assert got["days"] == 2 and "星期" in got["second_day"]   # a lesson a day, two lessons


def test_course_texts_have_both_languages():
    from node.web import i18n
    assert all(len(p) == 2 and all(p) for p in i18n.COURSE_TEXTS.values())
    assert not set(i18n.COURSE_TEXTS) & set(i18n.TEXTS)
