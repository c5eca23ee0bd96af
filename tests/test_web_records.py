"""Request and feedback entries (specs/records.md §5): vectors, indexing, replication shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto import SchoolKey
from node import db, feeds
from node.home import init_home
from node import board
from protocol import records
from protocol.errors import LocalProtocolError, RemoteProtocolError

VECTORS = json.loads((Path(__file__).parents[1] / "specs/vectors/records.json").read_text())


def test_community_vectors_decode_and_index(tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    entries = [records.decode_entry(bytes.fromhex(v["raw"]))
               for v in VECTORS["community"]["entries"]]
    assert [e.kind for e in entries] == ["profile", "request", "feedback"]
    assert records.request_id_of(entries[1]) == VECTORS["community"]["request_id"]
    with db.write(home.conn) as conn:
        for e in entries:
            assert feeds.append(conn, e) is feeds.Appended.ADDED
    (q,) = board.list_requests(home)
    assert q["subject"] == "科学" and q["school"] == "龙泉小学"
    fb = board.list_feedback(home, VECTORS["resource_id"]["resource_id"])
    assert fb["average"] == 4 and fb["items"][0]["comment"] == "学生很喜欢"


@pytest.mark.parametrize("vec", VECTORS["bad_community_entries"], ids=lambda v: v["why"])
def test_bad_community_vectors_are_rejected(vec):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(vec["raw"]))


def test_fulfils_must_name_requests():
    meta = {"title": "t", "inLanguage": "en", "license": "MIT"}
    records.validate_meta({**meta, "fulfils": ["q" + "a" * 26]})
    with pytest.raises(LocalProtocolError):
        records.validate_meta({**meta, "fulfils": ["r" + "a" * 26]})


def test_request_id_only_from_request_entries():
    key = SchoolKey.generate()
    e = records.sign_entry(key, seq=1, prev=None, time=0, kind="profile",
                           body={"name": "x", "role": "school"})
    with pytest.raises(LocalProtocolError):
        records.request_id_of(e)
