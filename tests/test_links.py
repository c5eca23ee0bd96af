"""Links (specs/links.md) on real nodes on 127.0.0.1: every connection, dialled or accepted, has
the kernel watch it for death (keepalive, user timeout); an idle pair sends nothing."""

from __future__ import annotations

import socket

import trio

from node import daemon, replication
from node.daemon import Node, Options
from node.home import init_home
from node.p2p import host as p2p
from node.p2p import ratelimit

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


def sockets_of(node: Node) -> list[socket.socket]:
    out = []
    for conns in node.host.get_network().connections.values():
        for conn in conns if isinstance(conns, list) else [conns]:
            stream = ratelimit.tcp_stream_of(conn)
            assert stream is not None
            out.append(stream._stream.stream.socket)
    return out


async def test_every_connection_is_watched_by_the_kernel_and_idle_pairs_are_silent(
        nursery, tmp_path):
    a = await nursery.start(Node(init_home(tmp_path / "a", "a", "school"),
                                 Options(listen=LOOPBACK)).serve)
    b = await nursery.start(Node(init_home(tmp_path / "b", "b", "school"),
                                 Options(listen=LOOPBACK)).serve)
    daemon.follow(b.home, a.home.school_id)
    daemon.follow(a.home, b.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    for node in (a, b):   # b dialled, a accepted
        with trio.fail_after(10):
            while not node.host.get_network().connections:
                await trio.sleep(0.05)
        (sock,) = sockets_of(node)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == \
            ratelimit.KEEPALIVE_IDLE_S
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == \
            ratelimit.TCP_USER_TIMEOUT_S * 1000
        # Reno on both ends, whatever the system's default (specs/links.md §6)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0") \
            == b"reno"
    # once the first sync, Yamux's first RTT ping (0.5 s after connecting) and the repeated
    # announcements of our heads are over, an
    # idle connected pair exchanges nothing for a while (py-libp2p's Yamux would ping every
    # 30 s; our sync round runs every 30 min)
    await b.sync_now()
    await a.sync_now()
    await trio.sleep(max(replication.ANNOUNCE_REPEATS) + 1)   # our heads are announced again once
    before = [(await n.api_status())["traffic"]["total"] for n in (a, b)]
    await trio.sleep(32)
    after = [(await n.api_status())["traffic"]["total"] for n in (a, b)]
    assert after == before



async def test_idle_connections_we_dialled_are_closed_but_seeds_are_kept(nursery, tmp_path):
    """specs/links.md §4: C dialled A by hand and B keeps A as its bootstrap peer; once idle,
    C's connection is closed and B's is not.  (Both are on loopback, which counts as LAN and is
    never closed, so the test makes the limiter see them as WAN.)"""
    a = await nursery.start(Node(init_home(tmp_path / "a", "a", "school"),
                                 Options(listen=LOOPBACK)).serve)
    addr = p2p.listen_addrs(a.host)[0]
    b = await nursery.start(Node(init_home(tmp_path / "b", "b", "school"),
                                 Options(listen=LOOPBACK, bootstrap=[addr], idle_close=1.0)).serve)
    c = await nursery.start(Node(init_home(tmp_path / "c", "c", "school"),
                                 Options(listen=LOOPBACK, idle_close=1.0)).serve)
    await c.api_connect(addr)
    for node in (b, c):
        with trio.fail_after(10):
            while not node.host.get_network().connections:
                await trio.sleep(0.05)
        for conns in node.host.get_network().connections.values():
            for conn in conns if isinstance(conns, list) else [conns]:
                ratelimit.tcp_stream_of(conn).lan = False
    with trio.fail_after(20):
        while c.host.get_network().connections:
            await trio.sleep(0.1)
    assert c.connections.closed == 1
    assert a.home.school_id in [p.to_string() for p in b.host.get_network().connections]
    assert b.home.school_id in [p.to_string() for p in a.host.get_network().connections]
    assert a.connections.closed == 0   # A dialled nobody: its inbound ones are not its to close


async def test_a_hub_keeps_every_spoke_in_its_gossip_mesh_and_pushes_to_all(tmp_path):
    """specs/links.md §3: a demonstration school with more villages than gossipsub's usual
    D_high (12) keeps them all in its mesh, so a head one village publishes is pushed to every
    other village by the hub itself — not left to IHAVE gossip or the next sync round."""
    from contextlib import AsyncExitStack

    from crypto import SchoolKey
    from node.p2p.gossip import HEADS_TOPIC, HEARTBEAT_S, Gossip
    from protocol import feedsync

    spokes = 14
    keys = [SchoolKey.generate() for _ in range(spokes + 1)]
    async with AsyncExitStack() as stack:
        hosts, gossips, subs = [], [], []
        for k in keys:
            h = await stack.enter_async_context(
                p2p.run_host(p2p.make_host(k.seed), LOOPBACK))
            g = await stack.enter_async_context(Gossip(h, lambda head: None).running())
            subs.append(await g.subscribe())
            hosts.append(h)
            gossips.append(g)
        hub = hosts[0]
        for h in hosts[1:]:
            await p2p.connect(h, p2p.listen_addrs(hub)[0])
        mesh = gossips[0].pubsub.router.mesh
        with trio.fail_after(20):   # every spoke grafted the hub (its only peer)
            while len(mesh.get(HEADS_TOPIC, ())) < spokes:
                await trio.sleep(0.1)
        await trio.sleep(3 * HEARTBEAT_S + 0.5)   # heartbeats that would prune above D_high
        assert len(mesh[HEADS_TOPIC]) == spokes
        # a head from spoke 1 reaches each of the other 13 spokes through the hub's mesh
        head = feedsync.sign_head(keys[1], seq=1, hash=b"\x07" * 32, time=1)
        await gossips[1].publish(head)
        with trio.fail_after(10):
            for sub in subs[2:]:
                got, _ = await Gossip.next_head(sub)
                assert got is not None and got.feed == keys[1].public.raw
