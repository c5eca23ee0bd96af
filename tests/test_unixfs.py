"""UnixFS layout against CIDs produced by ipfs-car 3.1.0 / @ipld/unixfs (specs/vectors/unixfs.json)."""

import hashlib
import json
from pathlib import Path

import pytest

from crypto import cid_to_str
from protocol import dagpb, unixfs
from protocol.errors import LocalProtocolError, RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/unixfs.json").read_text("utf-8"))
MIB = 1 << 20


def pattern_chunks(size: int, seed: int, step: int = MIB):
    """Bytes of the vector pattern: byte i = (i*7 + (i >> 20)*13 + seed) & 0xff."""
    i = 0
    while i < size:
        k = i >> 20
        n = min(size - i, MIB - (i & (MIB - 1)), step)
        base = bytes(((j * 7 + k * 13 + seed) & 0xFF) for j in range(256))
        start = i & 0xFF
        yield (base * ((n + start) // 256 + 2))[start:start + n]
        i += n


def pattern(size: int, seed: int) -> bytes:
    return b"".join(pattern_chunks(size, seed))


def test_pattern_matches_definition():
    data = pattern(MIB + 300, 5)
    for i in (0, 1, 255, 256, MIB - 1, MIB, MIB + 299):
        assert data[i] == (i * 7 + (i >> 20) * 13 + 5) & 0xFF


SMALL = [f for f in V["files"] if f["size"] < 64 * MIB]


@pytest.mark.parametrize("f", SMALL, ids=lambda f: f["name"])
def test_file_cids_match_ipfs_car(f):
    root, blocks = unixfs.file_dag(pattern(f["size"], f["seed"]), f["chunk_size"],
                                   f["max_links"])
    assert cid_to_str(root.cid) == f["cid"]
    assert root.content_size == f["size"]
    assert len(blocks) == f["block_count"]  # emitted, duplicates included
    if f["blocks"]:
        assert {cid_to_str(b.cid) for b in blocks} == set(f["blocks"])
    assert blocks[-1].cid == root.cid  # children are emitted before parents


def test_feeding_in_odd_pieces_gives_the_same_dag():
    data = pattern(3 * MIB + 12345, 0)
    ref, _ = unixfs.file_dag(data)
    fb = unixfs.FileBuilder()
    for i in range(0, len(data), 777_777):
        fb.feed(data[i:i + 777_777])
    root, _ = fb.finish()
    assert root == ref


@pytest.mark.slow
def test_multi_level_tree_1025_mib():
    """1026 leaves → 2 parents → root: the three-level default-profile vector."""
    (f,) = [f for f in V["files"] if f["size"] >= 64 * MIB]
    fb = unixfs.FileBuilder()
    count = 0
    for chunk in pattern_chunks(f["size"], f["seed"]):
        count += len(fb.feed(chunk))
    root, rest = fb.finish()
    assert cid_to_str(root.cid) == f["cid"]
    assert count + len(rest) == f["block_count"]


@pytest.mark.parametrize("d", V["directories"], ids=lambda d: d["name"])
def test_directory_cids_match_ipfs_car(d):
    links = {}
    store = {}
    for e in d["entries"]:
        root, blocks = unixfs.file_dag(pattern(e["size"], e["seed"]))
        assert cid_to_str(root.cid) == d["file_cids"][e["path"]]
        links[e["path"]] = root
        store.update((b.cid, b.data) for b in blocks)
    root, blocks = unixfs.directory_dag(links)
    assert cid_to_str(root.cid) == d["root_cid"]
    store.update((b.cid, b.data) for b in blocks)
    listed = unixfs.list_directory(root.cid, store.__getitem__)
    assert {p: cid_to_str(c) for p, c in listed.items()} == d["file_cids"]


def test_read_back_file_bytes():
    data = pattern(5 * 256 + 17, 3)
    root, blocks = unixfs.file_dag(data, 256, 4)
    store = {b.cid: b.data for b in blocks}
    out = b"".join(unixfs.iter_file_chunks(root.cid, store.__getitem__, len(data)))
    assert out == data
    with pytest.raises(RemoteProtocolError):
        b"".join(unixfs.iter_file_chunks(root.cid, store.__getitem__, len(data) + 1))


def test_directory_errors():
    leaf, _ = unixfs.file_dag(b"x")
    with pytest.raises(LocalProtocolError):
        unixfs.directory_dag({})
    with pytest.raises(LocalProtocolError):
        unixfs.directory_dag({"a": leaf, "a/b": leaf})
    with pytest.raises(LocalProtocolError):
        unixfs.directory_dag({f"f{i}": leaf for i in range(unixfs.MAX_DIRECTORY_ENTRIES + 1)})


def _dir_node(names):
    leaf, _ = unixfs.file_dag(b"x")
    return dagpb.encode_node([dagpb.Link(leaf.cid, n, 1) for n in names],
                             dagpb.UnixFSData(dagpb.DIRECTORY))


def test_decode_rejects_non_canonical_nodes():
    good = _dir_node(["a", "b"])
    dagpb.decode_node(good)
    # links out of order: swap the two link fields
    node = dagpb.decode_node(good)
    l1 = dagpb._field(0x12, dagpb._field(0x0A, node.links[0].cid) + dagpb._field(0x12, b"a")
                      + b"\x18\x01")
    l2 = dagpb._field(0x12, dagpb._field(0x0A, node.links[1].cid) + dagpb._field(0x12, b"b")
                      + b"\x18\x01")
    data = dagpb._field(0x0A, b"\x08\x01")
    with pytest.raises(RemoteProtocolError):
        dagpb.decode_node(l2 + l1 + data)
    with pytest.raises(RemoteProtocolError):  # Data before Links
        dagpb.decode_node(data + l1)
    with pytest.raises(RemoteProtocolError):  # truncated
        dagpb.decode_node(good[:-3])
    with pytest.raises(RemoteProtocolError):  # non-minimal varint in a length
        dagpb.decode_node(b"\x0a\x82\x00" + b"\x08\x01")


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "con", "NUL.txt", "a\x00b", "a\nb"])
def test_list_directory_rejects_unsafe_names(name):
    leaf, _ = unixfs.file_dag(b"x")
    # build by hand: encode_node does not validate names (the decoder must)
    link = dagpb._field(0x0A, leaf.cid) + dagpb._field(0x12, name.encode()) + b"\x18\x01"
    node = dagpb._field(0x12, link) + dagpb._field(0x0A, b"\x08\x01")
    cid = dagpb.node_cid(node)
    store = {cid: node, leaf.cid: b"x"}
    with pytest.raises(RemoteProtocolError):
        unixfs.list_directory(cid, store.__getitem__)


def test_leaf_cid_is_sha256():
    root, _ = unixfs.file_dag(b"abc")
    assert root.cid[4:] == hashlib.sha256(b"abc").digest()
