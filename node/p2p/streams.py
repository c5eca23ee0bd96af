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

DIAL_TIMEOUT = 10.0  # seconds for one dial (TCP + Noise + Yamux)


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
