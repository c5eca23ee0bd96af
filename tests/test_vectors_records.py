"""Keys, signatures, canonical encoding and feed entries against specs/vectors/records.json."""

import json
from pathlib import Path

import pytest

from crypto import BadSignature, PublicKey, SchoolKey
from node import db, feeds
from protocol import codec, records
from protocol.errors import RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/records.json").read_text("utf-8"))


@pytest.mark.parametrize("k", V["keys"])
def test_key_and_school_id(k):
    key = SchoolKey.from_seed(bytes.fromhex(k["seed"]))
    assert key.public.raw.hex() == k["public"]
    assert key.school_id == k["school_id"]
    assert PublicKey.from_school_id(k["school_id"]).raw.hex() == k["public"]


def test_school_id_is_the_libp2p_peer_id():
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.peer.id import ID
    for k in V["keys"]:
        lk = Ed25519PrivateKey.new(bytes.fromhex(k["seed"]))
        assert ID.from_pubkey(lk.get_public_key()).to_base58() == k["school_id"]


@pytest.mark.parametrize("bad", ["", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
                                 "not base58 0OIl"])
def test_from_school_id_rejects(bad):
    with pytest.raises(ValueError):
        PublicKey.from_school_id(bad)


@pytest.mark.parametrize("s", V["signatures"])
def test_signatures(s):
    key = SchoolKey.from_seed(bytes.fromhex(s["seed"]))
    msg = bytes.fromhex(s["message"])
    sig = key.sign(s["record_type"], msg)
    assert sig.hex() == s["signature"]
    key.public.verify(s["record_type"], msg, sig)
    with pytest.raises(BadSignature):
        key.public.verify(s["record_type"] + "x", msg, sig)  # domain separation
    with pytest.raises(BadSignature):
        key.public.verify(s["record_type"], msg + b"!", sig)


@pytest.mark.parametrize("c", V["canonical"])
def test_canonical_encoding(c):
    assert codec.encode(c["value_json"]).hex() == c["hex"]
    assert codec.decode(bytes.fromhex(c["hex"])) == c["value_json"]


@pytest.mark.parametrize("c", V["non_canonical"], ids=lambda c: c["why"])
def test_non_canonical_rejected(c):
    with pytest.raises(RemoteProtocolError):
        codec.decode(bytes.fromhex(c["hex"]))


def test_valid_chain_decodes_and_links():
    prev = None
    for e in V["entries"]:
        entry = records.decode_entry(bytes.fromhex(e["raw"]))
        assert entry.hash.hex() == e["hash"]
        assert (entry.seq, entry.kind, entry.school_id) == (e["seq"], e["kind"], e["school_id"])
        records.check_chain(prev, entry)
        prev = entry
    pub = records.decode_entry(bytes.fromhex(V["entries"][1]["raw"]))
    assert records.resource_id_of(pub) == V["resource_id"]["resource_id"]
    assert records.is_resource_id(V["resource_id"]["resource_id"])


@pytest.mark.parametrize("b", V["bad_entries"], ids=lambda b: b["why"])
def test_bad_entries_rejected(b):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(b["raw"]))


def _conn(tmp_path):
    return db.connect(tmp_path / "t.db", create=True)


@pytest.mark.parametrize("c", V["bad_chains"], ids=lambda c: c["why"])
def test_bad_chains_rejected_and_nothing_stored(tmp_path, c):
    conn = _conn(tmp_path)
    first, second = (records.decode_entry(bytes.fromhex(r)) for r in c["entries"])
    with db.write(conn):
        feeds.append(conn, first)
    with pytest.raises(RemoteProtocolError):
        records.check_chain(first, second)
    with pytest.raises(RemoteProtocolError), db.write(conn):
        feeds.append(conn, second)
    assert feeds.head(conn, first.feed) == (1, first.hash)


def test_equivocation_is_kept_as_evidence_and_feed_flagged(tmp_path):
    conn = _conn(tmp_path)
    e1, e2, fork = (records.decode_entry(bytes.fromhex(r)) for r in V["equivocation"]["entries"])
    with db.write(conn):
        assert feeds.append(conn, e1) is feeds.Appended.ADDED
        assert feeds.append(conn, e2) is feeds.Appended.ADDED
        assert feeds.append(conn, e2) is feeds.Appended.DUPLICATE
        assert feeds.append(conn, fork) is feeds.Appended.EQUIVOCATION
    (flag,) = conn.execute("SELECT flagged FROM feeds").fetchone()
    assert "two different entries 2" in flag
    assert conn.execute("SELECT raw FROM conflicts").fetchone()[0] == fork.raw
    # no new entries are trusted from a flagged feed
    e3 = records.decode_entry(bytes.fromhex(V["entries"][2]["raw"]))
    with pytest.raises(RemoteProtocolError, match="not trusted"), db.write(conn):
        feeds.append(conn, e3)


def test_sign_entry_refuses_invalid_bodies():
    key = SchoolKey.from_seed(bytes(32))
    from protocol.errors import LocalProtocolError
    with pytest.raises(LocalProtocolError):
        records.sign_entry(key, seq=1, prev=None, time=0, kind="profile",
                           body={"name": "x", "role": "king"})
    with pytest.raises(LocalProtocolError):
        records.sign_entry(key, seq=1, prev=None, time=0, kind="made.up", body={})
    with pytest.raises(LocalProtocolError):
        records.sign_entry(key, seq=2, prev=None, time=0, kind="profile",
                           body={"name": "x", "role": "school"})


