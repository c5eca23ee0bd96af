"""The report commands without a network (specs/oversight.md): the four formats, holdings
summaries and their rate limit, hiding and its refusals, and clear errors for bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from protocol import records
from protocol import report as pr


@pytest.fixture
def founded(cli, home, tmp_path):
    cli.community_id = cli.json("community", "create", "青山片区")["community_id"]
    src = tmp_path / "src"
    src.mkdir()
    (src / "lesson.txt").write_text("分数\n", "utf-8")
    cli.rid = cli.json("publish", src, "--title", "分数的初步认识", "--subject", "数学",
                       "--level", "lower-primary")["resource_id"]
    return cli


def test_report_formats(founded):
    cli = founded
    signed = cli.json("report", "announce")
    assert signed["signed"] and signed["roots"] == 1 and signed["bytes"] == 6
    again = cli.json("report", "announce")
    assert not again["signed"] and again["why"] == "too soon"     # at most every 6 hours
    again = cli.json("report", "announce", "--force")
    assert not again["signed"] and again["why"] == "unchanged"    # never the same set twice
    rep = json.loads(cli.ok("report", "--format", "json").stdout)
    assert cli.ok("report", "--format", "json").stdout == pr.to_json(rep)   # stable
    assert rep["community"] == cli.community_id
    (head,) = rep["heads"].values()
    assert head["seq"] == 4   # profile, charter, publish, holdings (the unchanged one: not signed)
    assert rep["publications"][0]["published"] == 1
    assert rep["audit"]["items"][0]["count"] == 1 and rep["audit"]["rare"] == [cli.rid]
    assert "lower-primary" not in rep["coverage"]["empty_levels"]
    text = cli.ok("report").stdout
    assert "computed from 1 feeds" in text and "held by fewer than 2" in text
    rows = list(csv.reader(io.StringIO(cli.ok("report", "--format", "csv").stdout)))
    assert rows[0][0] == "section" and ["audit"] == [r[0] for r in rows if r[2] == cli.rid]
    html = cli.ok("report", "--format", "html", "--lang", "en").stdout
    assert html.startswith("<!doctype html>") and html.count("data:image/svg+xml;base64,") == 4
    assert "<script" not in html and "http://" not in html.split("<body>", 1)[1].replace(
        "http://www.w3.org", "")
    # a period before anything happened counts nothing, and says so
    empty = json.loads(cli.ok("report", "--format", "json", "--to", "2020-01-01").stdout)
    assert empty["publications"] == [] and empty["period"]["to"] == 1577923200000


def test_hide_and_bad_input(founded):
    cli = founded
    assert "not a date" in cli.run("report", "--from", "2026-13-01").stderr
    assert cli.run("report", "--from", "2026-13-01").exit_code != 0
    assert "before" in cli.fail("report", "--from", "2026-02-01", "--to", "2026-01-01")
    assert "not a community id" in cli.fail("report", "--community", "cnope")
    assert "not a resource id" in cli.fail("report", "hide", "rnope", "--reason", "x")
    assert "reason" in cli.fail("report", "hide", cli.rid, "--reason", "长" * 1001)
    d = cli.json("report", "hide", cli.rid, "--reason", "版权不明")
    assert d["action"] == "hide"
    rep = json.loads(cli.ok("report", "--format", "json").stdout)
    assert [h["reason"] for h in rep["hidden"]] == ["版权不明"] and rep["audit"]["items"] == []
    # the author's own node keeps its resource in search
    assert [r["resource_id"] for r in cli.json("search", "分数")] == [cli.rid]
    cli.json("report", "unhide", cli.rid)
    assert json.loads(cli.ok("report", "--format", "json").stdout)["hidden"] == []


def test_a_school_outside_any_community_cannot_hide(cli, home):
    assert "community" in cli.fail("report", "hide", "r" + "a" * 26, "--reason", "x")
    assert "community" in cli.fail("report", "seed-rare")
    assert records.KIND_HOLDINGS == "holdings"
