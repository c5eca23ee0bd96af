"""Limits on real libp2p hosts on 127.0.0.1: every byte over TCP passes the limiter; the
monthly budget stops Bitswap but not feed sync. Timing is asserted only as a lower bound that
follows from the bucket's own accounting (a slow machine can only make it longer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
import random
from dataclasses import dataclass
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
import trio

from node.blockstore import BlockStore
from node.limits import Limiter
from crypto import CID_RAW, make_cid
from node.p2p.bitswap import BlockExchange, BudgetSpent, FetchError
from node.p2p.host import listen_addrs, make_host, run_host
from protocol.limits import Limits
from tests.test_bitswap import FILES, publish, read_files

LISTEN = ["/ip4/127.0.0.1/tcp/0"]
KiB = 1024


@dataclass
class Peer:
    store: BlockStore
    ex: BlockExchange
    limiter: Limiter
    addr: str


async def _run_peer(path: Path, seed: int, limits: Limits, *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    store = BlockStore(path)
    store.create()
    limiter = Limiter(limits, local_time=lambda: dtime(12, 0))
    host = make_host(bytes([seed]) * 32, LISTEN, limiter=limiter)

    def over_budget() -> str | None:
        return None if limiter.budget_ok() else limiter.budget_message()
    try:
        async with run_host(host, LISTEN), trio.open_nursery() as nursery:
            ex = BlockExchange(host, store, want_timeout=2.0, over_budget=over_budget)
            await nursery.start(ex.serve)
            task_status.started(Peer(store, ex, limiter, listen_addrs(host)[0]))
            await trio.sleep_forever()
    finally:
        store.close()


@asynccontextmanager
async def pair(tmp_path: Path, a: Limits, b: Limits) -> AsyncIterator[tuple[Peer, Peer]]:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            pa = await nursery.start(_run_peer, tmp_path / "a", 1, a)
            pb = await nursery.start(_run_peer, tmp_path / "b", 2, b)
            try:
                yield pa, pb
            finally:
                nursery.cancel_scope.cancel()


async def test_down_limit_applies_to_every_byte_of_a_fetch(tmp_path):
    rate = 256 * KiB
    async with pair(tmp_path, Limits(), Limits(down=rate, lan_unlimited=False)) as (a, b):
        root, _ = publish(a.store)
        t0 = trio.current_time()
        stats = await b.ex.fetch_dag(root, [a.addr])
        elapsed = trio.current_time() - t0
        assert read_files(b.store, root) == FILES
        bucket = b.limiter.buckets["down"]
        # every byte read from TCP was admitted by the bucket: the blocks plus the framing
        # (Noise, Yamux, identify, bitswap messages)
        assert b.limiter.consulted["down"] == bucket.admitted
        assert bucket.admitted > stats.bytes_fetched > 300_000
        # and the bucket could not have admitted more than burst + rate * elapsed
        assert bucket.admitted <= bucket.burst + rate * elapsed + rate * 0.2
        # the sender's side saw the same bytes go out (a LAN peer to it: not limited)
        assert a.limiter.consulted["up"] >= stats.bytes_fetched
        assert a.limiter.buckets["up"].admitted == 0


async def test_lan_unlimited_exempts_loopback_peers(tmp_path):
    async with pair(tmp_path, Limits(), Limits(down=1024, up=1024)) as (a, b):
        root, _ = publish(a.store)
        await b.ex.fetch_dag(root, [a.addr])
        assert b.limiter.consulted["down"] > 300_000
        assert b.limiter.buckets["down"].admitted == 0 and b.limiter.pending["down"] == 0


async def test_spent_budget_stops_content_both_ways(tmp_path):
    limits = Limits(monthly_budget=1_000_000, lan_unlimited=False)
    async with pair(tmp_path, Limits(), limits) as (a, b):
        root, _ = publish(a.store)
        b.limiter.month_used = 1_000_000
        with pytest.raises(BudgetSpent, match="budget .* is spent"):
            await b.ex.fetch_dag(root, [a.addr])
        # as a provider it answers DONT_HAVE instead of sending blocks
        root_b, _ = publish(b.store, {"x.bin": b"x" * 50_000})
        with pytest.raises(Exception):
            await a.ex.fetch_dag(root_b, [b.addr])
        assert b.ex.statistics()["blocks_sent"] == 0
        b.limiter.month_used = 0
        await b.ex.fetch_dag(root, [a.addr])
        assert read_files(b.store, root) == FILES


async def test_budget_spent_during_a_fetch_stops_it(tmp_path):
    limits = Limits(monthly_budget=1_000_000, lan_unlimited=False)
    async with pair(tmp_path, Limits(), limits) as (a, b):
        root, _ = publish(a.store)
        b.limiter.month_used = 1_000_000 - 150_000
        with pytest.raises(BudgetSpent):
            await b.ex.fetch_dag(root, [a.addr])
        assert b.limiter.pending["down"] >= 150_000


async def test_node_with_spent_budget_still_syncs_catalogs_but_fetches_nothing(
        nursery, tmp_path):
    from datetime import datetime

    from node import daemon
    from node import limits as nl
    from node.daemon import Node, Options
    from node.home import init_home
    from node.p2p import host as p2p
    from tests.test_net import publish as publish_resource
    from tests.test_net import titles, wait_for

    async def start(name: str, limits: Limits) -> Node:
        home = init_home(tmp_path / name, name, "school")
        nl.save(home.conn, limits)
        if limits.monthly_budget:
            home.conn.execute("INSERT INTO traffic VALUES (?, ?, 0)",
                              (nl.month_of(datetime.now()), limits.monthly_budget))
        return await nursery.start(Node(home, Options(listen=LISTEN, request_timeout=2.0)).serve)

    a = await start("a", Limits())
    b = await start("b", Limits(monthly_budget=1_000_000, lan_unlimited=False))
    res = publish_resource(a, tmp_path, "Fractions")
    daemon.follow(b.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await wait_for(lambda: "Fractions" in titles(b), "B syncs A's catalog over budget")
    tid = (await b.api_fetch(res["resource_id"]))["id"]
    await wait_for(lambda: b.transfers[tid]["state"] not in ("queued", "running"),
                   "the fetch stops")
    t = (await b.api_transfers())[0]
    assert t["state"] == "waiting" and "budget" in t["error"] and "is spent" in t["error"]
    assert b.exchange.statistics()["blocks_received"] == 0
    assert b.limiter.pending["down"] > 0  # the sync's bytes were counted


async def test_slow_link_progresses_by_bytes_and_sends_no_block_twice(tmp_path):
    """A 192 KiB/s download, blocks of 384 KiB (2 s each), and timeouts of 1 s (want) and 3 s
    (write): a provider whose bytes keep arriving is never dropped although no whole block
    arrives within the want timeout; the provider sends one block per message at this rate
    (a message of all three would take 6 s) and never gives up a write that progresses; no
    block crosses the link twice."""
    rate = 192 * KiB
    async with pair(tmp_path, Limits(), Limits(down=rate, lan_unlimited=False)) as (a, b):
        data = random.Random(5).randbytes(3 * 384 * KiB)
        files = {"video.bin": data}
        root, cids = publish(a.store, files, chunk=384 * KiB)
        a.ex.write_timeout = lambda n: 3.0
        b.ex.want_timeout = 1.0
        before = b.limiter.consulted["down"]
        stats = await b.ex.fetch_dag(root, [a.addr])
        assert read_files(b.store, root) == files
        assert stats.dropped == {} and stats.duplicates == 0
        sent = a.ex.statistics()
        assert sent["blocks_sent"] == len(cids) and sent["write_stalls"] == 0
        assert sent["messages_sent"] >= len(cids) - 1   # the small nodes may share one
        # every byte that came down: the payload plus framing, nothing resent
        assert b.limiter.consulted["down"] - before <= 1.08 * len(data)


async def test_write_that_makes_no_progress_closes_the_connection(tmp_path):
    """The fetcher's link almost stops (1 KiB/s: it takes no Yamux window update for
    seconds): the provider gives up after its write timeout and closes the whole connection
    (a write cut inside a frame would leave it unusable), instead of resetting the stream and
    leaving a connection that carries nothing."""
    async with pair(tmp_path, Limits(), Limits(down=KiB, lan_unlimited=False)) as (a, b):
        data = random.Random(3).randbytes(1024 * KiB)   # one block, 4 x Yamux's window
        root = make_cid(CID_RAW, data)
        a.store.put(root, data)
        a.ex.write_timeout = lambda n: 0.5
        b.ex.want_timeout = 2.0
        with trio.fail_after(30), pytest.raises(FetchError):
            await b.ex.fetch_dag(root, [a.addr])
        with trio.fail_after(30):
            while a.ex.statistics()["write_stalls"] == 0:
                await trio.sleep(0.05)
            while a.ex.host.get_network().get_connections(b.ex.host.get_id()):
                await trio.sleep(0.05)
        assert a.ex.statistics()["blocks_sent"] == 0   # no message was written whole


async def test_sockets_keep_little_unsent_data(tmp_path):
    """Every libp2p TCP socket (dialled and accepted) holds at most NOTSENT_LOWAT unsent bytes
    in the kernel, so control messages are not queued seconds behind blocks on a slow link."""
    import socket

    from node.p2p.ratelimit import NOTSENT_LOWAT, LimitedStream
    from node.p2p.host import connect
    async with pair(tmp_path, Limits(), Limits()) as (a, b):
        await connect(b.ex.host, a.addr)
        socks = []
        for host in (a.ex.host, b.ex.host):
            for conn in host.get_network().get_connections():
                noise = conn.muxed_conn.secured_conn.conn   # Noise's reader-writer
                raw = noise.read_writer.read_write_closer.stream
                assert isinstance(raw, LimitedStream)
                socks.append(raw._stream.stream.socket)
        assert len(socks) == 2
        for sock in socks:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == NOTSENT_LOWAT


async def test_a_short_read_lets_the_rest_of_a_frame_gather(autojump_clock):
    """On a slow link each read would return the one TCP segment that just arrived: after a
    read that returned less than asked (and little), the next read waits COALESCE_DELAY so
    the segments that follow are read at once.  A read that got what it asked for never
    delays the next one."""
    from libp2p.io.trio import TrioTCPStream

    from node.p2p.ratelimit import COALESCE_DELAY, LimitedStream
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        got: list[bytes] = []
        first_read = trio.Event()

        async def writer() -> None:
            out = await listeners[0].accept()
            async with out:
                await out.send_all(b"a" * 1000)
                await first_read.wait()
                await out.send_all(b"b" * 1500)
                await trio.sleep(COALESCE_DELAY / 5)   # the next segment comes a bit later
                await out.send_all(b"c" * 1500)
                await trio.sleep(1)
        nursery.start_soon(writer)
        stream = LimitedStream(TrioTCPStream(await trio.open_tcp_stream("127.0.0.1", port)),
                               Limiter())
        got.append(await stream.read(4000))
        first_read.set()
        got.append(await stream.read(3000))
        await stream.close()
        for listener in listeners:
            await listener.aclose()
    assert got == [b"a" * 1000, b"b" * 1500 + b"c" * 1500]


async def test_two_wan_peers_taking_blocks_share_the_uplink_by_kernel_pacing(tmp_path):
    """specs/links.md §8: while two peers over WAN connections take blocks from a node, the
    node caps each connection's kernel pacing rate (SO_MAX_PACING_RATE) to its part of what the
    uplink carries; when they are done the caps are lifted.  (Loopback counts as LAN and is
    never paced, so the test makes the provider see both connections as WAN.)"""
    import socket

    from node.p2p import ratelimit
    from node.p2p.host import connect

    files = {"video.bin": random.Random(3).randbytes(1_500_000)}
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            a = await nursery.start(_run_peer, tmp_path / "a", 1,
                                    Limits(up=512 * KiB, lan_unlimited=False))
            b = await nursery.start(_run_peer, tmp_path / "b", 2, Limits())
            c = await nursery.start(_run_peer, tmp_path / "c", 3, Limits())
            root, _ = publish(a.store, files)
            for p in (b, c):
                await connect(p.ex.host, a.addr)
            streams = []
            for conns in a.ex.host.get_network().connections.values():
                for conn in conns if isinstance(conns, list) else [conns]:
                    stream = ratelimit.tcp_stream_of(conn)
                    stream.lan = False
                    streams.append(stream)
            assert len(streams) == 2

            def caps() -> list[int]:   # -1: no cap (the kernel's ~0U)
                return [s.socket.getsockopt(socket.SOL_SOCKET, ratelimit.SO_MAX_PACING_RATE)
                        for s in streams]
            assert caps() == [-1, -1]
            seen: list[list[int]] = []

            async def watch() -> None:
                while True:
                    seen.append(caps())
                    await trio.sleep(0.1)
            nursery.start_soon(watch)
            async with trio.open_nursery() as fetches:
                for p in (b, c):
                    fetches.start_soon(p.ex.fetch_dag, root, [a.addr])
            assert read_files(b.store, root) == files == read_files(c.store, root)
            paced = [cs for cs in seen if -1 not in cs]
            assert paced, "both connections were never paced at once"
            # each cap is a share of the 512 KiB/s the uplink carried, with headroom
            assert all(16 * KiB <= cap <= 2 * 512 * KiB for cs in paced for cap in cs)
            with trio.fail_after(10):   # lifted once nobody takes blocks
                while caps() != [-1, -1]:
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