def test_unknown_kind_from_outside_is_stored_not_interpreted():
    """A newer school may use kinds we do not know; the chain must still replicate."""
    key = SchoolKey.from_seed(bytes(32))
    m = {"v": 1, "feed": key.public.raw, "seq": 1, "prev": None, "time": 5,
         "kind": "future.kind", "body": {"x": 1}}
    sig = key.sign(records.ENTRY_DOMAIN, codec.encode(m))
    e = records.decode_entry(codec.encode({**m, "sig": sig}))
    assert e.kind == "future.kind"


def test_unknown_meta_field_from_outside_is_kept_not_refused():
    """A newer school may add a metadata field; older ones must still replicate its feed."""
    from crypto import CID_DAG_PB, CID_RAW, make_cid
    from protocol.errors import LocalProtocolError
    key = SchoolKey.from_seed(bytes(32))
    body = {"version": 1, "content": make_cid(CID_DAG_PB, b"d"),
            "files": [{"path": "a.txt", "cid": make_cid(CID_RAW, b"a"), "size": 1}],
            "meta": {"title": "t", "inLanguage": "en", "license": "CC0-1.0",
                     "futureField": "x"}}
    with pytest.raises(LocalProtocolError, match="unknown metadata"):
        records.sign_entry(key, seq=1, prev=None, time=0, kind="resource.publish", body=body)
    m = {"v": 1, "feed": key.public.raw, "seq": 1, "prev": None, "time": 0,
         "kind": "resource.publish", "body": body}
    raw = codec.encode({**m, "sig": key.sign(records.ENTRY_DOMAIN, codec.encode(m))})
    assert records.decode_entry(raw).body["meta"]["futureField"] == "x"


def test_admit_decides_by_the_entrys_own_feed_and_cutoff(tmp_path):
    """feeds.admit, the one rule for entries from outside (specs/feedsync.md §5)."""
    conn = _conn(tmp_path)
    e1, e2 = (records.decode_entry(bytes.fromhex(r)) for r in V["equivocation"]["entries"][:2])
    other = bytes(32)
    with db.write(conn):
        # the entry must be the one the message names
        with pytest.raises(RemoteProtocolError, match="another feed"):
            feeds.admit(conn, e1, feeds.Gate({e1.feed: None}), feed=other)
        with pytest.raises(RemoteProtocolError, match="names 2"):
            feeds.admit(conn, e1, feeds.Gate({e1.feed: None}), feed=e1.feed, seq=2)
        # follow set and cutoff of the entry's own feed, not of the carrier's
        assert feeds.admit(conn, e1, feeds.Gate({other: None})) is feeds.Appended.UNWANTED
        assert feeds.admit(conn, e1, feeds.Gate({e1.feed: e1.time})) is feeds.Appended.CUT
        assert feeds.admit(conn, e1, feeds.Gate({e1.feed: e1.time}, any_feed=True)) \
            is feeds.Appended.CUT
        assert feeds.head(conn, e1.feed) == (0, None)
        assert feeds.admit(conn, e1, feeds.Gate({}, any_feed=True)) is feeds.Appended.ADDED
        assert feeds.admit(conn, e2, feeds.Gate({e1.feed: e2.time + 1}), feed=e2.feed,
                           seq=2) is feeds.Appended.ADDED
    assert feeds.head(conn, e1.feed) == (2, e2.hash)


def test_tool_provenance_entry():
    """An adaptation made with a text tool (specs/records.md §5.2) decodes and chains."""
    t = V["tool"]
    entry = records.decode_entry(bytes.fromhex(t["entry"]["raw"]))
    assert entry.hash.hex() == t["entry"]["hash"]
    records.check_chain(records.decode_entry(bytes.fromhex(V["entries"][-1]["raw"])), entry)
    meta = entry.body["meta"]
    assert meta["tool"] == t["tool"]
    assert meta["isBasedOn"] == [V["resource_id"]["resource_id"]]
    # what this node writes for the same draft is the vector's record (but for the version
    # of OpenCC installed)
    from node import tools
    mine = tools.provenance("traditional")
    assert dict(mine, version=t["tool"]["version"]) == t["tool"]


@pytest.mark.parametrize("b", V["tool"]["bad"], ids=lambda b: b["why"])
def test_bad_tool_records_rejected(b):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(b["raw"]))


def test_ai_assisted_entries():
    """An adaptation drafted by the AI assistant and an ai-model resource (specs/records.md
    §5.2, §5.3) decode and chain after the tool vector; this node writes the same record."""
    from node import ai
    v = V["ai"]
    prev = records.decode_entry(bytes.fromhex(V["tool"]["entry"]["raw"]))
    for e in v["entries"]:
        entry = records.decode_entry(bytes.fromhex(e["raw"]))
        assert entry.hash.hex() == e["hash"]
        records.check_chain(prev, entry)
        prev = entry
    adapted, model = (records.decode_entry(bytes.fromhex(e["raw"])) for e in v["entries"])
    assert adapted.body["meta"]["tool"] == v["tool"] and ai.is_ai_tool(v["tool"])
    assert adapted.body["meta"]["creator"] == "李老师"
    assert ai.instructions("simplify", grade=2) == v["instructions"]
    mine = ai.provenance(v["tool"]["model"], v["instructions"])
    assert dict(mine, version=v["tool"]["version"]) == v["tool"]
    assert model.body["meta"]["learningResourceType"] == "ai-model"
    assert not ai.is_ai_tool(V["tool"]["tool"])
