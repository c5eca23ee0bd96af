"""Chinese-aware full-text search: bigram indexing, safe query building."""

import pytest

from crypto import SchoolKey
from node import catalog, db, feeds
from protocol import records
from crypto import CID_DAG_PB, CID_RAW, make_cid


def test_bigrams():
    assert catalog.cjk_bigrams("分数加法") == " 分数 数加 加法 "
    assert catalog.cjk_bigrams("学") == " 学 "
    assert catalog.cjk_bigrams("grade 3 数学") == "grade 3  数学 "
    assert catalog.cjk_chars("a分数b") == "分 数"


def test_fts_query_quotes_user_text():
    assert catalog.fts_query('water "cycle') == '"water" AND "cycle"'
    assert catalog.fts_query("分数") == '"分数"'
    assert catalog.fts_query("分") == 'chars : "分"'
    assert catalog.fts_query("三年级数学") == '"三年 年级 级数 数学"'
    assert catalog.fts_query("*** ((") is None


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "c.db", create=True)
    key = SchoolKey.from_seed(bytes(32))
    prev = None
    titles = [("三年级数学：分数的初步认识", ["数学"], ["lower-primary"], "zh-CN"),
              ("The water cycle", ["science"], ["upper-primary"], "en"),
              ("古诗两首", ["语文"], ["upper-primary"], "zh-CN")]
    with db.write(c):
        for i, (title, about, levels, lang) in enumerate(titles, start=1):
            body = {"version": 1, "content": make_cid(CID_DAG_PB, bytes([i])),
                    "files": [{"path": "a.txt", "cid": make_cid(CID_RAW, b"a"), "size": 1}],
                    "meta": {"title": title, "inLanguage": lang, "license": "CC0-1.0",
                             "about": about, "educationalLevel": levels}}
            e = records.sign_entry(key, seq=i, prev=prev, time=i, kind="resource.publish",
                                   body=body)
            feeds.append(c, e)
            prev = e.hash
    return c


@pytest.mark.parametrize("q,expected", [
    ("分数", ["三年级数学：分数的初步认识"]),
    ("数学 分数", ["三年级数学：分数的初步认识"]),
    ("诗", ["古诗两首"]),
    ("古诗", ["古诗两首"]),
    ("cycles", ["The water cycle"]),
    ("WATER", ["The water cycle"]),
    ("分数 water", []),
    ('"; DROP TABLE resources; --', []),
    ("NEAR(a b) OR *", []),
])
def test_search(conn, q, expected):
    assert [r["title"] for r in catalog.search(conn, q)] == expected


def test_filters(conn):
    assert len(catalog.search(conn, None, level=["upper-primary"])) == 2
    assert [r["title"] for r in catalog.search(conn, None, subject=["Science"])] == \
        ["The water cycle"]
    assert len(catalog.search(conn, None, language="zh")) == 2
    assert len(catalog.search(conn, None, language="zh-CN")) == 2
    assert catalog.search(conn, None, language="z_") == []
