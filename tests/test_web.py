"""The teacher web library over HTTP (httpx against the ASGI app, and one real served node)."""

from __future__ import annotations

import os
import re
import zipfile
import io

import httpx
import pytest
from conftest import remove_block

from node import library
from node.home import init_home
from node.web import auth, i18n
from node.web.app import WebConfig, make_app
from protocol import unixfs

MiB = 1024 * 1024
PASSWORD = "correct horse battery"


class FakeNode:
    """What the web app needs of node.daemon.Node, recording fetch calls."""

    def __init__(self, home) -> None:
        self.home = home
        self.fetched: list[str] = []
        self.urls: list[str] = []   # where teachers open the library (Node.teacher_urls)

    def teacher_urls(self) -> list[str]:
        return self.urls

    async def api_fetch(self, target: str) -> dict:
        self.fetched.append(target)
        return {"id": len(self.fetched)}

    async def api_transfers(self) -> list[dict]:
        return [{"id": i + 1, "target": t, "state": "running", "bytes_done": 10,
                 "bytes_total": 100, "error": None} for i, t in enumerate(self.fetched)]


@pytest.fixture
def school(tmp_path):
    home = init_home(tmp_path / "home", "龙泉小学", "school")
    auth.add_teacher(home.conn, "wang", PASSWORD)
    src = tmp_path / "src"
    src.mkdir()
    video = os.urandom(3 * MiB + 12345)  # three full leaves and a partial one
    (src / "lecture.mp4").write_bytes(video)
    (src / "worksheet.txt").write_text("分数练习\n1/2 + 1/4 = ?\n", "utf-8")
    (src / "page.html").write_text("<script>alert(1)</script>", "utf-8")
    res = library.publish(home, [src], {
        "title": "分数的初步认识", "about": ["数学"], "educationalLevel": ["lower-primary"],
        "learningResourceType": "micro-lecture", "license": "CC-BY-4.0"})
    yield home, res, video
    home.close()


@pytest.fixture
async def client(school, tmp_path):
    home, res, video = school
    node = FakeNode(home)
    app = make_app(node, WebConfig.for_home(home.path, upload_limit=8 * MiB))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://school.lan") as c:
        c.node, c.res, c.video, c.home, c.app = node, res, video, home, app
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def sign_in(c) -> None:
    page = await c.get("/login")
    r = await c.post("/login", data={"csrf": csrf_of(page.text), "name": "wang",
                                     "password": PASSWORD})
    assert r.status_code == 303, r.text


async def test_search_page_and_filters(client):
    r = await client.get("/", headers={"accept-language": "en"})
    assert r.status_code == 200 and "分数的初步认识" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for query, hit in [({"q": "分数"}, True), ({"q": "nothing-like-this"}, False),
                       ({"level": "lower-primary"}, True), ({"level": "tertiary"}, False),
                       ({"type": "micro-lecture"}, True), ({"license": "CC-BY-4.0"}, True),
                       ({"license": "MIT"}, False), ({"subject": "数学"}, True),
                       ({"language": "zh-CN"}, True), ({"school": "龙泉小学"}, True)]:
        r = await client.get("/", params=query)
        assert r.status_code == 200
        assert ("分数的初步认识" in r.text) is hit, query
    for bad in ({"level": "grade-99"}, {"type": "x"}, {"license": "WTFPL"}, {"page": "0"},
                {"page": "abc"}, {"q": "x" * 500}):
        assert (await client.get("/", params=bad)).status_code == 400, bad


