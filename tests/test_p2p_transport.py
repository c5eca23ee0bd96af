"""What node/p2p changes under py-libp2p's streams: the buffered Noise session
(node/p2p/noise_session.py) and the Yamux tuning (node/p2p/yamux_tuning.py), on real hosts on
127.0.0.1 and on a real Noise handshake over a socket pair."""

from __future__ import annotations

import os
import random

import pytest
import trio

from node.p2p.host import listen_addrs, make_host, run_host

LISTEN = ["/ip4/127.0.0.1/tcp/0"]
PROTO = "/schoolmesh/test-transport/1.0.0"
KiB = 1024


# -- the session's contract, on a real Noise handshake ------------------------------------------

async def _noise_pair():
    """Two finished Noise XX states and a connected socket pair (trio streams)."""
    from noise.connection import Keypair, NoiseConnection
    states = []
    for initiator in (True, False):
        s = NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_SHA256")
        s.set_as_initiator() if initiator else s.set_as_responder()
        s.set_keypair_from_private_bytes(Keypair.STATIC, os.urandom(32))
        s.start_handshake()
        states.append(s)
    a, b = states
    b.read_message(a.write_message())
    a.read_message(b.write_message())
    b.read_message(a.write_message())
    assert a.handshake_finished and b.handshake_finished
    left, right = trio.socket.socketpair()
    return a, b, trio.SocketStream(left), trio.SocketStream(right)


def _session(state, sock):
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.io.trio import TrioTCPStream
    from libp2p.network.connection.raw_connection import RawConnection
    from libp2p.peer.id import ID
    from libp2p.security.noise.io import NoiseTransportReadWriter
    from libp2p.security.secure_session import SecureSession

    from node.p2p.noise_session import BufferedSecureSession, _buffered
    keys = create_new_key_pair()
    session = SecureSession(
        local_peer=ID.from_pubkey(keys.public_key), local_private_key=keys.private_key,
        remote_peer=ID.from_pubkey(keys.public_key), remote_permanent_pubkey=keys.public_key,
        is_initiator=False,
        conn=NoiseTransportReadWriter(RawConnection(TrioTCPStream(sock), False), state))
    session = _buffered(session)
    assert isinstance(session, BufferedSecureSession)
    return session


def _wire(state, payload: bytes) -> bytes:
    ct = state.encrypt(payload)
    return len(ct).to_bytes(2, "big") + ct


async def test_session_reads_exactly_across_messages_and_socket_reads():
    a, b, left, right = await _noise_pair()
    session = _session(b, right)
    rng = random.Random(1)
    payloads = [rng.randbytes(n) for n in (1, 12, 700, 65_519, 3, 65_519, 40_000)]
    wire = b"".join(_wire(a, p) for p in payloads)
    expected = b"".join(payloads)

    async def send():
        pos = 0
        while pos < len(wire):   # odd pieces: messages split anywhere, several per piece
            n = rng.choice((1, 2, 5, 4096, 70_000, 200_000))
            await left.send_all(wire[pos:pos + n])
            pos += n
            await trio.sleep(0)

    got = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        for n in (12, 1, 65_536, 7, 100_000):
            chunk = await session.read(n)
            assert len(chunk) == n        # exactly n while the connection lasts
            got += chunk
        while len(got) < len(expected):
            got += await session.read()   # what is there, or the next message
    assert bytes(got) == expected


async def test_session_end_of_connection_and_a_forged_message():
    from libp2p.io.exceptions import IncompleteReadError
    from noise.exceptions import NoiseInvalidMessage

    a, b, left, right = await _noise_pair()
    session = _session(b, right)
    await left.send_all(_wire(a, b"hello"))
    assert await session.read(3) == b"hel"
    await left.send_all(_wire(a, b"!")[:-4])  # a message cut short, then the end
    await left.aclose()
    assert await session.read(10) == b"lo"    # what arrived before the end
    with pytest.raises(IncompleteReadError) as info:
        await session.read(1)
    assert not info.value.is_clean_close       # it ended inside a message

    a, b, left, right = await _noise_pair()
    session = _session(b, right)
    await left.send_all(_wire(a, b"x"))
    await left.aclose()
    assert await session.read(1) == b"x"
    with pytest.raises(IncompleteReadError) as info:
        await session.read()
    assert info.value.is_clean_close          # ended between messages

    a, b, left, right = await _noise_pair()
    session = _session(b, right)
    forged = bytearray(_wire(a, b"pay me"))
    forged[5] ^= 1
    await left.send_all(bytes(forged))
    with pytest.raises(NoiseInvalidMessage):
        await session.read(1)


# -- real hosts --------------------------------------------------------------------------------

