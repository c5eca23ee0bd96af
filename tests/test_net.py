"""Several real nodes on 127.0.0.1 in one trio run: replication, gossip, hostile peers."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import pytest
import trio

from crypto import SchoolKey
from node import catalog, daemon, feeds, library
from node.daemon import Node, Options
from node.home import init_home
from node.p2p import host as p2p
from protocol import feedsync, records

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
DEADLINE = 20  # seconds any single wait in these tests may take


@pytest.fixture
def start_node(nursery, tmp_path):
    async def start(name: str) -> Node:
        home = init_home(tmp_path / name, name, "school")
        opts = Options(listen=LOOPBACK, request_timeout=2.0)
        return await nursery.start(Node(home, opts).serve)
    return start


async def wait_for(condition, what: str) -> None:
    with trio.fail_after(DEADLINE):
        while not condition():
            await trio.sleep(0.05)


def titles(node: Node) -> set[str]:
    return {r["title"] for r in catalog.search(node.home.conn, None, limit=100)}


def publish(node: Node, tmp_path, title: str) -> dict:
    d = tmp_path / f"src-{title}"
    d.mkdir()
    (d / "lesson.txt").write_text(f"{title}\n" * 10, "utf-8")
    return library.publish(node.home, [d], {"title": title})


async def test_follow_replicates_from_author_and_through_another_school(start_node, tmp_path):
    a, b, c = [await start_node(n) for n in "abc"]
    publish(a, tmp_path, "Fractions")
    daemon.follow(b.home, a.home.school_id)
    daemon.follow(c.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await wait_for(lambda: "Fractions" in titles(b), "B has A's resource")
    # C is connected only to B: it gets A's signed feed from B, not from the author
    await c.api_connect(p2p.listen_addrs(b.host)[0])
    await wait_for(lambda: "Fractions" in titles(c), "C has A's resource via B")
    assert feeds.head(c.home.conn, a.home.feed) == feeds.head(a.home.conn, a.home.feed)


async def test_new_resource_reaches_a_follower_by_gossip(start_node, tmp_path):
    a, b = await start_node("a"), await start_node("b")
    daemon.follow(b.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await b.sync_now()
    publish(a, tmp_path, "Water cycle")  # written by the library; A's daemon announces it
    await wait_for(lambda: "Water cycle" in titles(b), "gossip + pull")


async def test_unknown_and_stale_heads_are_rejected(start_node):
    a = await start_node("a")
    stranger = SchoolKey.generate()
    head = feedsync.sign_head(stranger, seq=1, hash=bytes(32), time=0)
    assert a.accept_head(head) == "unknown feed"
    daemon.follow(a.home, stranger.school_id)
    assert a.accept_head(head) is None
    own_seq, own_hash = feeds.head(a.home.conn, a.home.feed)
    b_key = SchoolKey.generate()
    # a head at or below what we hold is stale
    e1 = records.sign_entry(b_key, seq=1, prev=None, time=0, kind="profile",
                            body={"name": "b", "role": "school"})
    from node import db
    with db.write(a.home.conn) as conn:
        feeds.append(conn, e1)
    stale = feedsync.sign_head(b_key, seq=1, hash=e1.hash, time=0)
    assert a.accept_head(stale) == "stale"


def _chain(key: SchoolKey, n: int) -> list[records.FeedEntry]:
    out, prev = [], None
    for i in range(1, n + 1):
        kind, body = ("profile", {"name": f"v{i}", "role": "school"})
        e = records.sign_entry(key, seq=i, prev=prev, time=i, kind=kind, body=body)
        out.append(e)
        prev = e.hash
    return out


class FakeFeedServer:
    """A hostile or broken peer speaking the feed protocol with canned entries."""

    def __init__(self, key: SchoolKey, raws: list[bytes], mute: bool = False) -> None:
        self.key, self.raws, self.mute = key, raws, mute

    async def handle(self, stream) -> None:
        from node.p2p.streams import read_frame
        msg = feedsync.parse(feedsync.decode_body(await read_frame(stream, feedsync.MAX_FRAME)))
        if self.mute:
            await trio.sleep_forever()
        if isinstance(msg, feedsync.HeadsRequest):
            reply = feedsync.Heads(heads=(feedsync.Head(feed=self.key.public.raw,
                                                        seq=len(self.raws), hash=bytes(32)),))
        else:
            reply = feedsync.Entries(feed=msg.feed, entries=tuple(self.raws[msg.after:]),
                                     more=False)
        await stream.write(feedsync.encode_frame(reply.to_msg()))
        await stream.close()


@asynccontextmanager
async def fake_peer(server: FakeFeedServer):
    host = p2p.make_host(os.urandom(32), LOOPBACK)
    host.set_stream_handler(feedsync.PROTOCOL_ID, server.handle)
    async with p2p.run_host(host, LOOPBACK):
        yield host


def _tamper(raw: bytes) -> bytes:
    from protocol import codec
    m = codec.decode(raw)
    m["sig"] = bytes([m["sig"][0] ^ 1]) + m["sig"][1:]
    return codec.encode(m)


@pytest.mark.parametrize("case", ["bad signature", "broken chain"])
async def test_hostile_feed_server_stores_nothing_bad(start_node, case, caplog):
    b = await start_node("b")
    key = SchoolKey.generate()
    good = _chain(key, 2)
    if case == "bad signature":
        bad = _tamper(_chain(key, 3)[2].raw)
    else:
        bad = records.sign_entry(key, seq=3, prev=bytes(32), time=3, kind="profile",
                                 body={"name": "x", "role": "school"}).raw
    later = _chain(key, 4)[3].raw
    async with fake_peer(FakeFeedServer(key, [e.raw for e in good] + [bad, later])) as host:
        daemon.follow(b.home, key.school_id)
        await b.api_connect(p2p.listen_addrs(host)[0])
        await b.sync_now()
        # the valid prefix is kept, the bad entry and everything after it are not
        assert feeds.head(b.home.conn, key.public.raw) == (2, good[1].hash)
        assert any("sync: with" in r.getMessage() for r in caplog.records)


async def test_mute_peer_does_not_stop_sync_with_honest_ones(start_node, tmp_path):
    a, b = await start_node("a"), await start_node("b")
    publish(a, tmp_path, "Honest")
    key = SchoolKey.generate()
    async with fake_peer(FakeFeedServer(key, [], mute=True)) as host:
        daemon.follow(b.home, a.home.school_id)
        daemon.follow(b.home, key.school_id)
        await b.api_connect(p2p.listen_addrs(host)[0])
        await b.api_connect(p2p.listen_addrs(a.host)[0])
        with trio.fail_after(DEADLINE):  # the mute peer costs one request timeout (2 s)
            await b.sync_now()
        assert "Honest" in titles(b)


async def test_oversized_and_garbage_requests_are_refused_and_node_keeps_serving(start_node):
    a, b = await start_node("a"), await start_node("b")
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    for payload in (b"\x80\x80\x80\x04" + b"x" * 100,   # announces an 8 MiB frame
                    b"\x05garbage"):
        stream = await b.host.new_stream(a.host.get_id(), [feedsync.PROTOCOL_ID])
        await stream.write(payload)
        with trio.fail_after(DEADLINE):
            try:
                data = await stream.read(100)
            except Exception:  # reset or EOF: the node refused
                data = b""
        assert data == b""
    # A still answers a well-formed request
    heads = await b.sync.heads(a.host.get_id(), [a.home.feed])
    assert heads and heads[0].feed == a.home.feed


async def test_pinned_roots_are_provided_in_the_dht(start_node, tmp_path):
    a, b = await start_node("a"), await start_node("b")
    r = publish(a, tmp_path, "Provided")
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    from crypto import cid_from_str
    root = cid_from_str(r["content_cid"])
    await wait_for(lambda: a.routing.provided(root), "A announced its root")
    with trio.fail_after(DEADLINE):
        providers = await b.routing.find_providers(root)
    assert a.host.get_id() in [p.peer_id for p in providers]
