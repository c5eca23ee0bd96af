"""The text tools in the web adapt flow (issue 18): a signed-in teacher gets a reading hint,
keyword suggestions and drafts from a text file of a resource this node holds."""

from __future__ import annotations

import io
import re
import urllib.parse

import docx

from node import library
from test_web import client, school, sign_in  # noqa: F401  (fixtures)

TOOLS = "/r/{rid}/tools/worksheet.txt"


async def test_tools_need_a_teacher(client):
    url = TOOLS.format(rid=client.res["resource_id"])
    r = await client.get(url)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    page = await client.get(f"/r/{client.res['resource_id']}")
    assert "/tools/" not in page.text
    await sign_in(client)
    page = await client.get(f"/r/{client.res['resource_id']}")
    assert f'href="{url}"' in page.text
    assert "/tools/lecture.mp4" not in page.text  # only files the tools can read


async def test_tools_page_hint_keywords_and_adapt_link(client):
    await sign_in(client)
    rid = client.res["resource_id"]
    r = await client.get(TOOLS.format(rid=rid), headers={"accept-language": "en"})
    assert r.status_code == 200, r.text
    assert "4 Chinese characters (4 different)" in r.text  # 分数练习
    assert "grade 2" in r.text
    assert "分数" in r.text.split("Suggested keywords", 1)[1]
    links = [h.replace("&amp;", "&") for h in re.findall(r'href="(/publish\?[^"]+)"', r.text)]
    adapt = next(h for h in links if "tool=" not in h)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(adapt).query)
    assert query["based_on"] == [rid]
    keywords = query["keywords"][0]
    form = await client.get(adapt)
    assert f'name="keywords" value="{keywords}"' in form.text and "分数" in keywords


async def test_tools_drafts(client):
    await sign_in(client)
    url = TOOLS.format(rid=client.res["resource_id"])
    r = await client.get(url, params={"make": "pinyin.html"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "worksheet.pinyin.html" in r.headers["content-disposition"]
    assert "<ruby>分<rt>fēn</rt></ruby>" in r.text
    r = await client.get(url, params={"make": "traditional"})
    assert r.text == "分數練習\n1/2 + 1/4 = ?\n"
    assert "worksheet.traditional.txt" in r.headers["content-disposition"]
    r = await client.get(url, params={"make": "pinyin.docx"})
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(r.content)).paragraphs)
    assert "分(fēn)数(shù)" in text
    assert (await client.get(url, params={"make": "klingon"})).status_code == 400


async def test_tools_refuse_what_they_cannot_read(client, tmp_path):
    await sign_in(client)
    rid = client.res["resource_id"]
    assert (await client.get(f"/r/{rid}/tools/lecture.mp4")).status_code == 404
    assert (await client.get(f"/r/{rid}/tools/nothing.txt")).status_code == 404
    src = tmp_path / "gbk"
    src.mkdir()
    (src / "old.txt").write_bytes("春眠不觉晓，处处闻啼鸟".encode("gbk"))
    res = library.publish(client.home, [src], {"title": "GBK", "license": "CC-BY-4.0"})
    r = await client.get(f"/r/{res['resource_id']}/tools/old.txt",
                         headers={"accept-language": "en"})
    assert r.status_code == 400 and "cannot read this file" in r.text


async def test_adapt_with_a_draft_records_the_tool(client):
    from node import tools
    from test_web_teach import csrf_of, post_multipart
    await sign_in(client)
    rid = client.res["resource_id"]
    page = await client.get(TOOLS.format(rid=rid), headers={"accept-language": "en"})
    link = next(h for h in re.findall(r'href="([^"]+)"', page.text) if "tool=traditional" in h)
    form = await client.get(link.replace("&amp;", "&"), headers={"accept-language": "en"})
    assert 'name="tool" value="traditional"' in form.text
    draft = await client.get(TOOLS.format(rid=rid), params={"make": "traditional"})
    r = await post_multipart(client, "/publish", {
        "csrf": csrf_of(form.text), "title": "分數練習", "inLanguage": "zh-TW",
        "license": "CC-BY-4.0", "isBasedOn": rid, "tool": "traditional"},
        [("files", ("worksheet.traditional.txt", draft.content, "text/plain"))])
    assert r.status_code == 303, r.text
    new = r.headers["location"].rsplit("/", 1)[1]
    meta = library.show(client.home, new)["meta"]
    assert meta["tool"] == tools.provenance("traditional") and meta["isBasedOn"] == [rid]
    page = await client.get(f"/r/{new}", headers={"accept-language": "en"})
    assert "Made with" in page.text and "OpenCC 1.4.2 (s2t)" in page.text
    assert meta["tool"]["instructionsHash"][:16] in page.text
    # an unknown tool name is refused, nothing published
    r = await post_multipart(client, "/publish", {
        "csrf": csrf_of(form.text), "title": "x", "inLanguage": "zh-CN",
        "license": "CC-BY-4.0", "tool": "gpt"}, [("files", ("a.txt", b"x", "text/plain"))])
    assert r.status_code == 400
