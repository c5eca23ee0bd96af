"""Previews in the web library: a real .docx and .pptx (made here with python-docx and
python-pptx) turned into page images by the real LibreOffice and pdftoppm, in the background;
a video browsers cannot play gets a clear message."""

from __future__ import annotations

import io
import re
import shutil

import httpx
import pytest
import trio

from node import library
from node.home import init_home
from node.web import auth
from node.web.app import WebConfig, make_app
from test_web import PASSWORD, FakeNode

pytestmark = pytest.mark.skipif(
    shutil.which("soffice") is None or shutil.which("pdftoppm") is None,
    reason="no LibreOffice/poppler-utils: `make test` installs them (Makefile system-deps)")

WAIT_SECONDS = 150      # two conversions by LibreOffice on a slow machine


def _docx() -> bytes:
    import docx
    d = docx.Document()
    d.add_heading("分数的初步认识", 1)
    d.add_paragraph("把一个蛋糕平均分成两份，每份是它的二分之一。")
    d.add_page_break()
    d.add_paragraph("练习：1/2 + 1/4 = ?")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _pptx() -> bytes:
    import pptx
    p = pptx.Presentation()
    for title in ("水的循环", "蒸发", "降水"):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text = title
        s.placeholders[1].text = "小学科学 · 五年级"
    out = io.BytesIO()
    p.save(out)
    return out.getvalue()


@pytest.fixture
async def client(tmp_path, nursery):
    home = init_home(tmp_path / "home", "龙泉小学", "school")
    auth.add_teacher(home.conn, "wang", PASSWORD)
    src = tmp_path / "src"
    src.mkdir()
    (src / "教案.docx").write_bytes(_docx())
    (src / "课件.pptx").write_bytes(_pptx())
    (src / "实验.avi").write_bytes(b"RIFF\0\0\0\0AVI LIST")
    res = library.publish(home, [src], {"title": "水的循环", "license": "CC-BY-4.0"})
    app = make_app(FakeNode(home), WebConfig.for_home(home.path))
    await nursery.start(app.state.web.previews.serve)   # as node/web/server.py runs it
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://school.lan") as c:
        c.home, c.res, c.web = home, res, app.state.web
        yield c
    home.close()


async def _ready(c, url: str) -> str:
    with trio.fail_after(WAIT_SECONDS):
        while True:
            r = await c.get(url)
            assert r.status_code == 200, r.text
            state = re.search(r'data-state="(\w+)"', r.text).group(1)
            if state != "pending":
                return r.text
            assert r.headers["refresh"] == "3"
            await trio.sleep(0.5)


async def test_office_files_show_their_pages_as_images(client):
    from PIL import Image
    rid = client.res["resource_id"]
    page = await client.get(f"/r/{rid}")
    for name in ("教案.docx", "课件.pptx"):   # "open" goes to the preview, not a download
        assert re.search(rf'class="view" href="/r/{rid}/view/{re.escape(_q(name))}"', page.text)
    # a video format browsers cannot play: said plainly, no <video> that would stay black
    assert "浏览器无法播放此视频格式（avi）" in page.text and "实验.avi\"" not in page.text
    got = {}
    for name, pages in (("课件.pptx", 3), ("教案.docx", 2)):
        html = await _ready(client, f"/r/{rid}/view/{_q(name)}")
        assert 'data-state="ready"' in html, html
        imgs = re.findall(r'<img src="([^"]+)"', html)
        assert len(imgs) == pages, (name, imgs)
        r = await client.get(imgs[0])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        got[name] = Image.open(io.BytesIO(r.content)).size
    assert max(got["课件.pptx"]) == 1000 and got["课件.pptx"][0] > got["课件.pptx"][1]  # landscape
    assert max(got["教案.docx"]) == 1000 and got["教案.docx"][0] < got["教案.docx"][1]  # portrait
    # derived data in the node's home, keyed by the file's CID; the signed content is unchanged
    cids = {f["path"]: f["cid"] for f in client.res["files"]}
    assert (client.home.path / "previews" / cids["教案.docx"] / "page-2.png").is_file()
    assert library.show(client.home, rid)["content_cid"] == client.res["content_cid"]
    # the cache is bounded: over its limit, the older preview goes (and is made again later)
    assert client.web.previews.trim(1, keep=cids["教案.docx"]) == 1
    assert not (client.home.path / "previews" / cids["课件.pptx"]).exists()
    assert (client.home.path / "previews" / cids["教案.docx"]).is_dir()
    # no page beyond the last, no preview of a path that is not in the resource
    assert (await client.get(f"/r/{rid}/pages/3/{_q('教案.docx')}")).status_code == 404
    assert (await client.get(f"/r/{rid}/view/nothing.docx")).status_code == 404


async def test_a_document_libreoffice_cannot_read_says_so(client, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "坏.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    res = library.publish(client.home, [bad], {"title": "坏文件", "license": "CC-BY-4.0"})
    html = await _ready(client, f"/r/{res['resource_id']}/view/{_q('坏.pdf')}")
    assert 'data-state="failed"' in html and "无法为此文件生成预览" in html


def _q(name: str) -> str:
    import urllib.parse
    return urllib.parse.quote(name)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is optional: without it "
                    "the page only says the format cannot be played")
async def test_a_video_browsers_cannot_play_is_converted_where_ffmpeg_is(client, tmp_path):
    import json
    import subprocess
    folder = tmp_path / "avi"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "1", "-c:v", "mpeg4", "-c:a", "mp2", str(folder / "实验课.avi")],
                   check=True, timeout=60)
    res = library.publish(client.home, [folder], {"title": "实验课", "license": "CC-BY-4.0"})
    rid = res["resource_id"]
    page = await client.get(f"/r/{rid}")
    assert "<video" not in page.text and f'href="/r/{rid}/view/{_q("实验课.avi")}"' in page.text
    html = await _ready(client, f"/r/{rid}/view/{_q('实验课.avi')}")
    src = re.search(r'<video controls preload="metadata" src="([^"]+)"', html).group(1)
    assert src == f"/r/{rid}/video/{_q('实验课.avi')}"
    r = await client.get(src, headers={"range": "bytes=0-99"})
    assert r.status_code == 206 and r.headers["content-type"] == "video/mp4"
    whole = await client.get(src)
    mp4 = tmp_path / "got.mp4"
    mp4.write_bytes(whole.content)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(mp4)],
        capture_output=True, check=True, timeout=60).stdout)
    codecs = {s["codec_type"]: s for s in probe["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["video"]["height"] == 120
    assert codecs["audio"]["codec_name"] == "aac"
