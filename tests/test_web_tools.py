"""The text tools in the web adapt flow (issue 18): a signed-in teacher gets a reading hint,
keyword suggestions and drafts from a text file of a resource this node holds."""

from __future__ import annotations

import io
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
    link = f"/publish?based_on={rid}&amp;keywords="
    assert link in r.text
    href = r.text.split(link, 1)[1].split('"', 1)[0]
    form = await client.get(f"/publish?based_on={rid}&keywords={href}")
    keywords = urllib.parse.unquote_plus(href)
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
