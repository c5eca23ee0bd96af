"""Circuit relay v2 on 127.0.0.1: a seed R relays, a member B (no listening address at all, so
it cannot accept inbound connections) reserves on R, a third school C reaches B through R."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

from node.p2p import host as p2p
from node.p2p import relay as rl
from node.p2p import streams

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
DEADLINE = 10  # seconds for any one test step
ECHO = "/schoolmesh/test-echo/1"


async def echo(stream) -> None:
    from libp2p.network.stream.exceptions import StreamEOF
    try:
        while True:
            data = await stream.read(65536)
            if not data:
                break
            await stream.write(data)
    except StreamEOF:
        pass
    finally:
        await streams.close_stream(stream)


@asynccontextmanager
async def running(listen=LOOPBACK):
    host = p2p.make_host(os.urandom(32), listen)
    async with p2p.run_host(host, listen):
        yield host


@asynccontextmanager
async def hosts(*listens):
    """Hosts started together and closed concurrently (close costs ~0.2 s per connection)."""
    async with AsyncExitStack() as stack:
        out = [await stack.enter_async_context(running(listen)) for listen in listens]
        try:
            yield out
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                async with trio.open_nursery() as n:
                    for h in out:
                        n.start_soon(h.close)


def protocols_of(host, peer_id) -> list[str]:
    from libp2p.peer.peerstore import PeerStoreError
    try:
        return host.get_peerstore().get_protocols(peer_id) or []
    except PeerStoreError:
        return []


async def roundtrip(stream, payload: bytes) -> bytes:
    await stream.write(payload)
    got = b""
    while len(got) < len(payload):
        got += await stream.read(len(payload) - len(got))
    return got


async def test_member_without_listener_is_reachable_through_its_seed():
    with trio.fail_after(3 * DEADLINE):
        async with hosts(LOOPBACK, [], LOOPBACK) as (r, b, c):
            assert b.get_addrs() == []  # B cannot accept any inbound connection
            async with rl.relay_service(r, hop=True, client=False), \
                    rl.relay_service(b, hop=False, client=True) as b_relay:
                b.set_stream_handler(ECHO, echo)
                await p2p.connect(b, p2p.listen_addrs(r)[0])
                addrs = await b_relay.reserve(r.get_id().to_base58())
                r_id, b_id = r.get_id().to_base58(), b.get_id().to_base58()
                assert addrs and all(
                    a.startswith("/ip4/127.0.0.1/tcp/")
                    and a.endswith(f"/p2p/{r_id}/p2p-circuit/p2p/{b_id}") for a in addrs)
                assert b_relay.circuit_addrs() == addrs

                # C knows only the circuit address; it is not connected to R beforehand
                assert await rl.dial_via_relay(c, addrs[0]) == b_id
                conn = c.get_network().connections[b.get_id()]
                conn = conn[0] if isinstance(conn, list) else conn
                assert "/p2p-circuit" in str(conn.get_transport_addresses())
                with trio.fail_after(DEADLINE / 2):  # identify ran over the circuit
                    while ECHO not in protocols_of(c, b.get_id()):
                        await trio.sleep(0.05)

                stream = await c.new_stream(b.get_id(), [ECHO])
                assert await roundtrip(stream, b"hello through the seed") == \
                    b"hello through the seed"
                big = os.urandom(300_000)  # several Yamux windows each way
                assert await roundtrip(stream, big) == big
                await stream.close()

                # a second stream reuses the relayed connection, no new circuit needed
                s2 = await c.new_stream(b.get_id(), [ECHO])
                assert await roundtrip(s2, b"again") == b"again"
                await s2.close()


async def test_reservation_refused_by_a_host_without_hop():
    with trio.fail_after(DEADLINE):
        async with hosts(LOOPBACK, LOOPBACK) as (plain, b):
            async with rl.relay_service(plain, hop=False, client=True), \
                    rl.relay_service(b, hop=False, client=True) as b_relay:
                await p2p.connect(b, p2p.listen_addrs(plain)[0])
                with pytest.raises(rl.RelayError, match="does not offer circuit relay v2 hop"):
                    await b_relay.reserve(plain.get_id())
                assert b_relay.circuit_addrs() == []


async def test_reservation_fails_cleanly_when_the_relay_is_gone():
    with trio.fail_after(DEADLINE):
        async with hosts(LOOPBACK) as (b,):
            async with rl.relay_service(b, hop=False, client=True) as b_relay:
                async with running() as r:
                    async with rl.relay_service(r, hop=True, client=False):
                        await p2p.connect(b, p2p.listen_addrs(r)[0])
                        r_id = r.get_id()
                        await b_relay.reserve(r_id, refresh=False)
                    await r.close()
                with trio.fail_after(DEADLINE / 2):
                    while rl._connected(b, r_id):
                        await trio.sleep(0.05)
                with pytest.raises(rl.RelayError, match="not connected"):
                    await b_relay.reserve(r_id)


async def test_circuit_to_a_peer_without_reservation_is_refused():
    with trio.fail_after(DEADLINE):
        async with hosts(LOOPBACK, LOOPBACK, LOOPBACK) as (r, b, c):
            async with rl.relay_service(r, hop=True, client=False), \
                    rl.relay_service(b, hop=False, client=True):
                await p2p.connect(b, p2p.listen_addrs(r)[0])  # connected, never reserved
                addr = f"{p2p.listen_addrs(r)[0]}/p2p-circuit/p2p/{b.get_id().to_base58()}"
                with pytest.raises(rl.RelayError) as err:
                    await rl.dial_via_relay(c, addr)
                assert err.value.status == "NO_RESERVATION"


def test_parse_circuit_addr():
    assert rl.parse_circuit_addr("/ip4/1.2.3.4/tcp/5/p2p/R/p2p-circuit/p2p/B") == \
        ("/ip4/1.2.3.4/tcp/5", "R", "B")
    assert rl.parse_circuit_addr("/p2p/R/p2p-circuit/p2p/B") == ("", "R", "B")
    for bad in ["/ip4/1.2.3.4/tcp/5/p2p/R", "/ip4/1.2.3.4/tcp/5/p2p-circuit/p2p/B",
                "/p2p/R/p2p-circuit"]:
        with pytest.raises(ValueError):
            rl.parse_circuit_addr(bad)


async def test_a_relay_that_stops_answering_gives_an_error_not_a_hang(monkeypatch):
    from libp2p.custom_types import TProtocol

    async def mute(stream):
        await trio.sleep_forever()

    async def hang_up(stream):
        await stream.read(100)
        await stream.reset()

    monkeypatch.setattr(rl, "REQUEST_TIMEOUT", 0.5)
    with trio.fail_after(DEADLINE):
        async with hosts(LOOPBACK, LOOPBACK, LOOPBACK) as (r1, r2, b):
            r1.set_stream_handler(TProtocol(rl.HOP_PROTOCOL_ID), mute)
            r2.set_stream_handler(TProtocol(rl.HOP_PROTOCOL_ID), hang_up)
            async with rl.relay_service(b, hop=False, client=True) as b_relay:
                await p2p.connect(b, p2p.listen_addrs(r1)[0])
                await p2p.connect(b, p2p.listen_addrs(r2)[0])
                with pytest.raises(rl.RelayError, match="did not answer"):
                    await b_relay.reserve(r1.get_id())
                with pytest.raises(rl.RelayError, match="connection lost"):
                    await b_relay.reserve(r2.get_id())
                assert b_relay.circuit_addrs() == []


async def test_reservation_is_for_the_authenticated_peer_not_a_named_one():
    """py-libp2p's hop would reserve for the ``peer`` field of RESERVE; ours ignores it."""
    from libp2p.custom_types import TProtocol
    from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage, PeerId
    with trio.fail_after(DEADLINE):
        async with hosts(LOOPBACK, LOOPBACK, LOOPBACK) as (r, b, c):
            async with rl.relay_service(r, hop=True, client=False) as r_relay, \
                    rl.relay_service(b, hop=False, client=True):
                await p2p.connect(b, p2p.listen_addrs(r)[0])
                await p2p.connect(c, p2p.listen_addrs(r)[0])
                stream = await c.new_stream(r.get_id(), [TProtocol(rl.HOP_PROTOCOL_ID)])
                forged = HopMessage(type=HopMessage.RESERVE,
                                    peer=PeerId(id=b.get_id().to_bytes()))
                await rl._exchange(stream, forged, "forged reservation", r.get_id())
                await stream.close()
                held = set(r_relay.protocol.resource_manager._reservations)
                assert held == {c.get_id()}
                addr = f"{p2p.listen_addrs(r)[0]}/p2p-circuit/p2p/{b.get_id().to_base58()}"
                with pytest.raises(rl.RelayError) as err:
                    await rl.dial_via_relay(c, addr)
                assert err.value.status == "NO_RESERVATION"


