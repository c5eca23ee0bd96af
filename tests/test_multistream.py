"""Stream negotiation sends the multistream header and our first choice without waiting for the
other side's header (one round trip per stream opening, not two; specs/links.md §7)."""

from __future__ import annotations

import trio
import trio.testing

from node.p2p import host as p2p

HEADER = "/multistream/1.0.0"


class _Pipe:
    """One end of an in-memory byte stream with the read/write/close calls py-libp2p's
    multistream communicator uses."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream

    async def read(self, n: int | None = None) -> bytes:
        return await self.stream.receive_some(n or 65536)

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def close(self) -> None:
        await self.stream.aclose()


def _communicators():
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
    a, b = trio.testing.memory_stream_pair()
    return MultiselectCommunicator(_Pipe(a)), MultiselectCommunicator(_Pipe(b))


def _client():
    from libp2p import new_host  # noqa: F401  (py-libp2p importable)
    return p2p._pipelined_client()


async def test_header_and_first_choice_leave_before_any_answer():
    ours, theirs = _communicators()
    seen: list[str] = []

    async def strict_listener() -> None:
        # answers nothing until both the header and the proposal have arrived: a client that
        # waits for our header first never gets here
        seen.append(await theirs.read())
        seen.append(await theirs.read())
        await theirs.write(HEADER)
        await theirs.write(seen[1])

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(strict_listener)
            chosen = await _client().select_one_of(["/ipfs/bitswap/1.2.0"], ours)
    assert chosen == "/ipfs/bitswap/1.2.0"
    assert seen == [HEADER, "/ipfs/bitswap/1.2.0"]


async def test_a_refused_first_choice_falls_back_to_the_next():
    from libp2p.protocol_muxer.multiselect import Multiselect
    ours, theirs = _communicators()
    server = Multiselect()
    server.add_handler("/ipfs/bitswap/1.1.0", None)   # py-libp2p's own listener side
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            got: list = []

            async def listen() -> None:
                got.append((await server.negotiate(theirs))[0])
            nursery.start_soon(listen)
            chosen = await _client().select_one_of(
                ["/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0"], ours)
    assert chosen == got[0] == "/ipfs/bitswap/1.1.0"


async def test_no_common_protocol_is_an_error():
    import pytest
    from libp2p.protocol_muxer.exceptions import MultiselectClientError
    from libp2p.protocol_muxer.multiselect import Multiselect
    ours, theirs = _communicators()
    server = Multiselect()
    server.add_handler("/other/1.0.0", None)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            async def listen() -> None:
                try:
                    await server.negotiate(theirs, negotiate_timeout=3)
                except Exception:
                    pass
            nursery.start_soon(listen)
            with pytest.raises(MultiselectClientError):
                await _client().select_one_of(["/a/1", "/b/1"], ours, 3)
            nursery.cancel_scope.cancel()


async def test_hosts_use_it_for_streams_and_connection_upgrades():
    h = p2p.make_host(b"\x01" * 32)
    client = h.multiselect_client
    assert type(client).__name__ == "PipelinedClient"
    upgrader = h.get_network().upgrader
    assert upgrader.security_multistream.multiselect_client is client
    assert upgrader.muxer_multistream.multiselect_client is client
