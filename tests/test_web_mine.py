"""A teacher's own resources in the web library: drafts that survive form errors, one publish
per form, editing as a new version (unchanged files keep their blocks), withdrawing, adapting
with the original's files, the operator's upload limit."""

from __future__ import annotations

import re

from node import catalog, db, library
from node.web import auth, pages
from test_web import PASSWORD, client, csrf_of, school, sign_in  # noqa: F401  (fixtures)
from test_web_teach import post_multipart


def _action(html: str) -> str:
    return re.search(r'<form method="post" action="([^"]+)" enctype', html).group(1) \
        .replace("&amp;", "&")


def _files(html: str) -> list[str]:
    return re.findall(r'name="keep" value="([^"]+)" checked', html)


async def _publish(c, files, **fields) -> str:
    page = await c.get("/publish")
    r = await post_multipart(c, _action(page.text), {
        "csrf": csrf_of(page.text), "title": "分数练习", "inLanguage": "zh-CN",
        "license": "CC-BY-4.0", **fields}, files)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


async def test_form_error_keeps_files_and_posting_twice_publishes_once(client):
    await sign_in(client)
    page = await client.get("/publish")
    action = _action(page.text)
    assert action.startswith("/publish?draft=")
    csrf = csrf_of(page.text)
    # the title is missing: an error, but the chosen file stays in the draft
    r = await post_multipart(client, action, {"csrf": csrf, "title": "", "license": "CC-BY-4.0"},
                             [("files", ("练习.txt", "1/2 + 1/4".encode(), "text/plain"))])
    assert r.status_code == 400 and "请检查表单" in r.text
    assert _files(r.text) == ["练习.txt"] and _action(r.text) == action
    # re-shown after a reload too (the browser's upload script goes there after an error)
    again = await client.get(action)
    assert _files(again.text) == ["练习.txt"] and "请检查表单" in again.text
    # fixed: no file sent again, the staged one is published, plus one more
    form = {"csrf": csrf, "title": "分数练习", "license": "CC-BY-4.0", "keep": "练习.txt"}
    more = [("files", ("答案.txt", b"3/4", "text/plain"))]
    # a folder of the name of a file already staged: refused, the draft is unchanged
    r = await post_multipart(client, action, {**form, "keep": ["练习.txt"]},
                             [("files", ("练习.txt/x.txt", b"x", "text/plain"))])
    assert r.status_code == 400 and "不允许的文件名" in r.text and _files(r.text) == ["练习.txt"]
    r = await post_multipart(client, action, form, more)
    assert r.status_code == 303, r.text
    rid = r.headers["location"].rsplit("/", 1)[1]
    shown = library.show(client.home, rid)
    assert [f["path"] for f in shown["files"]] == ["答案.txt", "练习.txt"]
    # the same form sent again (a double click): the same resource, nothing new published
    before = client.home.conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0]
    r = await post_multipart(client, action, form, more)
    assert r.status_code == 303 and r.headers["location"] == f"/r/{rid}"
    assert client.home.conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0] == before
    # another teacher cannot use or see that draft
    auth.add_teacher(client.home.conn, "li", PASSWORD)
    await client.post("/logout", data={"csrf": csrf})
    page = await client.get("/login")
    await client.post("/login", data={"csrf": csrf_of(page.text), "name": "li",
                                      "password": PASSWORD})
    page = await client.get(action)
    assert _files(page.text) == [] and _action(page.text) != action


async def test_edit_keeps_blocks_of_unchanged_files(client):
    await sign_in(client)
    big = bytes(range(256)) * 5000          # 1.2 MiB: a tree of blocks
    rid = await _publish(client, [("files", ("讲义.txt", big, "text/plain")),
                                  ("files", ("旧.txt", b"old", "text/plain")),
                                  ("files", ("练习.txt", b"v1", "text/plain"))])
    v1 = {f["path"]: f["cid"] for f in library.show(client.home, rid)["files"]}
    mine = await client.get("/mine")
    assert f'href="/r/{rid}/edit"' in mine.text
    page = await client.get(f"/r/{rid}")
    assert f'href="/r/{rid}/edit"' in page.text
    page = await client.get(f"/r/{client.res['resource_id']}")   # not hers: no edit
    assert "/edit" not in page.text
    page = await client.get(f"/r/{rid}/edit")
    assert page.status_code == 200 and sorted(_files(page.text)) == sorted(v1)
    # saved without any change: refused, no new version
    r = await post_multipart(client, _action(page.text), {
        "csrf": csrf_of(page.text), "title": "分数练习", "license": "CC-BY-4.0",
        "inLanguage": "zh-CN", "keep": list(v1)},
        [("files", ("", b"", "application/octet-stream"))])   # no file chosen, as browsers send
    assert r.status_code == 400 and "没有需要保存的修改" in r.text, r.text
    assert library.show(client.home, rid)["version"] == 1
    # replace 练习.txt, leave out 旧.txt, add 新.txt, change the title; 讲义.txt not sent again
    r = await post_multipart(client, _action(page.text), {
        "csrf": csrf_of(page.text), "title": "分数练习（第二版）", "license": "CC-BY-4.0",
        "inLanguage": "zh-CN", "keep": ["讲义.txt", "练习.txt"]},
        [("files", ("练习.txt", b"v2", "text/plain")), ("files", ("新.txt", b"new", "text/plain"))])
    assert r.status_code == 303 and r.headers["location"] == f"/r/{rid}", r.text
    shown = library.show(client.home, rid)
    assert shown["version"] == 2 and shown["meta"]["title"] == "分数练习（第二版）"
    assert shown["meta"]["creator"] == "wang"
    v2 = {f["path"]: f["cid"] for f in shown["files"]}
    assert sorted(v2) == ["新.txt", "练习.txt", "讲义.txt"]
    assert v2["讲义.txt"] == v1["讲义.txt"] and v2["练习.txt"] != v1["练习.txt"]
    # the kept file is still readable through the new version
    r = await client.get(f"/r/{rid}/files/讲义.txt")
    assert r.content == big


