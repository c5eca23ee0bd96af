"""protocol/bundle.py: the signed index, its pages, wants files, against the vectors."""

import json
from pathlib import Path

import pytest

from crypto import CID_RAW, SchoolKey, cid_from_str, make_cid
from protocol import bundle, car, codec, dagpb, records
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.paths import check_name

V = json.loads((Path(__file__).parents[1] / "specs/vectors/bundles.json").read_text("utf-8"))
KEY_A = SchoolKey.from_seed(bytes.fromhex(V["keys"][0]["seed"]))
KEY_B = SchoolKey.from_seed(bytes.fromhex(V["keys"][1]["seed"]))


def test_valid_bundle_vector():
    b = V["bundle"]
    header, sections = car.read_car(bytes.fromhex(b["hex"]))
    assert [s.cid for s in sections][:1] == [cid_from_str(b["index_cid"])]  # index first
    assert header.roots == tuple(cid_from_str(r) for r in b["roots"])
    assert header.roots[1] == cid_from_str(b["index_cid"])
    assert len(sections) == b["sections"]
    by_cid = {s.cid: s.data for s in sections}
    index = bundle.decode_index(by_cid[header.roots[1]])
    assert index.raw.hex() == b["index"] and index.school_id == b["school_id"]
    assert [r.first for r in index.feeds] == [1] and [r.last for r in index.feeds] == [2]
    page = bundle.decode_page(by_cid[index.pages[0]])
    assert [h.hex() for h in page.entries] == b["entries"]
    assert [r.id for r in page.resources] == [b["resource_id"]]
    assert page.resources[0].content == cid_from_str(b["content_cid"])
    for h in page.entries:  # an entry's block CID has the entry hash as its digest
        entry = records.decode_entry(by_cid[bundle.entry_cid(h)])
        assert entry.hash == h
    folder = dagpb.decode_node(by_cid[header.roots[0]])
    assert [(link.name, link.cid) for link in folder.links] == [
        (b["library_folder_entry"], cid_from_str(b["content_cid"]))]


def test_wants_vector():
    w = bundle.decode_wants(bytes.fromhex(V["wants"]["hex"]))
    assert w.school_id == V["wants"]["school_id"]
    assert w.asks.to_map() == V["wants"]["asks"]
    assert w.feeds[0].seq == 1 and w.roots == ()


@pytest.mark.parametrize("c", V["bad_index"], ids=lambda c: c["why"])
def test_bad_index(c):
    with pytest.raises(RemoteProtocolError):
        bundle.decode_index(bytes.fromhex(c["hex"]))


@pytest.mark.parametrize("c", V["bad_wants"], ids=lambda c: c["why"])
def test_bad_wants(c):
    with pytest.raises(RemoteProtocolError):
        bundle.decode_wants(bytes.fromhex(c["hex"]))


def test_signatures_are_domain_separated():
    idx = bundle.sign_index(KEY_A, time=1, feeds=[], pages=[])
    m = codec.decode(idx.raw)
    # the same bytes signed as a wants record must not pass as an index, nor vice versa
    wrong = codec.encode({**m, "sig": KEY_A.sign(bundle.WANTS_DOMAIN, codec.encode(
        {k: v for k, v in m.items() if k != "sig"}))})
    with pytest.raises(RemoteProtocolError, match="signature"):
        bundle.decode_index(wrong)
    assert bundle.decode_index(idx.raw) == idx


def test_pages_split_large_lists_and_stay_under_the_record_limit():
    content = cid_from_str(V["bundle"]["content_cid"])
    digits = str.maketrans("0123456789", "abcdefghij")  # resource ids are base32 letters
    refs = [bundle.ResourceRef(id="r" + f"{i:026d}".translate(digits), version=2**40,
                               content=content) for i in range(12_000)]
    entries = [i.to_bytes(32, "big") for i in range(25_000)]
    pages = bundle.paginate(refs, entries)
    assert len(pages) == 3
    decoded = [bundle.decode_page(p) for p in pages]
    assert [r for p in decoded for r in p.resources] == refs
    assert [e for p in decoded for e in p.entries] == entries
    assert all(len(p) <= codec.MAX_RECORD_SIZE for p in pages)
    assert bundle.paginate([], []) == []


def test_page_rejects_duplicates():
    content = cid_from_str(V["bundle"]["content_cid"])
    ref = bundle.ResourceRef(id=V["bundle"]["resource_id"], version=1, content=content)
    with pytest.raises(RemoteProtocolError, match="twice"):
        bundle.decode_page(codec.encode({"resources": [ref.to_map(), ref.to_map()],
                                         "entries": []}))
    with pytest.raises(RemoteProtocolError, match="twice"):
        bundle.decode_page(codec.encode({"resources": [], "entries": [bytes(32), bytes(32)]}))


@pytest.mark.parametrize(("asks", "meta", "match"), [
    (bundle.Asks(all=True), {}, True),
    (bundle.Asks(), {"about": ["数学"]}, False),          # catalog only
    (bundle.Asks(subjects=("Math",)), {"about": ["math"]}, True),
    (bundle.Asks(subjects=("数学",)), {"about": ["语文"]}, False),
    (bundle.Asks(levels=("lower-primary",)), {"educationalLevel": ["lower-primary"]}, True),
    (bundle.Asks(subjects=("数学",), levels=("lower-primary",)),
     {"about": ["数学"], "educationalLevel": ["upper-primary"]}, False),
    (bundle.Asks(subjects=("数学", "科学"), levels=("lower-primary",)),
     {"about": ["科学"], "educationalLevel": ["lower-primary"]}, True),
])
def test_asks_matching(asks, meta, match):
    assert asks.matches(meta) is match


def test_asks_are_validated_when_built():
    with pytest.raises(LocalProtocolError):
        bundle.Asks(all=True, subjects=("x",))
    with pytest.raises(LocalProtocolError, match="unknown level"):
        bundle.Asks(levels=("grade-3",))


@pytest.mark.parametrize(("title", "expect"), [
    ("分数的初步认识", "分数的初步认识 (R)"),
    ("a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j (R)"),
    ("..", "R"),
    ("  line\nbreak. ", "line_break (R)"),
    ("长" * 200, "长" * 60 + " (R)"),
])
def test_view_names_are_safe(title, expect):
    rid = V["bundle"]["resource_id"]
    name = bundle.view_name(title, rid)
    assert name == expect.replace("R", rid)
    check_name(name)


def test_library_folder_groups_above_1000():
    content = cid_from_str(V["bundle"]["content_cid"])
    items = [(f"n{i:05d}", content, 10) for i in range(2500)]
    root, blocks = bundle.library_folder(items)
    top = dagpb.decode_node(blocks[0][1])
    assert blocks[0][0] == root
    assert [link.name for link in top.links] == ["0001", "0002", "0003"]
    assert sum(len(dagpb.decode_node(d).links) for _, d in blocks[1:]) == 2500


def test_entry_cid_is_raw_with_the_entry_hash_as_digest():
    e = records.sign_entry(KEY_A, seq=1, prev=None, time=0, kind="profile",
                           body={"name": "x", "role": "school"})
    assert bundle.entry_cid(e.hash) == make_cid(CID_RAW, e.raw)
