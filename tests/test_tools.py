"""Offline text tools (issue 18): pinyin, simplified ↔ traditional, keywords, reading hint —
the real libraries on small Chinese texts, and the CLI that writes drafts."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pytest

from node import tools

POEM = "春晓\n春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。\n"
LESSON = ("分数的加法和减法\n"
          "同分母分数相加，分母不变，分子相加。同分母分数相减，分母不变，分子相减。"
          "异分母分数相加减，先通分，再按同分母分数加减法计算。\n")


def test_ruby_html_has_tone_marks_and_follows_context():
    fragment = tools.pinyin_ruby_html(POEM)
    assert "<ruby>春<rt>chūn</rt></ruby>" in fragment
    assert "<ruby>晓<rt>xiǎo</rt></ruby>" in fragment
    # 处处 in this poem is chù (a place), not chǔ: pypinyin reads the phrase
    assert fragment.count("<ruby>处<rt>chù</rt></ruby>") == 2
    assert fragment.count("<p>") == 3
    assert "<ruby>，" not in fragment and "，" in fragment


def test_ruby_html_escapes_everything_else():
    fragment = tools.pinyin_ruby_html('学<script>alert("x")</script>&')
    assert "<script>" not in fragment
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in fragment
    assert "<ruby>学<rt>xué</rt></ruby>" in fragment


def test_pinyin_docx_holds_characters_and_readings(tmp_path):
    path = tmp_path / "poem.docx"
    path.write_bytes(tools.pinyin_docx(POEM))
    text = "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
    assert "春(chūn)眠(mián)不(bù)觉(jué)晓(xiǎo)，" in text


def test_convert_both_ways():
    assert tools.convert("学习汉字", "traditional") == "學習漢字"
    assert tools.convert("學習漢字", "simplified") == "学习汉字"
    # phrase-level: 头发 → 頭髮, 发展 → 發展 (one simplified 发, two traditional characters)
    assert tools.convert("头发发展", "traditional") == "頭髮發展"
    with pytest.raises(tools.ToolError):
        tools.convert("学习", "klingon")


def test_keywords_come_from_the_text():
    words = tools.keywords(LESSON, 5)
    assert 1 <= len(words) <= 5
    assert all(w in LESSON for w in words)
    assert "分母" in words and "分数" in words


def test_reading_hint_grades_and_rare_characters():
    easy = tools.reading_hint("我们是学生，我们爱学习。")
    assert easy["grade"] == 2 and easy["rare"] == []
    hard = tools.reading_hint("饕餮鲲鹏")
    assert hard["grade"] is None
    assert {r["character"] for r in hard["rare"]} >= {"饕", "餮", "鲲"}
    assert {"character": "饕", "pinyin": "tāo"}.items() <= next(
        r for r in hard["rare"] if r["character"] == "饕").items()
    poem = tools.reading_hint(POEM)
    assert poem["characters"] == 22 and sum(poem["bands"].values()) == 22
    # the same text in traditional characters gets the same hint
    assert tools.reading_hint(tools.convert(POEM, "traditional")) == poem
    assert tools.reading_hint("hello")["grade"] is None


def test_nothing_is_sent_off_the_node(tmp_path):
    """Every tool runs in a fresh process in which opening a socket fails."""
    script = (
        "import socket\n"
        "class NoNetwork(socket.socket):\n"
        "    def __init__(self, *a, **k): raise OSError('network used')\n"
        "socket.socket = NoNetwork\n"
        "from node import tools\n"
        f"t = {POEM!r}\n"
        "tools.pinyin_ruby_html(t); tools.pinyin_docx(t); tools.convert(t, 'traditional')\n"
        "tools.keywords(t); tools.reading_hint(t)\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# --- CLI --------------------------------------------------------------------------------------

def test_cli_pinyin_html_and_docx(cli, tmp_path):
    src = tmp_path / "poem.txt"
    src.write_text(POEM, "utf-8")
    out = cli.json("tools", "pinyin", src)["output"]
    assert out == str(tmp_path / "poem.pinyin.html")
    page = Path(out).read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<ruby>春<rt>chūn</rt></ruby>" in page
    # a draft is never replaced without --overwrite
    assert "already exists" in cli.fail("tools", "pinyin", src)
    cli.ok("tools", "pinyin", src, "--overwrite")
    cli.ok("tools", "pinyin", src, "-o", tmp_path / "poem.docx")
    text = "\n".join(p.text for p in docx.Document(str(tmp_path / "poem.docx")).paragraphs)
    assert "春(chūn)" in text


def test_cli_convert_text_and_docx(cli, tmp_path):
    src = tmp_path / "lesson.md"
    src.write_text("# 学习汉字\n", "utf-8")
    result = cli.ok("tools", "convert", src, "--to", "traditional")
    assert "lesson.traditional.md" in result.stdout
    assert (tmp_path / "lesson.traditional.md").read_text("utf-8") == "# 學習漢字\n"
    # a .docx is converted run by run: the bold run stays bold
    document = docx.Document()
    paragraph = document.add_paragraph("学习")
    paragraph.add_run("汉字").bold = True
    document.save(str(tmp_path / "w.docx"))
    cli.ok("tools", "convert", tmp_path / "w.docx", "--to", "traditional")
    runs = docx.Document(str(tmp_path / "w.traditional.docx")).paragraphs[0].runs
    assert [(r.text, bool(r.bold)) for r in runs] == [("學習", False), ("漢字", True)]
    back = cli.json("tools", "convert", tmp_path / "w.traditional.docx", "--to", "simplified",
                    "-o", tmp_path / "back.txt")
    assert Path(back["output"]).read_text("utf-8") == "学习汉字"


def test_cli_keywords_and_reading(cli, tmp_path):
    src = tmp_path / "lesson.txt"
    src.write_text(LESSON, "utf-8")
    words = cli.json("tools", "keywords", src, "--count", "3")
    assert len(words) == 3 and all(w in LESSON for w in words)
    assert cli.ok("tools", "keywords", src).stdout.split()[0] in LESSON
    hint = cli.json("tools", "reading", src)
    assert hint["characters"] > 50 and hint["grade"] in (2, 4, 6, 9)
    assert "Chinese characters" in cli.ok("tools", "reading", src).stdout


def test_cli_bad_input(cli, tmp_path):
    assert "No such file" in cli.fail("tools", "reading", tmp_path / "missing.txt")
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    assert ".docx" in cli.fail("tools", "keywords", tmp_path / "a.pdf")
    (tmp_path / "gbk.txt").write_bytes("春眠不觉晓，处处闻啼鸟".encode("gbk"))
    assert "UTF-8" in cli.fail("tools", "pinyin", tmp_path / "gbk.txt")
    (tmp_path / "fake.docx").write_bytes(b"not a zip")
    assert "not a Word" in cli.fail("tools", "reading", tmp_path / "fake.docx")
    with zipfile.ZipFile(tmp_path / "zip.docx", "w") as z:
        z.writestr("a.txt", "x")
    assert "not a Word" in cli.fail("tools", "reading", tmp_path / "zip.docx")
    (tmp_path / "ok.txt").write_text("学习", "utf-8")
    assert ".html or .docx" in cli.fail("tools", "pinyin", tmp_path / "ok.txt",
                                        "-o", tmp_path / "x.pdf")
    assert "at least 1" in cli.fail("tools", "keywords", tmp_path / "ok.txt", "-n", "0")
    assert not (tmp_path / "x.pdf").exists()
    assert json.loads(cli.ok("tools", "keywords", tmp_path / "ok.txt", "--json").stdout) \
        == ["学习"]


def test_provenance_records_name_version_model_and_instructions_hash():
    import hashlib
    from importlib.metadata import version
    record = tools.provenance("pinyin.html")
    assert record["name"] == "pypinyin" and record["version"] == version("pypinyin")
    assert "model" not in record
    assert record["instructionsHash"] == hashlib.sha256(
        tools.RECIPES["pinyin.html"][2].encode("utf-8")).hexdigest()
    assert tools.provenance("simplified")["model"] == "t2s"
    assert len({tools.provenance(d)["instructionsHash"] for d in tools.RECIPES}) == 4
    with pytest.raises(tools.ToolError):
        tools.provenance("gpt")


def test_cli_publish_with_tool_records_it(cli, tmp_path):
    cli.ok("init", "--name", "青山小学")
    src = tmp_path / "poem.txt"
    src.write_text(POEM, "utf-8")
    original = cli.json("publish", src, "--title", "春晓", "--license", "CC-BY-4.0")
    made = cli.json("tools", "convert", src, "--to", "traditional")
    assert made["tool"] == "traditional"
    adapted = cli.json("publish", made["output"], "--title", "春曉", "--based-on",
                       original["resource_id"], "--tool", made["tool"])
    shown = cli.json("show", adapted["resource_id"])
    assert shown["meta"]["tool"] == tools.provenance("traditional")
    assert shown["meta"]["isBasedOn"] == [original["resource_id"]]
    assert "made with: OpenCC" in cli.ok("show", adapted["resource_id"]).stdout
    assert cli.run("publish", src, "--title", "x", "--tool", "gpt").exit_code == 2
