"""Textbook curriculum fields (specs/records.md §5.3): vectors, catalog, CLI and web."""

from __future__ import annotations

import re

import json
from pathlib import Path

import pytest

from crypto import SchoolKey
from node import catalog, library
from protocol import records, vocab
from protocol.errors import LocalProtocolError, RemoteProtocolError
from test_web import client, csrf_of, school, sign_in  # noqa: F401  (fixtures)
from test_web_teach import post_multipart, publish_form

V = json.loads((Path(__file__).parents[1] / "specs/vectors/curriculum.json")
               .read_text("utf-8"))


# -- records -----------------------------------------------------------------------------------

def test_vectors_old_and_new_records_decode_and_chain():
    prev = None
    for v in V["entries"]:
        e = records.decode_entry(bytes.fromhex(v["raw"]))
        assert e.hash.hex() == v["hash"] and e.kind == v["kind"]
        records.check_chain(prev, e)
        prev = e
        if v["meta"] is not None:
            assert e.body["meta"] == v["meta"]
    old, new, adapted = (V["entries"][i]["meta"] for i in (1, 2, 3))
    assert not set(old) & set(catalog.CURRICULUM_FIELDS)      # written before: still valid
    assert new["unit"] == vocab.parse_part("5 时、分、秒")
    assert new["lesson"] == vocab.parse_part("1 认识钟表")
    assert adapted["basedOnLicense"] == ["CC-BY-NC-ND-4.0"]


@pytest.mark.parametrize("b", V["bad"], ids=lambda b: b["why"])
def test_vectors_bad_curriculum_rejected(b):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(b["raw"]))
    # and this node refuses to write it
    m = records.codec.decode(bytes.fromhex(b["raw"]))
    key = SchoolKey.from_seed(bytes.fromhex(V["school_seed"]))
    with pytest.raises(LocalProtocolError):
        records.sign_entry(key, seq=m["seq"], prev=m["prev"], time=m["time"], kind=m["kind"],
                           body=m["body"])


def test_parsing_what_teachers_type():
    assert vocab.parse_grade("学前") == 0 and vocab.parse_grade("12") == 12
    assert vocab.parse_volume("下册") == "second" and vocab.parse_volume("全一册") == "single"
    assert vocab.parse_part("第5单元 时、分、秒") == {"number": 5, "title": "时、分、秒"}
    assert vocab.parse_part("认识钟表", "lesson") == {"title": "认识钟表"}
    for bad in ("13", "三", "-1", ""):
        with pytest.raises(LocalProtocolError):
            vocab.parse_grade(bad)
    with pytest.raises(LocalProtocolError):
        vocab.parse_volume("中册")


# -- catalog and CLI ---------------------------------------------------------------------------

def _lesson(cli, tmp_path, name, title, *opts):
    f = tmp_path / name
    f.write_text(title, "utf-8")
    return cli.json("publish", f, "--title", title, "--subject", "数学", *opts)["resource_id"]


def test_cli_publish_search_in_textbook_order(cli, home, tmp_path):
    book = ("--grade", "3", "--volume", "上册", "--edition", "人教版")
    r2 = _lesson(cli, tmp_path, "b.txt", "秒的认识", *book, "--unit", "5 时、分、秒",
                 "--lesson", "2 秒的认识", "--creator", "王老师")
    r1 = _lesson(cli, tmp_path, "认识钟表课件.txt", "认识钟表", *book,
                 "--unit", "5 时、分、秒", "--lesson", "1 认识钟表",
                 "--license", "CC-BY-NC-ND-4.0")
    r0 = _lesson(cli, tmp_path, "c.txt", "万以内的加法", *book, "--unit", "4 万以内的加法和减法")
    other = _lesson(cli, tmp_path, "d.txt", "认识钟表（北师大）", "--grade", "3",
                    "--volume", "下册", "--edition", "北师大版")
    shown = cli.json("show", r1)["meta"]
    assert shown["grade"] == 3 and shown["volume"] == "first" and shown["edition"] == "人教版"
    assert shown["unit"] == {"number": 5, "title": "时、分、秒"}
    assert shown["educationalLevel"] == ["lower-primary"]   # from the grade
    # a textbook filter lists in unit, then lesson order
    ids = [r["resource_id"] for r in cli.json("search", "--edition", "人教版")]
    assert ids == [r0, r1, r2]
    assert [r["resource_id"] for r in cli.json("search", "--grade", "3", "--volume", "下册")
            ] == [other]
    assert {r["resource_id"] for r in cli.json("search", "--grade", "3")} == {r0, r1, r2, other}
    assert cli.json("search", "--grade", "4") == []
    # creators and file names are searched; lesson titles too
    assert [r["resource_id"] for r in cli.json("search", "王老师")] == [r2]
    assert [r["resource_id"] for r in cli.json("search", "钟表课件")] == [r1]
    assert "人教版 3年级 上册" in cli.ok("search", "--edition", "人教版").stdout
    # update moves it to another lesson; the old version stays valid
    cli.json("update", r2, "--lesson", "3 秒的认识")
    assert cli.json("show", r2)["meta"]["lesson"] == {"number": 3, "title": "秒的认识"}
    # an adaptation of a no-derivatives resource warns and records the original's licence
    f = tmp_path / "adapted.txt"
    f.write_text("改编", "utf-8")
    res = cli.run("publish", f, "--title", "钟表（拼音）", "--based-on", r1, "--json")
    assert res.exit_code == 0 and "does not allow adaptations" in res.stderr
    adapted = json.loads(res.stdout)["resource_id"]
    assert cli.json("show", adapted)["meta"]["basedOnLicense"] == ["CC-BY-NC-ND-4.0"]