async def test_seed_limits_reservations_and_circuit_bytes():
    from libp2p.exceptions import BaseLibp2pError
    limits = rl.Limits(max_reservations=1, circuit_data_bytes=200_000)
    with trio.fail_after(2 * DEADLINE):
        async with hosts(LOOPBACK, [], [], LOOPBACK) as (r, b1, b2, c):
            async with rl.relay_service(r, hop=True, client=False, limits=limits), \
                    rl.relay_service(b1, hop=False, client=True) as b1_relay, \
                    rl.relay_service(b2, hop=False, client=True) as b2_relay:
                b1.set_stream_handler(ECHO, echo)
                await p2p.connect(b1, p2p.listen_addrs(r)[0])
                await p2p.connect(b2, p2p.listen_addrs(r)[0])
                addrs = await b1_relay.reserve(r.get_id())
                assert await b1_relay.reserve(r.get_id()) == addrs  # renewing is not a 2nd slot
                with pytest.raises(rl.RelayError) as err:
                    await b2_relay.reserve(r.get_id())
                assert err.value.status == "RESOURCE_LIMIT_EXCEEDED"

                await rl.dial_via_relay(c, addrs[0])
                stream = await c.new_stream(b1.get_id(), [ECHO])
                assert await roundtrip(stream, b"x" * 10_000) == b"x" * 10_000
                # 2 x 150 kB > 200 kB: the relay resets the circuit (C sees StreamEOF/reset)
                with pytest.raises(BaseLibp2pError):
                    await roundtrip(stream, os.urandom(150_000))
                with trio.fail_after(DEADLINE / 2):
                    while rl._connected(c, b1.get_id()):
                        await trio.sleep(0.05)


