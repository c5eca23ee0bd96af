"""The text inside files: extraction from real Office/PDF/text files, bounds, the background
indexer (own and fetched content), and the migration of a catalog written before it."""

from __future__ import annotations

import io
import json
import sqlite3
import struct

import docx
import openpyxl
import pptx
import pytest
import trio
from fpdf import FPDF

from crypto import CID_DAG_PB, make_cid
from node import catalog, db, events, feeds, library, textindex
from node.blockstore import BlockStore
from node.home import DB_FILE, Home, init_home, now_ms


def make_docx(*paragraphs: str, cell: str = "") -> bytes:
    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    if cell:
        d.add_table(rows=1, cols=1).cell(0, 0).text = cell
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_pptx(title: str, body: str, notes: str) -> bytes:
    p = pptx.Presentation()
    slide = p.slides.add_slide(p.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text_frame.text = body
    slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    p.save(out)
    return out.getvalue()


def make_xlsx(*cells: str) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "口算"
    for i, c in enumerate(cells, 1):
        ws.cell(row=i, column=1, value=c)
    ws.cell(row=1, column=2, value=81)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def make_pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def test_extracts_each_format():
    x = textindex.extract_text
    assert "叶绿体" in x(make_docx("光合作用发生在叶绿体", cell="叶绿素"), "a.docx")
    assert "叶绿素" in x(make_docx("x", cell="叶绿素"), "A.DOCX")
    slides = x(make_pptx("认识钟表", "时针和分针", "提醒学生观察秒针"), "c.pptx")
    assert "认识钟表" in slides and "时针和分针" in slides and "观察秒针" in slides
    sheet = x(make_xlsx("九九乘法口诀", "三七二十一"), "d.xlsx")
    assert "乘法口诀" in sheet and "二十一" in sheet and "81" in sheet and "口算" in sheet
    assert "Photosynthesis and chlorophyll" in x(make_pdf("Photosynthesis and chlorophyll"), "e.pdf")
    assert x("# 分数\n二分之一".encode(), "f.md") == "# 分数\n二分之一"
    assert x("古诗两首".encode("gb18030"), "g.txt") == "古诗两首"   # Windows Chinese text


def _huge_member(data: bytes) -> bytes:
    """The file with its central directory claiming a 4 GiB member (a zip bomb's shape)."""
    pos = data.index(b"PK\x01\x02")
    return data[:pos + 24] + struct.pack("<I", 0xF0000000) + data[pos + 28:]


@pytest.mark.parametrize("name,data,why", [
    ("bad.docx", b"PK\x03\x04 this is not a zip at all", "not a valid Office file"),
    ("cut.docx", make_docx("x" * 2000)[:1500], "not a valid Office file"),
    ("empty.pptx", b"", "not a valid Office file"),
    ("bomb.docx", _huge_member(make_docx("炸弹")), "unpacks to more than"),
    ("noise.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 20, "cannot read it"),
    ("wrong.xlsx", make_docx("a word file named .xlsx"), "cannot read it"),
    ("movie.mp4", b"\0" * 10, "no text is read"),
])
def test_malformed_files_are_errors_not_crashes(name, data, why):
    with pytest.raises(textindex.ExtractError, match=why):
        textindex.extract_text(data, name)


def test_bounds(monkeypatch):
    monkeypatch.setattr(textindex, "MAX_FILE_BYTES", 100)
    with pytest.raises(textindex.ExtractError, match="larger than"):
        textindex.extract_text(b"x" * 101, "a.txt")
    monkeypatch.undo()
    monkeypatch.setattr(textindex, "MAX_TEXT_CHARS", 50)
    assert len(textindex.extract_text(make_docx(*["一二三四五六七八九十"] * 100), "b.docx")) \
        <= 50
    with pytest.raises(textindex.ExtractError, match="too long"):
        textindex.extract_text(make_docx("a", "b"), "c.docx", time_limit=-1)


async def _until(check, what: str) -> None:
    with trio.fail_after(30):
        while not check():
            await trio.sleep(0.05)


def _ids(conn, query: str, **kw) -> list[str]:
    return [r["resource_id"] for r in catalog.search(conn, query, **kw)]


async def test_indexer_own_and_fetched_content(tmp_path):
    a = init_home(tmp_path / "a", "县实验小学", "demonstration")
    b = init_home(tmp_path / "b", "青山村小学", "school")
    src = tmp_path / "src"
    src.mkdir()
    (src / "教案.docx").write_bytes(make_docx("本课学习光合作用", cell="叶绿体"))
    (src / "课件.pptx").write_bytes(make_pptx("植物的一生", "种子发芽", "让学生带一粒蚕豆"))
    (src / "坏文件.docx").write_bytes(b"PK\x03\x04 broken")
    (src / "lab.pdf").write_bytes(make_pdf("chlorophyll absorbs light"))
    own = library.publish(a, [src], {"title": "植物", "creator": "李老师"})["resource_id"]
    assert _ids(a.conn, "蚕豆") == [] and _ids(a.conn, "李老师") == [own]
    bus = events.EventBus()
    async with trio.open_nursery() as nursery:
        await nursery.start(events.DatabaseWatcher(a.path / DB_FILE, bus, interval=0.05).serve)
        await nursery.start(textindex.TextIndexer(a, bus).serve)
        await _until(lambda: _ids(a.conn, "蚕豆") == [own], "own content indexed")
        assert _ids(a.conn, "光合作用 chlorophyll") == [own]
        errors = [e for (e,) in a.conn.execute(
            "SELECT error FROM file_texts WHERE error IS NOT NULL")]
        assert len(errors) == 1 and "not a valid Office file" in errors[0]   # 坏文件.docx
        # a publish by another process: the watcher's event wakes the indexer
        later = tmp_path / "later.txt"
        later.write_text("圆的周长与直径", "utf-8")
        second = library.publish(a, [later], {"title": "圆"})["resource_id"]
        await _until(lambda: _ids(a.conn, "周长") == [second], "second publish indexed")
        nursery.cancel_scope.cancel()
    # school b learns the entries first (replication), the content comes later (a fetch)
    with db.write(b.conn):
        for e in feeds.entries(a.conn, a.feed):
            feeds.append(b.conn, e)
    assert _ids(b.conn, "植物") == [own] and _ids(b.conn, "蚕豆") == []
    bus = events.EventBus()
    async with trio.open_nursery() as nursery:
        indexer = textindex.TextIndexer(b, bus)
        await nursery.start(indexer.serve)
        await _until(lambda: indexer.passes >= 1, "first pass")
        assert _ids(b.conn, "蚕豆") == []          # not here: nothing to read
        for cid, _, _ in a.blocks.sizes():
            b.blocks.put(cid, a.blocks.get(cid))
        content = a.conn.execute("SELECT content FROM resources WHERE resource_id = ?",
                                 (own,)).fetchone()[0]
        with db.write(b.conn):
            db.pin(b.conn, content, "user", own, now_ms())
        bus.publish(events.TransfersChanged())
        await _until(lambda: _ids(b.conn, "蚕豆") == [own], "fetched content indexed")
        nursery.cancel_scope.cancel()
    a.close()
    b.close()


def test_migration_keeps_old_words_and_rebuilds_in_the_background(tmp_path):
    path = tmp_path / DB_FILE
    conn = sqlite3.connect(path, isolation_level=None)
    for sql in db.MIGRATIONS[:10]:
        for stmt in sql.split(";"):
            if stmt.strip():
                conn.execute(stmt)
    conn.execute("PRAGMA user_version = 10")
    meta = {"title": "认识钟表", "inLanguage": "zh-CN", "license": "CC-BY-4.0",
            "creator": "王老师", "grade": 3, "edition": "人教版"}   # from a newer school
    conn.execute("INSERT INTO resources (id, resource_id, feed, school_id, version, first_seq,"
                 " seq, title, language, license, content, meta, files, created, updated)"
                 " VALUES (1, 'r1', x'00', 's', 1, 2, 2, '认识钟表', 'zh-CN', 'CC-BY-4.0',"
                 " ?, ?, '[]', 0, 0)", (make_cid(CID_DAG_PB, b"dir"),
                                        json.dumps(meta, ensure_ascii=False)))
    conn.execute("INSERT INTO catalog_fts(rowid, title, description, keywords, subjects, chars,"
                 " facets) VALUES (1, ?, '', '', '', ?, '')",
                 (catalog.cjk_bigrams("认识钟表"), catalog.cjk_chars("认识钟表")))
    conn.close()
    conn = db.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)
    assert _ids(conn, "钟表") == ["r1"]                 # old words kept
    assert _ids(conn, "王老师") == [] and _ids(conn, None, grade=3) == []
    home = Home(path=tmp_path, conn=conn, blocks=BlockStore(tmp_path / "blocks"))
    assert textindex.index_pass(home, set()) is False
    assert _ids(conn, "王老师") == ["r1"] and _ids(conn, None, grade=3, edition="人教版") == ["r1"]
    assert conn.execute("SELECT text_state FROM resources").fetchone() == (2,)
    conn.close()


async def test_two_real_nodes_text_of_fetched_content_is_searchable(nursery, tmp_path):
    """The daemon runs the indexer: B replicates A's catalog, fetches the content over
    Bitswap, and finds a word that is only inside A's .pptx."""
    from node import daemon
    from node.daemon import Node, Options
    from node.p2p import host as p2p

    async def start(name: str) -> Node:
        home = init_home(tmp_path / name, name, "school")
        opts = Options(listen=["/ip4/127.0.0.1/tcp/0"], request_timeout=2.0)
        return await nursery.start(Node(home, opts).serve)

    a, b = await start("a"), await start("b")
    src = tmp_path / "src"
    src.mkdir()
    (src / "课件.pptx").write_bytes(make_pptx("认识钟表", "时针走一大格是一小时", "拨钟游戏"))
    rid = library.publish(a.home, [src], {"title": "认识钟表", "creator": "王老师",
                                          "grade": 3, "edition": "人教版"})["resource_id"]
    await _until(lambda: _ids(a.home.conn, "拨钟游戏") == [rid], "A indexes its own file")
    daemon.follow(b.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await _until(lambda: _ids(b.home.conn, "王老师", grade=3) == [rid], "B has the catalog")
    assert _ids(b.home.conn, "拨钟游戏") == []      # the content is not here yet
    await b.api_fetch(rid)
    await _until(lambda: _ids(b.home.conn, "拨钟游戏") == [rid], "B indexes fetched content")