@pytest.mark.parametrize("opts", [("--grade", "13"), ("--volume", "中册"), ("--unit", "1000 x"),
                                  ("--grade", "三")])
def test_cli_refuses_bad_curriculum(cli, home, tmp_path, opts):
    f = tmp_path / "a.txt"
    f.write_text("x", "utf-8")
    res = cli.run("publish", f, "--title", "x", *opts)
    assert res.exit_code == 2 and opts[0] in res.stderr
    assert cli.json("search") == []                       # nothing was published
    if opts[0] != "--unit":
        assert cli.run("search", *opts).exit_code == 2


def test_old_catalog_rows_with_unchecked_fields_are_indexed_without_them(tmp_path):
    """A record a node stored before it knew §5.3 may carry bad values: they are not indexed."""
    meta = {"title": "t", "inLanguage": "zh-CN", "license": "CC-BY-4.0", "grade": 99,
            "volume": "first", "edition": "人教版", "unit": {"number": "5"}}
    assert catalog.curriculum(meta) == {"volume": "first", "edition": "人教版"}


# -- web ---------------------------------------------------------------------------------------

async def test_web_publish_edit_search_and_words(client):
    await sign_in(client)
    r = await publish_form(client, [("files", ("钟表.txt", "时针 分针".encode(), "text/plain"))],
                           title="认识钟表", inLanguage="zh-CN", license="CC-BY-NC-ND-4.0",
                           grade="3", volume="first", edition="人教版", unit="5 时、分、秒",
                           lesson="1 认识钟表", timeRequired="40")
    assert r.status_code == 303, r.text
    rid = r.headers["location"].rsplit("/", 1)[1]
    meta = library.show(client.home, rid)["meta"]
    assert (meta["grade"], meta["volume"], meta["edition"]) == (3, "first", "人教版")
    assert meta["lesson"] == {"number": 1, "title": "认识钟表"}
    assert meta["timeRequired"] == "PT40M" and meta["educationalLevel"] == ["lower-primary"]
    page = (await client.get(f"/r/{rid}")).text
    for words in ("40 分钟", "中文", "署名-非商业性使用-禁止演绎", "三年级", "上册",
                  "第5单元 时、分、秒", "第1课 认识钟表"):
        assert words in page, words
    assert ">PT40M<" not in page and ">CC-BY-NC-ND-4.0<" not in page
    client.cookies.set("sm_lang", "en")
    page = (await client.get(f"/r/{rid}")).text
    for words in ("40 minutes", "Chinese", "Attribution-NonCommercial-NoDerivatives",
                  "Grade 3", "Volume 1", "Unit 5 时、分、秒"):
        assert words in page, words
    client.cookies.set("sm_lang", "zh-CN")
    # search filters
    found = (await client.get("/", params={"grade": "3", "volume": "first",
                                           "edition": "人教版"})).text
    assert f"/r/{rid}" in found and "第1课 认识钟表" in found
    none = (await client.get("/", params={"grade": "4"})).text
    assert f"/r/{rid}" not in none
    assert (await client.get("/", params={"grade": "13"})).status_code == 400
    # edit: a new version with the same files, other lesson
    form = (await client.get(f"/r/{rid}/edit")).text
    assert 'value="1 认识钟表"' in form and 'value="人教版"' in form
    action = re.search(r'<form method="post" action="([^"]+)" enctype', form).group(1) \
        .replace("&amp;", "&")
    data = {"csrf": csrf_of(form), "title": "认识钟表", "inLanguage": "zh-CN",
            "license": "CC-BY-NC-ND-4.0", "grade": "3", "volume": "first", "edition": "人教版",
            "unit": "5 时、分、秒", "lesson": "2 认识钟表（二）", "timeRequired": "PT40M",
            "keep": ["钟表.txt"]}
    no_file = [("files", ("", b"", "application/octet-stream"))]   # as browsers send it
    bad = await post_multipart(client, action, dict(data, unit="0 x"), no_file)
    assert bad.status_code == 400 and "unit number" in bad.text
    r = await post_multipart(client, action, data, no_file)
    assert r.status_code == 303, r.text
    shown = library.show(client.home, rid)
    assert shown["version"] == 2 and shown["meta"]["lesson"]["number"] == 2
    assert [f["path"] for f in shown["files"]] == ["钟表.txt"]
    # adapting warns (no derivatives); the adaptation records the original's licence
    adapt = (await client.get("/publish", params={"based_on": rid})).text
    assert 'id="nd-warning"' in adapt and "不允许改编" in adapt and 'value="人教版"' in adapt
    r = await publish_form(client, [("files", ("pinyin.txt", b"x", "text/plain"))],
                           title="认识钟表（拼音）", isBasedOn=rid)
    assert r.status_code == 303, r.text
    new = r.headers["location"].rsplit("/", 1)[1]
    assert library.show(client.home, new)["meta"]["basedOnLicense"] == ["CC-BY-NC-ND-4.0"]
    assert "原作的许可协议" in (await client.get(f"/r/{new}")).text
    # a resource without a no-derivatives licence gives no warning
    plain = (await client.get("/publish", params={"based_on": client.res["resource_id"]})).text
    assert 'id="nd-warning"' not in plain
