"""Teacher identities and studios against specs/vectors/teachers.json: two schools' feeds are
admitted by a fresh node (the rule peers use) and give the signers, the studio and the record
of contributions the vectors state; forged entries are refused for the stated reason."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from crypto import SchoolKey, unseal
from node import contributions, db, feeds, identities, studio
from node.home import init_home
from node.teachers import certificates, signer
from protocol import records
from protocol import studio as ps
from protocol.errors import RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/teachers.json").read_text("utf-8"))
KEY = {n: bytes.fromhex(k["public"]) for n, k in V["keys"].items()}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    home = init_home(tmp_path_factory.mktemp("n") / "home", "第三所学校", "school")
    with db.write(home.conn) as conn:
        for name in ("A", "B"):
            gate = feeds.Gate(wanted={KEY[name]: None})
            for raw in V["feeds"][name]:
                e = records.decode_entry(bytes.fromhex(raw))
                assert feeds.admit(conn, e, gate) == feeds.Appended.ADDED
    yield home
    home.close()


def test_signers_and_certificates(node):
    for name in ("A", "B"):
        for s in V["signatures"][name]:
            assert signer(node.conn, KEY[name], s["seq"]).hex() == s["teacher"]
    [m] = certificates(node.conn, KEY["M"])
    assert (m["name"], m["subjects"], m["revoked"]) == ("刘老师", ["数学"], True)
    [v] = certificates(node.conn, KEY["V"])
    assert (v["school"], v["subjects"], v["revoked"]) == ("山村小学", ["数学", "科学"], False)


def test_studio_fold(node):
    want = V["studio"]
    s = studio.get(node.conn, want["id"])
    assert s.master == KEY[want["master"]]
    assert set(s.members) == {KEY[n] for n in want["members"]}
    sub = s.submissions[bytes.fromhex(want["submission"])]
    assert (sub["task"], sub["on_time"], sub["review"]["rating"]) == (
        want["task"], want["on_time"], want["review"])
    assert len(s.comments) == want["comments"]


def test_contributions(node):
    for name, counts in V["contributions"].items():
        rec = contributions.of(node.conn, KEY[name])
        assert rec["counts"] == counts
        assert len(rec["entries"]) == sum(counts.values())


@pytest.mark.parametrize("bad", V["bad_feed_entries"], ids=lambda b: b["why"])
def test_feed_rules(node, bad):
    e = records.decode_entry(bytes.fromhex(bad["raw"]))   # well-formed and signed ...
    before = feeds.head(node.conn, KEY["A"])
    with pytest.raises(RemoteProtocolError, match=bad["error"]):  # ... but refused by admit
        with db.write(node.conn) as conn:
            feeds.admit(conn, e, feeds.Gate(wanted={KEY["A"]: None}))
    assert feeds.head(node.conn, KEY["A"]) == before


@pytest.mark.parametrize("bad", V["bad_bodies"], ids=lambda b: b["why"])
def test_bad_bodies_rejected(bad):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(bad["raw"]))


def test_sealed_key_and_export_file(tmp_path):
    s = V["sealed_key"]
    seed = unseal(bytes.fromhex(s["hex"]), s["password"].encode(), s["magic"].encode())
    assert seed.hex() == s["seed"]
    x = V["export_file"]
    path = tmp_path / "wang.identity"
    path.write_bytes(bytes.fromhex(x["hex"]))
    d = identities.read_export(path, x["password"])
    assert (d["name"], d["subjects"], d["key"].public.raw.hex()) == (
        x["name"], x["subjects"], x["public"])
    assert msgpack  # the file's plaintext is a msgpack map (specs/teachers.md §5.3)


def test_invite_code():
    c = V["invite_code"]
    d = ps.decode_code(c["code"])
    assert (d["studio"], d["school"], d["secret"].hex(), d["seeds"]) == (
        c["studio"], c["school"], c["secret"], c["seeds"])
    assert ps.decode_code(c["code"].lower()) == d


def test_keys():
    for k in V["keys"].values():
        key = SchoolKey.from_seed(bytes.fromhex(k["seed"]))
        assert key.public.raw.hex() == k["public"] and key.school_id == k["school_id"]


def test_a_node_seals_teachers_keys_at_the_production_cost(node):
    identities.add(node, "zhang", "粉笔和黑板-2026", ["英语"])
    (sealed,) = node.conn.execute("SELECT sealed FROM teacher_keys WHERE name = 'zhang'"
                                  ).fetchone()
    magic = V["sealed_key"]["magic"].encode()
    assert sealed.startswith(magic) and sealed[len(magic) + 1] == 17   # log2 N (records.md §1.1)
