"""Property tests for the content decoders: Bitswap messages, dag-pb/UnixFS nodes and DAGs,
CARv1 streams and bundle records (index, pages, wants).

Round trips with generated valid values, and any input (random bytes, edited valid encodings,
hostile DAGs) raises only RemoteProtocolError.
"""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import CID_DAG_PB, CID_RAW, make_cid
from prop_strategies import (
    any_value, chunked, cids, dagpb_cids, digests, keys, levels, mutated, names,
    paths, raw_cids, resource_ids, texts, times, twin_edits, unique_sorted,
)
from protocol import bitswap as bs
from protocol import bundle, car, codec, dagpb, unixfs
from protocol.errors import LocalProtocolError, RemoteProtocolError

int32 = st.integers(-(2**31), 2**31 - 1)


def _encode(value):
    try:
        return codec.encode(value)
    except LocalProtocolError:
        return None


@st.composite
def one_byte_changed(draw, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out)


# -- bitswap -----------------------------------------------------------------------------------

entries = st.builds(bs.Entry, cid=st.binary(min_size=1, max_size=bs.MAX_CID_SIZE),
                    priority=int32, cancel=st.booleans(),
                    want_type=st.sampled_from(bs.WantType), send_dont_have=st.booleans())
blocks = st.builds(bs.Block, prefix=st.binary(min_size=1, max_size=bs.MAX_PREFIX_SIZE),
                   data=st.binary(max_size=100))
presences = st.builds(bs.Presence, cid=st.binary(min_size=1, max_size=bs.MAX_CID_SIZE),
                      type=st.sampled_from(bs.PresenceType))
bitswap_messages = st.builds(
    bs.Message, wantlist=st.lists(entries, max_size=4).map(tuple), full=st.booleans(),
    blocks=st.lists(blocks, max_size=3).map(tuple),
    presences=st.lists(presences, max_size=3).map(tuple), pending_bytes=int32)


@given(bitswap_messages)
def test_bitswap_round_trip(msg):
    assert bs.decode_message(bs.encode_message(msg)) == msg
    older = bs.Message(
        wantlist=tuple(bs.Entry(cid=e.cid, priority=e.priority, cancel=e.cancel)
                       for e in msg.wantlist),
        full=msg.full, blocks=msg.blocks, pending_bytes=msg.pending_bytes)
    assert bs.decode_message(bs.encode_message(msg, bs.PROTOCOL_1_1_0)) == older
    v100 = bs.decode_message(bs.encode_message(msg, bs.PROTOCOL_1_0_0))
    assert [b.data for b in v100.blocks] == [b.data for b in msg.blocks]
    assert {b.prefix for b in v100.blocks} <= {bs.CIDV0_PREFIX}


@given(bitswap_messages, st.data())
def test_bitswap_frames_round_trip(msg, data):
    frames = [bs.encode_message(msg)] * 2
    decoder = bs.FrameDecoder()
    got = []
    for piece in data.draw(chunked(b"".join(bs.encode_frame(f) for f in frames))):
        decoder.receive_data(piece)
        while (frame := decoder.next_frame()) is not None:
            got.append(bs.decode_message(frame))
    assert got == [msg, msg]


@given(st.binary(max_size=300) | bitswap_messages.map(bs.encode_message).flatmap(
    one_byte_changed))
def test_bitswap_decode_any_bytes(data):
    try:
        msg = bs.decode_message(data)
    except RemoteProtocolError:
        return
    assert isinstance(msg, bs.Message)


@given(st.binary(max_size=80))
def test_bitswap_cid_helpers_any_bytes(wire):
    try:
        bs.parse_prefix(wire)
    except RemoteProtocolError:
        pass
    cid = bs.normalize_cid(wire)
    assert cid is None or len(cid) == 36
    if cid is not None:
        assert bs.block_cid(bs.Block(prefix=bs.prefix_for(wire), data=b"x")) == \
            make_cid(cid[1], b"x")


# -- dag-pb ------------------------------------------------------------------------------------

links = st.builds(dagpb.Link, cids, st.text(max_size=12), st.integers(0, 2**64 - 1))
unixfs_data = st.builds(
    dagpb.UnixFSData, st.sampled_from((dagpb.RAW, dagpb.DIRECTORY, dagpb.FILE)),
    st.none() | st.binary(max_size=40), st.none() | st.integers(0, 2**64 - 1),
    st.lists(st.integers(0, 2**64 - 1), max_size=4).map(tuple))


@given(st.lists(links, max_size=5), unixfs_data)
def test_dagpb_round_trip(ls, u):
    node = dagpb.decode_node(dagpb.encode_node(ls, u))
    assert node == dagpb.Node(tuple(sorted(ls, key=lambda link: link.name.encode())), u)