async def _two_hosts(nursery, handler):
    hosts = []
    for seed in (1, 2):
        host = make_host(bytes([seed]) * 32, LISTEN)
        hosts.append(host)

    async def run(host, *, task_status=trio.TASK_STATUS_IGNORED):
        async with run_host(host, LISTEN):
            task_status.started()
            await trio.sleep_forever()
    for host in hosts:
        await nursery.start(run, host)
    hosts[1].set_stream_handler(PROTO, handler)
    from node.p2p.host import connect
    pid = await connect(hosts[0], listen_addrs(hosts[1])[0])
    from libp2p.peer.id import ID
    return hosts, await hosts[0].new_stream(ID.from_base58(pid), [PROTO])


async def test_streams_carry_every_write_size_intact_over_buffered_noise():
    from node.p2p.noise_session import BufferedSecureSession
    rng = random.Random(2)
    writes = [rng.randbytes(n) for n in (1, 12, 65_507, 65_508, 65_519, 200_000, 1024 * KiB + 3)]
    got = bytearray()
    done = trio.Event()

    async def handler(stream):
        await _read_to_end(stream, lambda: rng.choice((1, 100, 64 * KiB, 1024 * KiB)), got)
        done.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            hosts, stream = await _two_hosts(nursery, handler)
            for host in hosts:   # dialled and accepted connections alike
                for conn in host.get_network().get_connections():
                    assert isinstance(conn.muxed_conn.secured_conn, BufferedSecureSession)
            for w in writes:
                await stream.write(w)
            await stream.close()
            await done.wait()
            nursery.cancel_scope.cancel()
    assert bytes(got) == b"".join(writes)


async def _read_to_end(stream, size, sink: bytearray) -> None:
    """Read ``stream`` until the peer closes it (py-libp2p raises EOFError then), reads of
    ``size()`` bytes, into ``sink``."""
    try:
        while data := await stream.read(size()):
            sink.extend(data)
    except EOFError:
        pass


async def test_window_update_wakes_a_waiting_writer():
    from node.p2p.yamux_tuning import wait_send_window
    go = trio.Event()
    done = trio.Event()

    async def handler(stream):
        await go.wait()
        await _read_to_end(stream, lambda: 1024 * KiB, bytearray())
        done.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            _, stream = await _two_hosts(nursery, handler)
            muxed = stream.muxed_stream
            await stream.write(os.urandom(muxed.send_window))   # all the window there is
            assert muxed.send_window == 0
            go.set()
            t0 = trio.current_time()
            await wait_send_window(muxed, poll=20.0)   # woken by the update, not the poll
            assert trio.current_time() - t0 < 10 and muxed.send_window > 0
            await stream.close()
            await done.wait()
            nursery.cancel_scope.cancel()


async def _frames_written(writes, *, max_frame=None, window=None):
    """Write ``writes`` on a fresh stream to a reader (receive window ``window``), with the
    stream's frame limit ``max_frame``; the DATA frame lengths the connection wrote, and
    whether the reader got every byte in order."""
    from node.p2p.yamux_tuning import set_max_frame, widen_receive_window
    got = bytearray()
    done = trio.Event()
    lengths = []

    async def handler(stream):
        if window:
            widen_receive_window(stream, window)
        await _read_to_end(stream, lambda: random.choice((100, 64 * KiB, 1024 * KiB)), got)
        done.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            _, stream = await _two_hosts(nursery, handler)
            conn = stream.muxed_stream.conn
            real = conn._write_frame

            async def counted(frame):   # the real write, its DATA frame lengths noted
                if frame[1] == 0 and len(frame) > 12:
                    lengths.append(len(frame) - 12)
                await real(frame)
            conn._write_frame = counted
            if max_frame:
                set_max_frame(stream, max_frame)
            for w in writes:
                await stream.write(w)
            await stream.close()
            await done.wait()
            nursery.cancel_scope.cancel()
    return lengths, bytes(got) == b"".join(writes)


async def test_a_stream_may_write_frames_larger_than_64_kib_within_the_window():
    rng = random.Random(3)
    writes = [rng.randbytes(n) for n in (3 * 1024 * KiB + 5, 10, 700 * KiB)]
    lengths, intact = await _frames_written(writes, max_frame=1024 * KiB,
                                            window=4 * 1024 * KiB)
    assert intact
    assert max(lengths) > 64 * KiB          # the peer's window allowed more, and we used it
    assert max(lengths) <= 1024 * KiB       # never above the stream's limit
    assert sum(lengths) == sum(map(len, writes))


async def test_frames_stay_at_py_libp2p_s_64_kib_without_a_limit():
    rng = random.Random(4)
    writes = [rng.randbytes(2 * 1024 * KiB)]
    lengths, intact = await _frames_written(writes, window=4 * 1024 * KiB)
    assert intact and max(lengths) == 64 * KiB - 12
