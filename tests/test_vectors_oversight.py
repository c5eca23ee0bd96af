"""Holdings summaries, moderation and the community report against
specs/vectors/oversight.json (specs/oversight.md)."""

import json
import random
from pathlib import Path

import pytest

from crypto import SchoolKey
from protocol import records
from protocol import report as pr
from protocol.errors import LocalProtocolError, RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/oversight.json").read_text("utf-8"))
ENTRIES = [records.decode_entry(bytes.fromhex(h)) for h in V["entries"]]


def test_holdings_encoding():
    roots = [bytes.fromhex(h) for h in V["holdings"]["roots"]]
    assert pr.encode_holdings(roots).hex() == V["holdings"]["encoded"]
    assert pr.encode_holdings(reversed(roots)).hex() == V["holdings"]["encoded"]
    got = pr.holdings_set(bytes.fromhex(V["holdings"]["encoded"]))
    assert got == {pr.root_digest(r) for r in roots}
    assert all(len(d) == V["holdings"]["digest_bytes"] for d in got)
    encoded = bytes.fromhex(V["holdings"]["encoded"])
    assert all(pr.holdings_contain(encoded, d) for d in got)
    assert not pr.holdings_contain(encoded, b"\x00" * 6)
    assert not pr.holdings_contain(encoded, b"\xff" * 6)
    assert not pr.holdings_contain(b"", b"\x00" * 6)


def test_moderation_resolution():
    m = V["moderation"]
    hidden, rejected = pr.moderation(V["community_id"], ENTRIES, m["now"])
    assert {rid: {"by": h.by, "reason": h.reason, "entry": h.entry.hex()}
            for rid, h in hidden.items()} == m["hidden"]
    assert [h.hex() for h, _ in rejected] == m["rejected"] == [m["forged_entry"]]
    # before the decision time (minus the tolerated skew) nothing is hidden yet
    early, _ = pr.moderation(V["community_id"], ENTRIES, 0)
    assert early == {}


@pytest.mark.parametrize("name", ["report", "report_window"])
def test_report_is_byte_exact_whatever_the_order(name):
    want = V[name]
    shuffled = ENTRIES + ENTRIES[:3]          # duplicates are ignored
    random.Random(7).shuffle(shuffled)
    got = pr.to_json(pr.compute(V["community_id"], shuffled, start=want["from"],
                                end=want["to"]))
    assert got == want["json"]


def test_report_names_the_feed_heads():
    rep = json.loads(V["report"]["json"])
    last = {}
    for e in ENTRIES:
        last[e.school_id] = e
    assert rep["heads"] == {s: {"seq": e.seq, "hash": e.hash.hex()} for s, e in last.items()}


@pytest.mark.parametrize("case", V["bad_entries"], ids=lambda c: c["why"])
def test_bad_entries_rejected(case):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(case["raw"]))


def test_holdings_limit_and_signing_refuses_bad_bodies():
    key = SchoolKey.from_seed(bytes(32))
    too_many = b"".join(i.to_bytes(6, "big") for i in range(records.HOLDINGS_MAX + 1))
    with pytest.raises(LocalProtocolError, match="at most"):
        records.sign_entry(key, seq=1, prev=None, time=0, kind=records.KIND_HOLDINGS,
                           body={"roots": too_many})
    ok = records.sign_entry(key, seq=1, prev=None, time=0, kind=records.KIND_HOLDINGS,
                            body={"roots": too_many[:-6]})
    assert len(ok.raw) < 1024 * 1024


def test_old_records_stay_valid():
    old = json.loads((Path(__file__).parents[1] / "specs/vectors/records.json")
                     .read_text("utf-8"))
    for e in old["entries"]:
        records.decode_entry(bytes.fromhex(e["raw"]))
