"""What every stream protocol of the node shares: closing and resetting a stream without
raising (the peer may be gone), telling routine stream failures from bugs in the log, and the
dial timeout.  Imported by node/p2p/host.py, node/p2p/relay.py, Bitswap and feed sync alike,
so none of them needs another's module for it.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

log = logging.getLogger("schoolmesh.p2p")

DIAL_TIMEOUT = 10.0      # seconds for one dial (TCP + Noise + Yamux)
REQUEST_TIMEOUT = 15.0   # seconds for one request/response exchange of any protocol


def log_stream_error(what: str, exc: Exception) -> None:
    """Stream failures are routine (peers go away); anything else is a bug worth a trace."""
    from libp2p.exceptions import BaseLibp2pError
    if isinstance(exc, (BaseLibp2pError, trio.TooSlowError, trio.BrokenResourceError,
                        trio.ClosedResourceError, EOFError, OSError)):
        log.debug("%s failed: %r", what, exc)
    else:
        log.error("%s failed unexpectedly", what, exc_info=exc)


async def close_stream(stream: Any) -> None:
    """Close a stream; a failure (the peer already went away) is only logged."""
    try:
        await stream.close()
    except Exception as exc:
        log_stream_error("closing a stream", exc)


async def reset_stream(stream: Any) -> None:
    """Reset a stream; a failure is only logged."""
    try:
        await stream.reset()
    except Exception as exc:
        log_stream_error("resetting a stream", exc)


# -- request/response protocols (feed sync, communities): one frame each way per stream -----

READ_SIZE = 64 * 1024


async def read_frame(stream: Any, max_size: int) -> bytes:
    """The one length-prefixed frame (protocol/framing.py) this direction of ``stream``
    carries, at most ``max_size`` bytes.  RemoteProtocolError if the stream ends first or
    carries more than one frame."""
    from libp2p.network.stream.exceptions import StreamEOF

    from protocol.errors import RemoteProtocolError
    from protocol.framing import FrameDecoder
    decoder = FrameDecoder(max_size)
    while True:
        try:
            data = await stream.read(READ_SIZE)
        except StreamEOF:
            data = b""
        if not data:
            raise RemoteProtocolError("stream closed before a whole message arrived")
        decoder.receive_data(data)
        frame = decoder.next_frame()
        if frame is not None:
            if decoder.buffered:
                raise RemoteProtocolError("one message per stream direction")
            return bytes(frame)


async def request(host: Any, peer: Any, protocol: str, payload: bytes, *, max_reply: int,
                  timeout: float) -> bytes:
    """One exchange on a new stream to ``peer`` (a peer id or its text form): write
    ``payload`` as one frame, read the one reply frame, close.  The stream is reset on any
    failure; trio.TooSlowError after ``timeout`` seconds in all."""
    from libp2p.peer.id import ID

    from protocol.framing import encode_frame
    pid = ID.from_base58(peer) if isinstance(peer, str) else peer
    with trio.fail_after(timeout):
        stream = await host.new_stream(pid, [protocol])
        try:
            await stream.write(encode_frame(payload))
            reply = await read_frame(stream, max_reply)
        except BaseException:
            await reset_stream(stream)
            raise
        await close_stream(stream)
    return reply


def peer_of(stream: Any) -> str:
    """The peer id (text) at the other end of a stream."""
    return stream.muxed_conn.peer_id.to_string()
