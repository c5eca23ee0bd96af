"""Bitswap: the sans-IO codec (vectors, round trips, hostile input) and the engine on real
libp2p hosts on 127.0.0.1 (one to four per test, in one trio run, always closed)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from crypto import CID_DAG_PB, CID_RAW, cid_from_str, cid_to_str, make_cid
from node.blockstore import BlockStore
from node.errors import NodeError
from node.p2p import bitswap as engine
from node.p2p.bitswap import BlockExchange, FetchError
from node.p2p.host import listen_addrs, make_host, run_host
from protocol import bitswap as bs
from protocol import dagpb, unixfs
from protocol.errors import LocalProtocolError, RemoteProtocolError

VECTORS = json.loads((Path(__file__).parents[1] / "specs/vectors/bitswap.json").read_text())
LISTEN = ["/ip4/127.0.0.1/tcp/0"]
WANT_TIMEOUT = 1.0     # seconds; short so the tests about silent providers stay quick
TEST_LIMIT = 60        # no test here may run longer than this


# -- codec -----------------------------------------------------------------------------------

def _as_json(msg: bs.Message) -> dict[str, Any]:
    return {
        "wantlist": [{"cid": e.cid.hex(), "priority": e.priority, "cancel": e.cancel,
                      "want_type": int(e.want_type), "send_dont_have": e.send_dont_have}
                     for e in msg.wantlist],
        "full": msg.full,
        "blocks": [{"prefix": b.prefix.hex(), "data": b.data.hex()} for b in msg.blocks],
        "presences": [{"cid": p.cid.hex(), "type": int(p.type)} for p in msg.presences],
        "pending_bytes": msg.pending_bytes,
    }


@pytest.mark.parametrize("vec", VECTORS["messages"], ids=lambda v: v["name"])
def test_vectors_decode(vec):
    raw = bytes.fromhex(vec["hex"])
    msg = bs.decode_message(raw)
    assert _as_json(msg) == vec["expect"]
    if vec["canonical"]:
        assert bs.encode_message(msg) == raw
    else:  # re-encoding gives our canonical form, which decodes to the same message
        assert bs.decode_message(bs.encode_message(msg)) == msg


@pytest.mark.parametrize("vec", VECTORS["bad_messages"], ids=lambda v: v["name"])
def test_vectors_rejected(vec):
    with pytest.raises(RemoteProtocolError, match=vec["error"]):
        bs.decode_message(bytes.fromhex(vec["hex"]))


def test_vector_stream_fed_byte_by_byte():
    stream = bytes.fromhex(VECTORS["frames"]["stream"]["hex"])
    names = VECTORS["frames"]["stream"]["messages"]
    by_name = {v["name"]: v for v in VECTORS["messages"]}
    dec = bs.FrameDecoder()
    got = []
    for i in range(len(stream)):
        dec.receive_data(stream[i:i + 1])
        while (frame := dec.next_frame()) is not None:
            got.append(bs.decode_message(frame))
    dec.end_of_stream()
    assert [_as_json(m) for m in got] == [by_name[n]["expect"] for n in names]


@pytest.mark.parametrize("vec", VECTORS["frames"]["bad"], ids=lambda v: v["name"])
def test_vector_frames_rejected(vec):
    dec = bs.FrameDecoder()
    dec.receive_data(bytes.fromhex(vec["hex"]) + b"\x00" * 16)
    with pytest.raises(RemoteProtocolError, match=vec["error"]):
        dec.next_frame()


def test_vector_cids_are_ours():
    c = VECTORS["cids"]
    assert make_cid(CID_RAW, bytes.fromhex(c["hello_data_hex"])) == cid_from_str(c["hello"])
    assert make_cid(CID_DAG_PB, bytes.fromhex(c["node_data_hex"])) == cid_from_str(c["node"])


def _random_message(rnd: random.Random) -> bs.Message:
    def cid() -> bytes:
        return make_cid(rnd.choice((CID_RAW, CID_DAG_PB)), rnd.randbytes(8))
    entries = tuple(bs.Entry(cid=cid(), priority=rnd.randint(-5, 1 << 30),
                             cancel=rnd.random() < 0.2, want_type=rnd.choice(list(bs.WantType)),
                             send_dont_have=rnd.random() < 0.5)
                    for _ in range(rnd.randint(0, 20)))
    blocks = []
    for _ in range(rnd.randint(0, 5)):
        data = rnd.randbytes(rnd.choice((0, 1, 300, 70_000)))
        blocks.append(bs.Block(prefix=make_cid(CID_RAW, data)[:4], data=data))
    presences = tuple(bs.Presence(cid=cid(), type=rnd.choice(list(bs.PresenceType)))
                      for _ in range(rnd.randint(0, 5)))
    return bs.Message(wantlist=entries, full=rnd.random() < 0.3, blocks=tuple(blocks),
                      presences=presences, pending_bytes=rnd.randint(0, 1 << 20))


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_and_sizes(seed):
    msg = _random_message(random.Random(seed))
    raw = bs.encode_message(msg)
    assert bs.decode_message(raw) == msg
    # The size helpers the engine packs messages with are exact.
    size = sum(bs.entry_size(e) for e in msg.wantlist) + sum(
        bs.block_size(len(b.prefix), len(b.data)) for b in msg.blocks) + sum(
        bs.presence_size(len(p.cid)) for p in msg.presences)
    assert size <= len(raw) <= size + bs.MESSAGE_OVERHEAD
    # The frame a sender writes in parts, without copying the blocks, is the same bytes.
    for protocol in bs.PROTOCOLS:
        assert b"".join(bs.encode_frame_parts(msg, protocol)) == bs.encode_frame(
            bs.encode_message(msg, protocol))


def test_stream_of_random_messages_in_random_pieces():
    rnd = random.Random(7)
    msgs = [_random_message(rnd) for _ in range(30)]
    stream = b"".join(bs.encode_frame(bs.encode_message(m)) for m in msgs)
    dec = bs.FrameDecoder()
    got, pos = [], 0
    while pos < len(stream):
        n = rnd.randint(1, 100_000)
        dec.receive_data(stream[pos:pos + n])
        pos += n
        while (frame := dec.next_frame()) is not None:
            got.append(bs.decode_message(frame))
    dec.end_of_stream()
    assert got == msgs


def test_older_protocols_leave_out_what_they_lack():
    data = b"block"
    msg = bs.Message(wantlist=(bs.Entry(cid=make_cid(CID_RAW, data), want_type=bs.WantType.HAVE,
                                        send_dont_have=True),),
                     blocks=(bs.Block(prefix=bs.CIDV0_PREFIX, data=data),),
                     presences=(bs.Presence(cid=make_cid(CID_RAW, data),
                                            type=bs.PresenceType.HAVE),))
    v11 = bs.decode_message(bs.encode_message(msg, bs.PROTOCOL_1_1_0))
    assert v11.presences == () and v11.wantlist[0].want_type == bs.WantType.BLOCK
    assert not v11.wantlist[0].send_dont_have and v11.blocks == msg.blocks
    v10 = bs.decode_message(bs.encode_message(msg, bs.PROTOCOL_1_0_0))
    assert v10.blocks == (bs.Block(prefix=bs.CIDV0_PREFIX, data=data),)


def test_limits():
    big = bs.MAX_MESSAGE_SIZE + 1
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        bs.decode_message(b"\x00" * big)
    with pytest.raises(LocalProtocolError, match="exceeds"):
        bs.encode_frame(b"\x00" * big)
    with pytest.raises(LocalProtocolError):
        bs.Block(prefix=b"\x01\x55\x12\x20", data=b"\x00" * (bs.MAX_BLOCK_SIZE + 1))
    # A block over 2 MiB inside a message that is itself under 4 MiB.
    data = b"\x00" * (bs.MAX_BLOCK_SIZE + 1)
    body = b"\x0a\x04\x01\x55\x12\x20" + b"\x12" + _uvarint(len(data)) + data
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        bs.decode_message(b"\x1a" + _uvarint(len(body)) + body)
    too_many = b"".join(b"\x1a\x06\x0a\x04\x01\x55\x12\x20"
                        for _ in range(bs.MAX_BLOCKS_PER_MESSAGE + 1))
    with pytest.raises(RemoteProtocolError, match="too many"):
        bs.decode_message(too_many)
    with pytest.raises(LocalProtocolError):
        bs.Entry(cid=b"")
    with pytest.raises(LocalProtocolError):
        bs.Entry(cid=b"x", priority=1 << 31)


def _uvarint(n: int) -> bytes:
    from protocol.varint import encode_uvarint
    return encode_uvarint(n)


def test_frame_decoder_refuses_early_and_at_end():
    dec = bs.FrameDecoder(max_size=1000)
    dec.receive_data(_uvarint(1001))  # refused from the prefix alone, before any payload
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        dec.next_frame()
    dec = bs.FrameDecoder()
    dec.receive_data(_uvarint(10) + b"abc")
    assert dec.next_frame() is None
    with pytest.raises(RemoteProtocolError, match="inside a message"):
        dec.end_of_stream()


def test_cid_helpers():
    data = b"x"
    raw, node = make_cid(CID_RAW, data), make_cid(CID_DAG_PB, data)
    assert bs.normalize_cid(raw) == raw
    assert bs.normalize_cid(node[2:]) == node          # CIDv0 → CIDv1 dag-pb
    assert bs.normalize_cid(b"\x01\x71\x12\x20" + bytes(32)) is None  # dag-cbor: not ours
    assert bs.prefix_for(node[2:]) == bs.CIDV0_PREFIX and bs.prefix_for(raw) == raw[:4]
    assert bs.block_cid(bs.Block(prefix=raw[:4], data=data)) == raw
    assert bs.block_cid(bs.Block(prefix=bs.CIDV0_PREFIX, data=data)) == node
    assert bs.block_cid(bs.Block(prefix=b"\x01\x55\x13\x40", data=data)) is None  # sha2-512
    assert bs.parse_prefix(raw[:4]) == (1, CID_RAW, 0x12, 32)


# -- the engine on real hosts ------------------------------------------------------------------

@dataclass
class Peer:
    store: BlockStore
    ex: BlockExchange
    addr: str
    id: str


async def _run_peer(path: Path, seed: int, kw: dict[str, Any], cls: type[BlockExchange],
                    *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    store = BlockStore(path)
    store.create()
    host = make_host(bytes([seed]) * 32, LISTEN)
    try:
        async with run_host(host, LISTEN), trio.open_nursery() as nursery:
            ex = cls(host, store, **{"want_timeout": WANT_TIMEOUT, **kw})
            await nursery.start(ex.serve)
            addr = listen_addrs(host)[0]
            task_status.started(Peer(store, ex, addr, addr.rsplit("/", 1)[1]))
            await trio.sleep_forever()
    finally:
        store.close()


@asynccontextmanager
async def swarm(tmp_path: Path, *specs: type[BlockExchange] | None,
                **kw: Any) -> AsyncIterator[list[Peer]]:
    """Start one peer per spec (an engine class, None for the normal one); close them all
    concurrently at the end (py-libp2p closes connections slowly, one by one)."""
    with trio.fail_after(TEST_LIMIT):
        async with trio.open_nursery() as nursery:
            peers = [await nursery.start(_run_peer, tmp_path / f"peer{i}", i + 1, kw,
                                         cls or BlockExchange)
                     for i, cls in enumerate(specs)]
            try:
                yield peers
            finally:
                nursery.cancel_scope.cancel()


FILES = {
    "lesson.bin": random.Random(1).randbytes(300_000),      # 19 leaves, two levels of nodes
    "notes/a.txt": "分数的初步认识\n".encode(),
    "notes/b.bin": random.Random(2).randbytes(40_000),
    "notes/copy.bin": random.Random(2).randbytes(40_000),   # the same blocks twice
    "empty.txt": b"",
}
CHUNK, LINKS = 16 * 1024, 4


def publish(store: BlockStore, files: dict[str, bytes] = FILES, *,
            chunk: int = CHUNK) -> tuple[bytes, set[bytes]]:
    """Store a resource directory (small chunks: many blocks); its root and every block CID."""
    roots, cids = {}, set()
    with store.batch() as batch:
        for path, data in files.items():
            root, blocks = unixfs.file_dag(data, chunk, LINKS)
            roots[path] = root
            for b in blocks:
                batch.put_trusted(b.cid, b.data)
                cids.add(b.cid)
        d, blocks = unixfs.directory_dag(roots)
        for b in blocks:
            batch.put_trusted(b.cid, b.data)
            cids.add(b.cid)
    return d.cid, cids


def read_files(store: BlockStore, root: bytes) -> dict[str, bytes]:
    return {p: b"".join(unixfs.iter_file_chunks(c, store.get))
            for p, c in unixfs.list_directory(root, store.get).items()}


async def test_fetch_from_one_provider(tmp_path):
    async with swarm(tmp_path, None, None) as (a, b):
        root, cids = publish(a.store)
        sizes = []
        stats = await b.ex.fetch_dag(root, [a.addr], progress=sizes.append)
        assert read_files(b.store, root) == FILES
        assert stats.blocks_fetched == len(cids) == len(sizes) == stats.wants_sent
        assert stats.bytes_fetched == sum(sizes)
        assert stats.duplicates == 0 and stats.dropped == {} and stats.blocks_local == 0
        assert stats.per_peer == {a.id: len(cids)}
        assert a.ex.statistics()["blocks_sent"] == len(cids)
        # Everything is local now: a second fetch asks nobody for anything.
        again = await b.ex.fetch_dag(root, [a.addr])
        assert again.wants_sent == 0 and again.blocks_local == len(cids)


async def test_fetch_from_two_providers_at_once(tmp_path):
    async with swarm(tmp_path, None, None, None) as (a, b, c):
        root, cids = publish(a.store)
        publish(b.store)
        stats = await c.ex.fetch_dag(root, [a.addr, b.addr])
        assert read_files(c.store, root) == FILES
        assert set(stats.per_peer) == {a.id, b.id}        # both served part of it
        assert sum(stats.per_peer.values()) == stats.blocks_fetched == len(cids)
        sent = a.ex.statistics()["blocks_sent"] + b.ex.statistics()["blocks_sent"]
        assert sent == len(cids) and stats.duplicates == 0


async def test_resume_after_cancel_fetches_no_block_twice(tmp_path):
    # A window of 4 blocks: the first fetch is cancelled after its first blocks arrive.
    async with swarm(tmp_path, None, None, window=4) as (a, b):
        root, cids = publish(a.store)
        with trio.CancelScope() as scope:
            await b.ex.fetch_dag(root, [a.addr], progress=lambda n: scope.cancel())
        assert scope.cancelled_caught
        first = set(b.store)           # durable despite the cancellation
        assert 0 < len(first) < len(cids) and first <= cids
        stats = await b.ex.fetch_dag(root, [a.addr])
        assert read_files(b.store, root) == FILES
        assert stats.blocks_local == len(first)
        assert stats.blocks_fetched == len(cids) - len(first)   # nothing stored twice
        # Blocks the provider had already sent for the cancelled fetch arrive late: they are
        # taken instead of being wanted again, or (at most one window's worth) counted as
        # duplicates when the new want was faster.
        assert stats.wants_sent <= stats.blocks_fetched
        assert stats.duplicates <= 4


async def test_resume_walks_local_nodes(tmp_path):
    """A half-stored DAG (some nodes local, some of their children missing) is completed."""
    async with swarm(tmp_path, None, None) as (a, b):
        root, cids = publish(a.store)
        keep = sorted(cids)[::2]
        with b.store.batch() as batch:
            for cid in keep:
                batch.put(cid, a.store.get(cid))
        stats = await b.ex.fetch_dag(root, [a.addr])
        assert read_files(b.store, root) == FILES
        reachable_local = stats.blocks_local
        assert stats.blocks_fetched == stats.wants_sent == len(cids) - reachable_local
        assert reachable_local <= len(keep)


class WrongBlocks(BlockExchange):
    """Answers every want with the right prefix but other bytes."""

    async def _load(self, todo, budget):
        out = await super()._load(todo, budget)
        return [(cid, want, None if data is None else data + b"!") for cid, want, data in out]


class Mute(BlockExchange):
    """Accepts wants and never answers them."""

    def _on_entry(self, link, entry):
        return None


async def test_provider_sending_wrong_blocks_is_dropped(tmp_path):
    async with swarm(tmp_path, WrongBlocks, None, None) as (bad, good, c):
        root, cids = publish(bad.store)
        publish(good.store)
        stats = await c.ex.fetch_dag(root, [bad.addr, good.addr])
        assert read_files(c.store, root) == FILES
        assert set(stats.dropped) == {bad.id} and "not asked for" in stats.dropped[bad.id]
        assert stats.per_peer.get(bad.id, 0) == 0
        for cid in cids:
            c.store.get(cid)   # every stored block verifies (raises CorruptBlock otherwise)


async def test_silent_provider_does_not_hang_the_fetch(tmp_path):
    async with swarm(tmp_path, Mute, None, None) as (mute, good, c):
        root, _ = publish(mute.store)
        publish(good.store)
        with trio.fail_after(10 * WANT_TIMEOUT):
            stats = await c.ex.fetch_dag(root, [mute.addr, good.addr])
        assert read_files(c.store, root) == FILES
        assert "answered nothing" in stats.dropped[mute.id]


async def test_only_a_silent_provider_fails_cleanly(tmp_path):
    async with swarm(tmp_path, Mute, None) as (mute, c):
        root, _ = publish(mute.store)
        with trio.fail_after(10 * WANT_TIMEOUT), pytest.raises(FetchError) as err:
            await c.ex.fetch_dag(root, [mute.addr])
        assert "no provider could supply block" in str(err.value)
        assert cid_to_str(root) in str(err.value) and "answered nothing" in str(err.value)


async def test_dont_have_sends_the_want_elsewhere(tmp_path):
    async with swarm(tmp_path, None, None, None, None) as (partial, full, c, d):
        root, cids = publish(full.store)
        with partial.store.batch() as batch:   # only the directory node, none of the files
            batch.put(root, full.store.get(root))
        stats = await c.ex.fetch_dag(root, [partial.addr, full.addr])
        assert read_files(c.store, root) == FILES and stats.dropped == {}
        assert partial.ex.statistics()["presences_sent"] > 0     # DONT_HAVE, not silence
        # With only the partial provider, DONT_HAVE ends the fetch at once (no timeout).
        d.ex.want_timeout = 3600
        with trio.fail_after(20), pytest.raises(FetchError, match="does not have it"):
            await d.ex.fetch_dag(root, [partial.addr])


async def test_peer_without_the_dag_gets_few_wants(tmp_path):
    """The daemon lists every connected peer as a provider: one that keeps answering
    DONT_HAVE is asked again only when the others are busy."""
    async with swarm(tmp_path, None, None, None, None) as (empty, full, c1, c2):
        root, cids = publish(full.store)
        for fetcher, order in ((c1, [empty.addr, full.addr]), (c2, [full.addr, empty.addr])):
            stats = await fetcher.ex.fetch_dag(root, order)
            assert read_files(fetcher.store, root) == FILES and stats.dropped == {}
        # Spread evenly it would have had half of the wants of each fetch.
        assert empty.ex.statistics()["wants_received"] < len(cids) // 2


async def test_unreachable_provider_is_reported(tmp_path):
    async with swarm(tmp_path, None) as (a,):
        root, _ = publish(a.store)
        dead = "/ip4/127.0.0.1/tcp/9/p2p/" + a.id   # nothing listens on port 9
        with pytest.raises(FetchError, match="cannot connect"):
            await a.ex.fetch_dag(make_cid(CID_RAW, b"not here"), [dead])


async def test_single_block_root_and_fetch_needs_serve(tmp_path):
    async with swarm(tmp_path, None, None) as (a, b):
        data = b"one small file"
        cid = make_cid(CID_RAW, data)
        a.store.put(cid, data)
        stats = await b.ex.fetch_dag(cid, [a.addr])
        assert b.store.get(cid) == data and stats.blocks_fetched == 1
    idle = BlockExchange(None, BlockStore(tmp_path / "x"))
    with pytest.raises(NodeError, match="not running"):
        await idle.fetch_dag(cid, [])


@pytest.mark.parametrize("protocol", bs.PROTOCOLS)
async def test_replies_travel_on_a_stream_the_provider_opens(tmp_path, protocol):
    """What Helia relies on: we send wants on our stream and read nothing back on it; the
    provider opens its own stream to us for blocks and presences (HAVE, DONT_HAVE).  Peers
    speaking only 1.1.0 or 1.0.0 get replies in their dialect (no presences; 1.0.0: CIDv0)."""
    v12 = protocol == bs.PROTOCOL_1_2_0
    async with swarm(tmp_path, None) as (a,):
        data = dagpb.encode_node([], dagpb.UnixFSData(dagpb.DIRECTORY))
        have = make_cid(CID_DAG_PB, data)
        a.store.put(have, data)
        wire = have if protocol != bs.PROTOCOL_1_0_0 else have[2:]   # 1.0.0 speaks CIDv0
        have2 = make_cid(CID_RAW, b"have me too")
        a.store.put(have2, b"have me too")
        missing, silent = make_cid(CID_RAW, b"missing"), make_cid(CID_RAW, b"silent")
        got: list[bs.Message] = []
        arrived = trio.Event()
        host = make_host(bytes([99]) * 32, LISTEN)

        async def handler(stream: Any) -> None:
            assert stream.get_protocol() == protocol
            dec = bs.FrameDecoder()
            while not arrived.is_set():
                try:
                    dec.receive_data(await stream.read(65536))
                except EOFError:
                    return
                while (frame := dec.next_frame()) is not None:
                    got.append(bs.decode_message(frame))
                    found = {p.cid for m in got for p in m.presences} | {
                        bs.block_cid(b) for m in got for b in m.blocks}
                    if {have, have2, missing} <= found or (not v12 and have in found):
                        arrived.set()

        with trio.fail_after(20):
            async with run_host(host, LISTEN):
                host.set_stream_handler(protocol, handler)
                from libp2p.peer.id import ID

                from node.p2p.host import connect
                await connect(host, a.addr)
                stream = await host.new_stream(ID.from_base58(a.id), [protocol])
                want = bs.Message(wantlist=(
                    bs.Entry(cid=wire, want_type=bs.WantType.BLOCK),
                    # 1.2.0 only (older peers cannot say HAVE): answered HAVE, not the block
                    *([bs.Entry(cid=have2, want_type=bs.WantType.HAVE)] if v12 else []),
                    bs.Entry(cid=missing, send_dont_have=True),
                    bs.Entry(cid=silent, send_dont_have=False)))
                await stream.write(bs.encode_frame(bs.encode_message(want, protocol)))
                await arrived.wait()
                await stream.close()
        blocks = [b for m in got for b in m.blocks]
        assert [bs.block_cid(b) for b in blocks] == [have] and blocks[0].data == data
        assert blocks[0].prefix == bs.prefix_for(wire)
        presences = {(p.cid, p.type) for m in got for p in m.presences}
        if v12:
            assert presences == {(have2, bs.PresenceType.HAVE),
                                 (missing, bs.PresenceType.DONT_HAVE)}
        else:
            assert presences == set()


def test_engine_limits_are_consistent():
    assert engine.MAX_ENTRIES_PER_SEND <= bs.MAX_ENTRIES_PER_MESSAGE
    assert engine.SEND_IDLE_CLOSE < 10      # Helia resets inbound streams idle for 10 s
    assert 1 <= engine.MAX_WANTS_PER_PEER <= engine.MAX_LEDGER_WANTS
    assert engine.MAX_WANTS_PER_PEER <= 1024   # Helia forgets the oldest wants beyond 1,024


# -- serving reads: verified once per VERIFY_TTL ---------------------------------------------

def test_verified_blocks_remember_within_ttl_and_forget_the_oldest_first():
    v = engine._VerifiedBlocks(ttl=10.0, size=2)
    assert not v.fresh(b"a", 0.0)
    v.add(b"a", 0.0)
    assert v.fresh(b"a", 9.9) and not v.fresh(b"a", 10.0)   # expired: forgotten
    assert not v.fresh(b"a", 0.0)
    v.add(b"a", 1.0)
    v.add(b"b", 2.0)
    v.add(b"c", 3.0)            # over size: the oldest (a) goes
    assert not v.fresh(b"a", 3.0) and v.fresh(b"b", 3.0) and v.fresh(b"c", 3.0)
    v.add(b"b", 4.0)            # verified again: now the newest
    v.add(b"d", 5.0)
    assert not v.fresh(b"c", 5.0) and v.fresh(b"b", 5.0) and v.fresh(b"d", 5.0)


def test_serving_reads_verify_a_block_again_once_its_verification_is_old(tmp_path):
    store = BlockStore(tmp_path / "blocks")
    store.create()
    data = random.Random(5).randbytes(300 * 1024)   # a file block, not in small.db
    cid = make_cid(CID_RAW, data)
    store.put(cid, data)
    want = engine._PeerWant(cid, bs.WantType.BLOCK, True)
    verified = engine._VerifiedBlocks(ttl=3600.0, size=16)
    try:
        [(_, _, got)] = engine._read_blocks(store, [(cid, want)], 1 << 30, verified)
        assert got == data and verified.fresh(cid, time.monotonic())
        # the file rots on disk; once the verification is forgotten the rot is found and the
        # block is treated as missing (DONT_HAVE), never sent
        path = store.path(cid)
        rotten = bytearray(path.read_bytes())
        rotten[1000] ^= 0xFF
        path.write_bytes(bytes(rotten))
        [(_, _, got)] = engine._read_blocks(store, [(cid, want)], 1 << 30,
                                             engine._VerifiedBlocks(ttl=3600.0, size=16))
        assert got is None
        verified.ttl = 0.0
        [(_, _, got)] = engine._read_blocks(store, [(cid, want)], 1 << 30, verified)
        assert got is None
    finally:
        store.close()
