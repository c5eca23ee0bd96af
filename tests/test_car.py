"""protocol/car.py: CARv1 framing, the incremental reader, and the vectors' bad CAR files."""

import json
import random
from pathlib import Path

import pytest

from crypto import CID_DAG_PB, CID_RAW, cid_codec, cid_from_str, make_cid
from protocol import car
from protocol.errors import LocalProtocolError, RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/bundles.json").read_text("utf-8"))


def _blocks(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        data = rnd.randbytes(rnd.choice([0, 1, 100, 5000, 70_000]))
        out.append((make_cid(CID_RAW if i % 2 else CID_DAG_PB, data), data))
    return out


def _car(roots: list[bytes], blocks: list[tuple[bytes, bytes]]) -> bytes:
    return car.encode_header(roots) + b"".join(car.encode_section(c, d) for c, d in blocks)


def _events(data: bytes, step: int, want=None, skip: bool = False) -> list:
    """Feed ``data`` ``step`` bytes at a time; with ``skip`` use skip_input like a seek."""
    reader = car.CarReader()
    pos, out = 0, []
    while True:
        ev = reader.next_event(want)
        if ev is car.NEED_DATA:
            chunk = data[pos:pos + step]
            pos += len(chunk)
            reader.receive_data(chunk)
            continue
        if ev is car.END:
            return out
        if skip and isinstance(ev, car.Section) and ev.data is None:
            pos += reader.skip_input()
        out.append(ev)


def test_header_is_canonical_dag_cbor_like_ipfs_car():
    # ipfs-car's header for one root: a2 65 "roots" 81 d8 2a 58 25 00 <cid> 67 "version" 01
    root = cid_from_str("bafybeickbpgnstdydyoofzovrcdupxxgqehweewjr7m2xcv3liq24euni4")
    h = car.encode_header([root])
    assert h == (bytes([0x3a]) + b"\xa2eroots\x81\xd8\x2a\x58\x25\x00" + root + b"gversion\x01")
    assert car.decode_header(h[1:]) == (1, (root,))


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_round_trip_any_feed_size(step):
    blocks = _blocks(12)
    data = _car([blocks[0][0]], blocks)
    events = _events(data, step)
    assert isinstance(events[0], car.Header) and events[0].roots == (blocks[0][0],)
    got = [(e.cid, e.data) for e in events[1:]]
    assert got == blocks
    for e, (cid, d) in zip(events[1:], blocks):
        assert data[e.offset:e.offset + e.length] == d


@pytest.mark.parametrize("skip", [False, True], ids=["discard", "seek"])
def test_declined_sections_are_skipped(skip):
    blocks = _blocks(10)
    data = _car([], blocks)
    events = _events(data, 1000, want=lambda cid, n: cid_codec(cid) == CID_DAG_PB, skip=skip)
    sections = events[1:]
    assert [s.cid for s in sections] == [c for c, _ in blocks]
    for s, (cid, d) in zip(sections, blocks):
        assert s.data == (d if cid_codec(cid) == CID_DAG_PB else None)
        assert data[s.offset:s.offset + s.length] == d


def test_empty_roots_and_no_sections():
    assert _events(car.encode_header([]), 5) == [car.Header(version=1, roots=(), size=18)]


def test_cidv0_is_read_as_cidv1_dag_pb():
    data = b"node"
    v1 = make_cid(CID_DAG_PB, data)
    v0 = v1[2:]  # 0x12 0x20 || digest
    raw = car.encode_header([]) + car.encode_varint(len(v0) + len(data)) + v0 + data
    _, sections = car.read_car(raw)
    assert sections[0].cid == v1 and sections[0].data == data


@pytest.mark.parametrize("c", V["bad_cars"], ids=lambda c: c["why"])
def test_bad_headers(c):
    with pytest.raises(RemoteProtocolError, match=c["error"]):
        car.read_car(bytes.fromhex(c["hex"]))


@pytest.mark.parametrize("c", V["bad_sections"], ids=lambda c: c["why"])
def test_bad_sections(c):
    reader = car.CarReader()
    reader.receive_data(bytes.fromhex(c["hex"]))
    reader.receive_data(b"")
    assert isinstance(reader.next_event(), car.Header)
    with pytest.raises(RemoteProtocolError, match=c["error"]):
        while reader.next_event() is not car.END:
            pass


def test_truncation_anywhere_is_an_error_never_silent():
    blocks = _blocks(3)
    data = _car([blocks[0][0]], blocks)
    header_len = len(car.encode_header([blocks[0][0]]))
    bounds = {header_len}
    pos = header_len
    for cid, d in blocks:
        pos += car.section_size(cid, len(d))
        bounds.add(pos)
    for cut in range(len(data)):
        reader = car.CarReader()
        reader.receive_data(data[:cut])
        reader.receive_data(b"")
        if cut in bounds:  # a clean section boundary: a shorter, valid CAR
            _events(data[:cut], 1 << 20)
            continue
        with pytest.raises(RemoteProtocolError):
            while reader.next_event() is not car.END:
                pass


def test_limits_are_named_and_enforced_before_buffering():
    huge = car.encode_header([]) + car.encode_varint(car.MAX_SECTION_SIZE + 1)
    reader = car.CarReader()
    reader.receive_data(huge)
    reader.next_event()
    with pytest.raises(RemoteProtocolError, match="limit"):
        reader.next_event()
    with pytest.raises(LocalProtocolError):
        car.section_head(make_cid(CID_RAW, b""), car.MAX_BLOCK_SIZE + 1)


def test_data_after_end_is_a_local_error():
    reader = car.CarReader()
    reader.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        reader.receive_data(b"x")


def test_reads_a_car_made_by_ipfs_car():
    sample = V.get("ipfs_car")
    if sample is None:
        pytest.skip("the vectors were generated without ipfs-car")
    header, sections = car.read_car(bytes.fromhex(sample["hex"]))
    assert header.roots == (cid_from_str(sample["root"]),)
    assert sections[-1].cid == header.roots[0]  # ipfs-car writes the root last
    leaves = {s.data for s in sections if cid_codec(s.cid) == CID_RAW}
    assert {bytes.fromhex(h) for h in sample["files"].values()} <= leaves


def test_varints():
    for n in (0, 1, 127, 128, 300, 2**35, 2**63 - 1):
        enc = car.encode_varint(n)
        assert car.decode_varint(enc, 0) == (n, len(enc))
        assert car.decode_varint(enc[:-1], 0) is None
    with pytest.raises(RemoteProtocolError):
        car.decode_varint(b"\xff" * 9 + b"\x01", 0)
    with pytest.raises(LocalProtocolError):
        car.encode_varint(2**63)