@given(st.binary(max_size=300) | st.builds(dagpb.encode_node, st.lists(links, max_size=3),
                                           unixfs_data).flatmap(one_byte_changed))
def test_dagpb_decode_any_bytes(data):
    try:
        node = dagpb.decode_node(data)
    except RemoteProtocolError:
        return
    assert dagpb.encode_node(node.links, node.unixfs) == data  # canonical form only


# -- unixfs ------------------------------------------------------------------------------------

@given(st.binary(max_size=600), st.integers(1, 64), st.integers(2, 4), st.data())
def test_unixfs_file_round_trip(data, chunk_size, max_links, draw):
    root, blocks = unixfs.file_dag(data, chunk_size, max_links)
    store = {b.cid: b.data for b in blocks}
    assert b"".join(unixfs.iter_file_chunks(root.cid, store.__getitem__, len(data))) == data
    start = draw.draw(st.integers(0, len(data)))
    end = draw.draw(st.integers(start, len(data) + 2))
    assert b"".join(unixfs.iter_file_range(root.cid, store.__getitem__, start, end)) == \
        data[start:end]
    assert set(unixfs.iter_dag_cids(root.cid, store.__getitem__)) == set(store)


@given(st.dictionaries(paths, st.binary(max_size=20), min_size=1, max_size=5))
def test_unixfs_directory_round_trip(files):
    try:
        file_links = {p: unixfs.file_dag(d)[0] for p, d in files.items()}
        root, blocks = unixfs.directory_dag(file_links)
    except LocalProtocolError:  # a name used as a file and as a folder
        return
    store = {b.cid: b.data for b in blocks}
    assert unixfs.list_directory(root.cid, store.__getitem__) == \
        {p: link.cid for p, link in file_links.items()}


class Missing(Exception):
    """The test's block store does not have a block (the caller's own error passes through)."""


@st.composite
def hostile_dags(draw):
    """A verified block store (every block matches its CID) holding arbitrary blocks and
    dag-pb nodes that link to earlier blocks with arbitrary names, types and sizes."""
    store: dict[bytes, bytes] = {}
    for _ in range(draw(st.integers(1, 6))):
        if store and draw(st.booleans()):
            ls = [dagpb.Link(draw(st.sampled_from(sorted(store))),
                             draw(st.sampled_from(("", "a", "..", "a/b", "con", "x" * 255)) |
                                  names | st.text(max_size=5)),
                             draw(st.integers(0, 2**64 - 1)))
                  for _ in range(draw(st.integers(0, 3)))]
            block = dagpb.encode_node(ls, draw(unixfs_data))
        else:
            block = draw(st.binary(max_size=60))
        codec_ = draw(st.sampled_from((CID_DAG_PB, CID_RAW)))
        store[make_cid(codec_, block)] = block
    return store, draw(st.sampled_from(sorted(store)))


def _get(store):
    def get(cid):
        if cid not in store:
            raise Missing()
        return store[cid]
    return get


@given(hostile_dags(), st.integers(0, 100), st.integers(0, 200))
def test_unixfs_readers_hostile_dags(store_root, start, end):
    store, root = store_root
    for read in (lambda: list(unixfs.iter_file_chunks(root, _get(store), 10)),
                 lambda: list(unixfs.iter_file_range(root, _get(store), start, end)),
                 lambda: list(unixfs.iter_dag_cids(root, _get(store))),
                 lambda: unixfs.list_directory(root, _get(store))):
        try:
            read()
        except (RemoteProtocolError, Missing):
            pass


@given(st.integers(1, 40), st.integers(1, 255))
def test_unixfs_list_directory_deep_or_long(depth, name_len):
    """A peer's folder nested deeper, or with longer paths, than a resource may have."""
    store: dict[bytes, bytes] = {}
    leaf = make_cid(CID_RAW, b"x")
    child = dagpb.Link(leaf, "f", 1)
    for _ in range(depth):
        node = dagpb.encode_node([child], dagpb.UnixFSData(dagpb.DIRECTORY))
        cid = dagpb.node_cid(node)
        store[cid] = node
        child = dagpb.Link(cid, "d" * name_len, len(node))
    try:
        listing = unixfs.list_directory(child.cid, store.__getitem__)
    except RemoteProtocolError:
        return
    assert list(listing.values()) == [leaf]


# -- car ---------------------------------------------------------------------------------------

