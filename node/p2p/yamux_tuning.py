"""What schoolmesh changes in py-libp2p's Yamux streams for bulk transfers (docs/py-libp2p.md).

* A writer waiting for send window is woken by the peer's WINDOW_UPDATE.  py-libp2p has no
  event for it (its own ``write`` polls every 10 ms): ``send_window`` becomes a property whose
  setter sets the stream's waiting event when the window grows.  Bitswap polled every 5 ms:
  each time the window ran out, the stream stood still until the next poll (at 256 KiB per
  window, a cap of about 50 MiB/s while the window does not grow).
* Yamux reads each frame header and body with ``read_exactly``, which copies what it read into
  a ``bytearray`` and out again; the Noise session (node/p2p/noise_session.py) already returns
  exactly what was asked, so a read that is complete is passed on as it is.
* A receive window wider than Yamux's initial 256 KiB, for streams that carry bulk data to us
  (Bitswap blocks): py-libp2p's auto-tuning doubles the window only when two updates come
  within 4 round trips, which once the round trip is measured (0.1 ms on a LAN) rarely
  happens, so a reader that is a moment late stalls the sender.  The window is an upper
  bound on bytes in flight; on a slow link the TCP socket's own limits
  (node/p2p/ratelimit.py) bind first.
"""

from __future__ import annotations

from typing import Any

import trio

_ATTR = "_schoolmesh_window_events"
_VALUE = "_sm_send_window"
_EVENT = "_sm_window_event"


def install() -> None:
    """Make every YamuxStream's ``send_window`` wake :func:`wait_send_window` (once per
    process)."""
    from libp2p.stream_muxer.yamux.yamux import YamuxStream
    if getattr(YamuxStream, _ATTR, False):
        return

    def get(self: Any) -> int:
        return self.__dict__.get(_VALUE, 0)

    def set_(self: Any, value: int) -> None:
        d = self.__dict__
        grew = value > d.get(_VALUE, 0)
        d[_VALUE] = value
        if grew:
            event = d.get(_EVENT)
            if event is not None:
                d[_EVENT] = None
                event.set()

    YamuxStream.send_window = property(get, set_)  # type: ignore[assignment]
    setattr(YamuxStream, _ATTR, True)

    from libp2p.io import utils
    from libp2p.stream_muxer.yamux import yamux
    whole = utils.read_exactly

    async def read_exactly(reader: Any, n: int, *args: Any) -> bytes:
        data = await reader.read(n)
        if len(data) == n:
            return data
        return await whole(_Prefixed(reader, data), n, *args)

    yamux.read_exactly = read_exactly


class _Prefixed:
    """A reader that first returns ``head`` (bytes already read), then reads ``reader``; lets
    py-libp2p's ``read_exactly`` finish a short read with its own retries and errors."""

    def __init__(self, reader: Any, head: bytes) -> None:
        self._reader = reader
        self._head = head

    async def read(self, n: int | None = None) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return await self._reader.read(n)

    def __getattr__(self, name: str) -> Any:   # conn_state() for its error message
        return getattr(self._reader, name)


async def wait_send_window(muxed: Any, poll: float) -> None:
    """Return once ``muxed`` (a YamuxStream) has send window or is closed.  Woken by window
    updates when :func:`install` ran; ``poll`` seconds bound each wait (a closed stream sets
    no event)."""
    while muxed.send_window <= 0 and not muxed.closed:
        event = muxed.__dict__.get(_EVENT)
        if event is None:
            event = muxed.__dict__[_EVENT] = trio.Event()
        with trio.move_on_after(poll):
            await event.wait()


def widen_receive_window(stream: Any, size: int) -> None:
    """Let the peer have up to ``size`` bytes in flight on ``stream`` (a NetStream over Yamux);
    the WINDOW_UPDATE goes out with the next read.  No-op on other muxers."""
    muxed = getattr(stream, "muxed_stream", None)
    target = getattr(muxed, "target_recv_window", None)
    if isinstance(target, int) and target < size:
        from libp2p.stream_muxer.yamux.yamux import MAX_WINDOW_SIZE
        muxed.target_recv_window = min(size, MAX_WINDOW_SIZE)