async def test_reservation_is_renewed_before_it_expires():
    limits = rl.Limits(reservation_ttl_s=2)
    with trio.fail_after(2 * DEADLINE):
        async with hosts(LOOPBACK, [], [], LOOPBACK) as (r, kept, lapsed, c):
            async with rl.relay_service(r, hop=True, client=False, limits=limits), \
                    rl.relay_service(kept, hop=False, client=True) as kept_relay, \
                    rl.relay_service(lapsed, hop=False, client=True) as lapsed_relay:
                await p2p.connect(kept, p2p.listen_addrs(r)[0])
                await p2p.connect(lapsed, p2p.listen_addrs(r)[0])
                kept_addr = (await kept_relay.reserve(r.get_id()))[0]
                lapsed_addr = (await lapsed_relay.reserve(r.get_id(), refresh=False))[0]
                await trio.sleep(3.2)  # > TTL (expiry is whole seconds, rounded down)
                assert kept_relay.circuit_addrs() == [kept_addr]
                assert lapsed_relay.circuit_addrs() == []
                assert await rl.dial_via_relay(c, kept_addr) == kept.get_id().to_base58()
                with pytest.raises(rl.RelayError) as err:
                    await rl.dial_via_relay(c, lapsed_addr)
                assert err.value.status == "NO_RESERVATION"