async def test_resource_page(client):
    rid = client.res["resource_id"]
    r = await client.get(f"/r/{rid}", headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 200
    assert "本校节点已保存此资源" in r.text and "<video" in r.text
    assert "分数练习" in r.text  # text preview
    assert (await client.get("/r/rnotarealidaaaaaaaaaaaaaaaa")).status_code == 404
    assert (await client.get("/r/../../etc/passwd")).status_code == 404


async def test_range_requests(client):
    rid, video = client.res["resource_id"], client.video
    url = f"/r/{rid}/files/lecture.mp4"
    r = await client.get(url)
    assert r.status_code == 200 and r.content == video
    assert r.headers["accept-ranges"] == "bytes" and r.headers["content-type"] == "video/mp4"
    r = await client.get(url, headers={"range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == video[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{len(video)}"
    a, b = MiB - 10, 2 * MiB + 9  # across two chunk boundaries
    r = await client.get(url, headers={"range": f"bytes={a}-{b}"})
    assert r.status_code == 206 and r.content == video[a:b + 1]
    assert r.headers["content-length"] == str(b + 1 - a)
    r = await client.get(url, headers={"range": "bytes=-500"})
    assert r.status_code == 206 and r.content == video[-500:]
    r = await client.get(url, headers={"range": f"bytes={3 * MiB}-"})
    assert r.status_code == 206 and r.content == video[3 * MiB:]
    for bad in (f"bytes={len(video)}-", "bytes=5-2", "bytes=-0", "bytes=abc"):
        r = await client.get(url, headers={"range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{len(video)}"
    # several seeks in a row, as a video player does
    for off in (2 * MiB, 17, 3 * MiB + 12000, MiB):
        r = await client.get(url, headers={"range": f"bytes={off}-{off + 4095}"})
        assert r.content == video[off:off + 4096]
    r = await client.head(url, headers={"range": "bytes=0-9"})
    assert r.status_code == 206 and r.headers["content-length"] == "10"


async def test_range_reads_only_needed_leaves(school):
    home, res, video = school
    from crypto import cid_from_str
    from node.web import stream
    root = cid_from_str(next(f["cid"] for f in res["files"] if f["path"] == "lecture.mp4"))
    seen = []

    def get(cid):
        seen.append(cid)
        return home.blocks.get(cid)
    data = b"".join(stream.iter_range(root, get, 2 * MiB + 5, 2 * MiB + 10))
    assert data == video[2 * MiB + 5:2 * MiB + 10]
    assert len(seen) == 2  # the root node and one leaf


async def test_files_are_served_safely(client):
    rid = client.res["resource_id"]
    r = await client.get(f"/r/{rid}/files/page.html")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in r.headers["content-security-policy"]
    r = await client.get(f"/r/{rid}/files/worksheet.txt?download=1")
    assert r.headers["content-disposition"].startswith("attachment")
    for bad in ("../../key.pem", "..%2F..%2Fkey.pem", "%2e%2e/key.pem", "/etc/passwd",
                "nothere.txt", "worksheet.txt/.."):
        r = await client.get(f"/r/{rid}/files/{bad}", follow_redirects=True)
        assert r.status_code == 404, bad
        assert b"PRIVATE KEY" not in r.content


async def test_zip_download(client):
    rid = client.res["resource_id"]
    r = await client.get(f"/r/{rid}/zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    names = sorted(z.namelist())
    assert names == [f"{rid}-v1/{n}" for n in ("lecture.mp4", "page.html", "worksheet.txt")]
    assert z.read(f"{rid}-v1/lecture.mp4") == client.video


async def test_fetch_and_transfers(client):
    rid = client.res["resource_id"]
    sheet = next(f["cid"] for f in client.res["files"] if f["path"] == "worksheet.txt")
    remove_block(client.home.path, sheet)
    page = await client.get(f"/r/{rid}")
    assert "尚未保存" in page.text and 'class="fetch"' in page.text
    token = csrf_of(page.text)
    r = await client.get(f"/r/{rid}/files/worksheet.txt")
    assert r.status_code == 404
    assert (await client.get(f"/r/{rid}/zip")).status_code == 404
    assert (await client.post(f"/r/{rid}/fetch", data={})).status_code == 403
    assert (await client.post(f"/r/{rid}/fetch", data={"csrf": "wrong"})).status_code == 403
    r = await client.post(f"/r/{rid}/fetch", data={"csrf": token},
                          headers={"accept": "application/json"})
    assert r.status_code == 200 and r.json() == {"id": 1}
    assert client.node.fetched == [rid]
    r = await client.get("/api/transfers", params={"target": rid})
    assert r.json()[0]["bytes_total"] == 100
    r = await client.post(f"/r/{rid}/fetch", data={"csrf": token},
                          headers={"origin": "http://evil.example"})
    assert r.status_code == 403


async def test_language_switch(client):
    r = await client.get("/", headers={"accept-language": "en-US,en;q=0.9"})
    assert "Search words" in r.text and 'lang="en"' in r.text
    r = await client.get("/", headers={"accept-language": "zh-CN"})
    assert "搜索关键词" in r.text
    r = await client.get("/lang/en", params={"next": "/requests"})
    assert r.status_code == 303 and r.headers["location"] == "/requests"
    r = await client.get("/", headers={"accept-language": "zh-CN"})
    assert "Search words" in r.text  # the cookie wins
    r = await client.get("/lang/zh-CN", params={"next": "//evil.example/"})
    assert r.headers["location"] == "/"


def test_catalog_languages_are_complete():
    assert all(len(pair) == 2 and all(pair) for pair in i18n.TEXTS.values())
    assert i18n.choose(None, "fr, en;q=0.5") == "en"
    assert i18n.choose(None, None) == "zh-CN"
    assert i18n.choose("en", "zh") == "en"


async def test_community_page(client, tmp_path):
    r = await client.get("/community", headers={"accept-language": "en"})
    assert r.status_code == 200 and "not in a community yet" in r.text
    from crypto import SchoolKey
    from node import community
    from protocol import records
    cid = community.create(client.home, "青山片区")["community_id"]
    other = SchoolKey.generate()
    library.append_entry(client.home, records.KIND_CERTIFICATE, {
        "community": cid, "school": other.school_id, "role": "member", "issued": 1})
    community.subscribe(client.home, "数学", None)
    r = await client.get("/community", headers={"accept-language": "zh-CN"})
    assert r.status_code == 200
    assert "青山片区" in r.text and "本校：示范校，有效" in r.text
    assert "成员校 · 有效" in r.text and other.school_id[:16] in r.text
    assert "自动获取" in r.text and "数学" in r.text
    community.remove(client.home, other.school_id)
    r = await client.get("/community", headers={"accept-language": "en"})
    assert "member school · removed" in r.text
    assert 'href="/community"' in r.text   # in the navigation of every page


async def test_zip_of_unportable_names_is_renamed_with_a_note(client, tmp_path):
    src = tmp_path / "awkward"
    (src / "Q&A: week 1").mkdir(parents=True)
    for rel, data in {"Lesson.pdf": b"upper", "lesson.pdf": b"lower", "ok.txt": b"ok",
                      "Q&A: week 1/notes?.txt": b"notes",
                      "renamed-files.txt": b"a teacher's own file of that name"}.items():
        (src / rel).write_bytes(data)
    res = library.publish(client.home, [src], {"title": "Awkward names"})
    rid, top = res["resource_id"], f"{res['resource_id']}-v1/"
    r = await client.get(f"/r/{rid}/zip")
    assert r.status_code == 200
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.namelist()[0] == top + "renamed-files.txt"  # the note comes first
    assert {n: z.read(n) for n in z.namelist()[1:]} == {
        top + "Lesson.pdf": b"upper", top + "lesson (2).pdf": b"lower", top + "ok.txt": b"ok",
        top + "Q&A_ week 1/notes_.txt": b"notes",
        top + "renamed-files (2).txt": b"a teacher's own file of that name"}
    note = z.read(top + "renamed-files.txt").decode("utf-8-sig").split("\r\n")
    assert note[3:] == ["Q&A: week 1/notes?.txt  ->  Q&A_ week 1/notes_.txt",
                        "lesson.pdf  ->  lesson (2).pdf",
                        "renamed-files.txt  ->  renamed-files (2).txt", ""]
    assert "U 盘" in note[0] and "USB sticks" in note[1]
    page = await client.get(f"/r/{rid}", headers={"accept-language": "en"})
    assert "In the zip, 3 file name(s) are changed" in page.text
    page = await client.get(f"/r/{rid}", headers={"accept-language": "zh-CN"})
    assert "压缩包里有 3 个文件名已更改" in page.text
    r = await client.get(f"/r/{rid}/files/Q%26A%3A%20week%201/notes%3F.txt?download=1")
    assert r.status_code == 200 and r.content == b"notes"
    assert 'filename="notes_.txt"' in r.headers["content-disposition"]
    # a resource whose names are all fine: no note, no notice, names as published
    fine = (await client.get(f"/r/{client.res['resource_id']}", headers={
        "accept-language": "en"})).text
    assert "In the zip" not in fine


def test_no_text_key_is_defined_twice():
    """Every page text is defined once: a second definition (in node/web/i18n.py or
    texts_features.py) would silently replace the first one's wording on other pages."""
    import ast
    import collections
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "node" / "web"
    keys: list[str] = []
    for name in ("i18n.py", "texts_features.py"):
        for node in ast.walk(ast.parse((root / name).read_text("utf-8"))):
            target = None
            if isinstance(node, ast.AnnAssign | ast.Assign):
                t = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
                target, value = getattr(t, "id", None), node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "update" and node.args:
                target, value = getattr(node.func.value, "id", None), node.args[0]
            if target in ("TEXTS", "FEATURE_TEXTS", "COURSE_TEXTS") and \
                    isinstance(value, ast.Dict):
                keys += [k.value for k in value.keys if isinstance(k, ast.Constant)]
    assert len(keys) > 500
    assert [k for k, n in collections.Counter(keys).items() if n > 1] == []