car_cids = cids | st.tuples(st.integers(0, 300), st.integers(0, 300), st.binary(max_size=64)) \
    .map(lambda t: b"\x01" + car.encode_varint(t[0]) + car.encode_varint(t[1])
         + car.encode_varint(len(t[2])) + t[2])
sections = st.lists(st.tuples(car_cids, st.binary(max_size=80)), max_size=5)


@given(st.lists(car_cids, max_size=3), sections, st.data())
def test_car_round_trip_in_any_pieces(roots, secs, data):
    stream = car.encode_header(roots) + b"".join(car.encode_section(c, d) for c, d in secs)
    keep = data.draw(st.lists(st.booleans(), min_size=len(secs), max_size=len(secs)))
    reader = car.CarReader()
    events = []
    asked = iter(keep)
    for piece in [p for p in data.draw(chunked(stream)) if p] + [b""]:  # b"": end of input
        reader.receive_data(piece)
        while (ev := reader.next_event(lambda cid, n: next(asked))) is not car.NEED_DATA:
            events.append(ev)
            if ev is car.END:
                break
    assert events[0] == car.Header(version=1, roots=tuple(roots),
                                   size=len(car.encode_header(roots)))
    assert events[-1] is car.END
    got = events[1:-1]
    assert [(s.cid, s.length) for s in got] == [(c, len(d)) for c, d in secs]
    assert [s.data for s in got] == [d if k else None for (_, d), k in zip(secs, keep)]
    assert [stream[s.offset:s.offset + s.length] for s in got] == [d for _, d in secs]
    assert reader.offset == len(stream)


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.binary(max_size=40)
    | st.text(max_size=10) | st.builds(cbor2.CBORTag, st.sampled_from((42, 0, 1, 2, 24, 258)),
                                        st.binary(max_size=40) | st.just(b"\x00" + bytes(36))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=8) | st.integers(), inner, max_size=3),
    max_leaves=10)


@given(st.binary(max_size=200) | cbor_values.map(cbor2.dumps)
       | st.builds(lambda r, v: cbor2.dumps({"roots": r, "version": v}),
                   st.lists(cbor_values, max_size=3), st.sampled_from((1, True, 1.0, 2))))
def test_car_header_any_bytes(body):
    try:
        version, roots = car.decode_header(body)
    except RemoteProtocolError:
        return
    assert version == 1
    car.encode_header(roots)  # every root is a whole CID


@given(st.binary(max_size=300) | st.builds(
    lambda h, s: h + s, st.lists(car_cids, max_size=2).map(car.encode_header),
    st.binary(max_size=200)), st.data())
def test_car_reader_any_bytes(stream, data):
    reader = car.CarReader(max_section_size=200)
    want = data.draw(st.booleans())
    try:
        for piece in [p for p in data.draw(chunked(stream)) if p] + [b""]:
            reader.receive_data(piece)
            while reader.next_event(lambda c, n: want) not in (car.NEED_DATA, car.END):
                pass
    except RemoteProtocolError:
        pass
    try:
        car.read_car(stream)
    except RemoteProtocolError:
        pass


# -- bundle ------------------------------------------------------------------------------------

refs = st.builds(bundle.ResourceRef, id=resource_ids, version=st.integers(1, 2**53),
                 content=dagpb_cids)
feed_ranges = st.builds(
    lambda feed, a, b, head: bundle.FeedRange(feed=feed, first=min(a, b), last=max(a, b),
                                              head=head),
    digests, st.integers(1, 2**53), st.integers(1, 2**53), digests)
asks = st.builds(bundle.Asks, all=st.just(True)) | st.builds(
    bundle.Asks, subjects=st.lists(texts(20), max_size=3, unique=True).map(tuple),
    levels=st.lists(levels, max_size=3, unique=True).map(tuple))
heads = st.builds(bundle.Head, feed=digests, seq=st.integers(1, 2**53), hash=digests)


@given(st.lists(refs, max_size=4), st.lists(digests, max_size=4))
def test_bundle_page_round_trip(rs, es):
    """What encode_page writes, decode_page reads back; what it cannot, it refuses."""
    try:
        data = bundle.encode_page(rs, es)
    except LocalProtocolError:
        return
    page = bundle.decode_page(data)
    assert page == bundle.IndexPage(resources=tuple(rs), entries=tuple(es))


@given(keys, times, st.lists(feed_ranges, max_size=3), st.lists(raw_cids, max_size=3))
def test_bundle_index_round_trip(key, time, frs, pages):
    try:
        index = bundle.sign_index(key, time=time, feeds=frs, pages=pages)
    except LocalProtocolError:
        return
    assert bundle.decode_index(index.raw) == index