async def test_adapt_carries_the_original_files(client):
    await sign_in(client)
    src = client.res["resource_id"]
    orig = {f["path"]: f["cid"] for f in client.res["files"]}
    page = await client.get("/publish", params={"based_on": src})
    assert sorted(_files(page.text)) == sorted(orig)
    assert 'required' not in re.search(r'<input id="files"[^>]*>', page.text).group(0)
    r = await post_multipart(client, _action(page.text), {
        "csrf": csrf_of(page.text), "title": "分数（改编）", "isBasedOn": src,
        "license": "CC-BY-4.0", "keep": ["lecture.mp4", "worksheet.txt"]},
        [("files", ("worksheet.txt", "改编后的练习".encode(), "text/plain"))])
    assert r.status_code == 303, r.text
    new = library.show(client.home, r.headers["location"].rsplit("/", 1)[1])
    got = {f["path"]: f["cid"] for f in new["files"]}
    assert sorted(got) == ["lecture.mp4", "worksheet.txt"]
    assert got["lecture.mp4"] == orig["lecture.mp4"]           # taken as it is
    assert got["worksheet.txt"] != orig["worksheet.txt"]       # changed by the teacher
    assert new["meta"]["isBasedOn"] == [src] and new["local"]


async def test_withdraw_and_only_ones_own(client):
    await sign_in(client)
    rid = await _publish(client, [("files", ("a.txt", b"a", "text/plain"))])
    # the sample was published from the terminal (no creator): not this teacher's
    other = client.res["resource_id"]
    assert (await client.get(f"/r/{other}/edit")).status_code == 403
    page = await client.get("/mine")
    assert f'action="/r/{rid}/retract"' in page.text and other not in page.text
    r = await client.post(f"/r/{other}/retract", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403
    r = await client.post(f"/r/{rid}/retract", data={"csrf": "wrong"})
    assert r.status_code == 403 and not library.show(client.home, rid)["retracted"]
    r = await client.post(f"/r/{rid}/retract", data={"csrf": csrf_of(page.text),
                                                     "reason": "有错误"})
    assert r.status_code == 303
    shown = library.show(client.home, rid)
    assert shown["retracted"] and shown["retract_reason"] == "有错误"
    assert rid not in [h["resource_id"] for h in catalog.search(client.home.conn, None)]
    assert (await client.get(f"/r/{rid}/edit")).status_code == 409


async def test_operator_sets_the_upload_limit_teachers_see_it(client):
    auth.add_teacher(client.home.conn, "zhao", PASSWORD, role="operator")
    page = await client.get("/login")
    await client.post("/login", data={"csrf": csrf_of(page.text), "name": "zhao",
                                      "password": PASSWORD})
    page = await client.get("/operator/storage")
    assert 'name="upload_limit_mib" inputmode="numeric" value="8"' in page.text
    for bad in ("0", "-1", "abc", "99999999"):
        r = await client.post("/operator/storage", data={"csrf": csrf_of(page.text),
                                                         "upload_limit_mib": bad})
        assert r.status_code == 400 and "整数" in r.text, bad
    r = await client.post("/operator/storage", data={"csrf": csrf_of(page.text),
                                                     "upload_limit_mib": "1"})
    assert r.status_code == 303
    assert db.get_setting(client.home.conn, pages.UPLOAD_LIMIT_SETTING) == str(1024 * 1024)
    page = await client.get("/publish")
    assert "每次最多上传 1.0 MiB" in page.text
    r = await post_multipart(client, _action(page.text), {
        "csrf": csrf_of(page.text), "title": "big", "license": "CC-BY-4.0"},
        [("files", ("big.bin", b"x" * (2 * 1024 * 1024 + 10), "application/octet-stream"))])
    assert r.status_code == 413 and "最多 1.0 MiB" in r.text


async def test_request_feedback_and_withdrawal_sent_twice_count_once(client):
    await sign_in(client)
    rid = client.res["resource_id"]

    def entries(kind: str) -> int:
        return client.home.conn.execute("SELECT COUNT(*) FROM entries WHERE kind = ?",
                                        (kind,)).fetchone()[0]

    page = await client.get("/requests")
    form = {"csrf": csrf_of(page.text), "once": re.search(
        r'name="once" value="([0-9a-f]+)"', page.text).group(1), "subject": "科学",
        "level": "upper-primary", "description": "水循环实验视频"}
    for _ in range(2):
        assert (await client.post("/requests", data=form)).status_code == 303
    assert entries("request") == 1
    page = await client.get(f"/r/{rid}")
    form = {"csrf": csrf_of(page.text), "used": "yes", "rating": "5", "once": re.search(
        r'name="once" value="([0-9a-f]+)"', page.text).group(1)}
    for _ in range(2):
        r = await client.post(f"/r/{rid}/feedback", data=form)
        assert r.status_code == 303 and r.headers["location"] == f"/r/{rid}#feedback"
    assert entries("feedback") == 1
    # a failed form may be sent again with its token: it was not used up
    bad = {**form, "once": "f" * 32, "rating": "9"}
    assert (await client.post(f"/r/{rid}/feedback", data=bad)).status_code == 400
    assert (await client.post(f"/r/{rid}/feedback", data={**bad, "rating": "4"})
            ).status_code == 303
    assert entries("feedback") == 2