@given(keys, times, st.lists(heads, max_size=3, unique_by=lambda h: h.feed),
       st.lists(cids, max_size=3), asks)
def test_bundle_wants_round_trip(key, time, hs, roots, a):
    wants = bundle.sign_wants(key, time=time, feeds=hs, roots=roots, asks=a)
    assert bundle.decode_wants(wants.raw) == wants


@given(st.binary(max_size=300))
def test_bundle_records_any_bytes(data):
    for decode in (bundle.decode_page, bundle.decode_index, bundle.decode_wants):
        with pytest.raises(RemoteProtocolError):
            decode(data)


@given(st.builds(lambda rs, es: {"resources": [r.to_map() for r in rs], "entries": es},
                 st.lists(refs, max_size=3), unique_sorted(digests)).flatmap(mutated))
def test_bundle_page_any_map(m):
    data = _encode(m)
    if data is None:
        return
    try:
        page = bundle.decode_page(data)
    except RemoteProtocolError:
        return
    assert bundle.encode_page(page.resources, page.entries) == data


def _signed(key, domain, m):
    """``m`` signed the way the bundle decoders verify it (every field but sig)."""
    unsigned = _encode({k: v for k, v in m.items() if k != "sig"})
    return None if unsigned is None else _encode({**m, "sig": key.sign(domain, unsigned)})


@given(keys, st.data())
def test_bundle_index_signed_but_edited(key, data):
    index = data.draw(st.builds(lambda t, f, p: bundle.sign_index(key, time=t, feeds=f, pages=p),
                                times, st.lists(feed_ranges, max_size=2, unique_by=lambda f:
                                                f.feed), unique_sorted(raw_cids, 2)))
    m = data.draw(mutated({k: v for k, v in codec.decode(index.raw).items() if k != "sig"}))
    raw = _signed(key, bundle.INDEX_DOMAIN, m) if isinstance(m, dict) else _encode(m)
    if raw is None:
        return
    try:
        got = bundle.decode_index(raw)
    except RemoteProtocolError:
        return
    assert bundle.sign_index(key, time=got.time, feeds=got.feeds, pages=got.pages).raw == raw


@given(keys, st.data())
def test_bundle_wants_signed_but_edited(key, data):
    wants = data.draw(st.builds(
        lambda t, h, r, a: bundle.sign_wants(key, time=t, feeds=h, roots=r, asks=a), times,
        st.lists(heads, max_size=2, unique_by=lambda h: h.feed), st.lists(cids, max_size=2),
        asks))
    m = data.draw(mutated({k: v for k, v in codec.decode(wants.raw).items() if k != "sig"}))
    raw = _signed(key, bundle.WANTS_DOMAIN, m) if isinstance(m, dict) else _encode(m)
    if raw is None:
        return
    try:
        got = bundle.decode_wants(raw)
    except RemoteProtocolError:
        return
    assert bundle.sign_wants(key, time=got.time, feeds=got.feeds, roots=got.roots,
                             asks=got.asks).raw == raw


@given(keys, st.data())
def test_bundle_twin_fields_refused(key, data):
    """1 for true, false for 0, at any one place of an index, a wants file or a page (signed
    again where signed): refused."""
    index = data.draw(st.builds(lambda t, f: bundle.sign_index(key, time=t, feeds=f, pages=[]),
                                st.integers(0, 1), st.lists(feed_ranges, max_size=2,
                                                            unique_by=lambda f: f.feed)))
    wants = data.draw(st.builds(
        lambda t, h, a: bundle.sign_wants(key, time=t, feeds=h, roots=[], asks=a),
        st.integers(0, 1), st.lists(heads, max_size=2, unique_by=lambda h: h.feed), asks))
    for record, domain, decode in ((index, bundle.INDEX_DOMAIN, bundle.decode_index),
                                   (wants, bundle.WANTS_DOMAIN, bundle.decode_wants)):
        m = {k: v for k, v in codec.decode(record.raw).items() if k != "sig"}
        for t in twin_edits(m):
            with pytest.raises(RemoteProtocolError):
                decode(_signed(key, domain, t))
    page = data.draw(st.builds(bundle.encode_page, st.lists(refs, max_size=2,
                                                            unique_by=lambda r: r.id),
                               st.just([])))
    for t in twin_edits(codec.decode(page)):
        with pytest.raises(RemoteProtocolError):
            bundle.decode_page(codec.encode(t))


@given(any_value, st.text(max_size=40), resource_ids)
def test_bundle_asks_and_view_names_any_value(value, title, rid):
    try:
        bundle.Asks(all=False, subjects=(value,))
    except LocalProtocolError:
        pass
    assert rid in bundle.view_name(title, rid)
