"""What schoolmesh changes in py-libp2p's Yamux streams for bulk transfers (docs/py-libp2p.md).

* A writer waiting for send window is woken by the peer's WINDOW_UPDATE.  py-libp2p has no
  event for it (its own ``write`` polls every 10 ms): ``send_window`` becomes a property whose
  setter sets the stream's waiting event when the window grows.  Bitswap polled every 5 ms:
  each time the window ran out, the stream stood still until the next poll (at 256 KiB per
  window, a cap of about 50 MiB/s while the window does not grow).
* Yamux reads each frame header and body with ``read_exactly``, which copies what it read into
  a ``bytearray`` and out again; the Noise session (node/p2p/noise_session.py) already returns
  exactly what was asked, so a read that is complete is passed on as it is.
* A stream may carry DATA frames larger than py-libp2p's 64 KiB (:func:`set_max_frame`): the
  Yamux spec bounds a frame only by the receiver's window (go-yamux and js-libp2p's yamux
  accept any frame within it; js-libp2p's own writer sends frames as large as the window).
  Every frame costs the receiver one trip through py-libp2p's Yamux reader (a dozen awaits,
  locks and debug f-strings): a 256 MiB Bitswap fetch on loopback is 4,096 frames at 64 KiB and
  256 at 1 MiB, and its sender spent a fifth less CPU with the large ones (0.81 -> 0.65 s).
  The writer still waits for window as py-libp2p's does (5 s, then an error), but is woken by
  the window update instead of polling every 10 ms.
* A receive window wider than Yamux's initial 256 KiB, for streams that carry bulk data to us
  (Bitswap blocks): py-libp2p's auto-tuning doubles the window only when two updates come
  within 4 round trips, which once the round trip is measured (0.1 ms on a LAN) rarely
  happens, so a reader that is a moment late stalls the sender.  The window is an upper
  bound on bytes in flight; on a slow link the TCP socket's own limits
  (node/p2p/ratelimit.py) bind first.
"""

from __future__ import annotations

import struct
from typing import Any

import trio

_ATTR = "_schoolmesh_window_events"
_VALUE = "_sm_send_window"
_EVENT = "_sm_window_event"
_FRAME = "_sm_max_frame"
WINDOW_WAIT = 5.0   # seconds a write waits for send window before failing (py-libp2p's figure)


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
    YamuxStream.write = _write  # type: ignore[method-assign]
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


async def _write(self: Any, data: bytes) -> None:
    """YamuxStream.write with frames of up to :func:`set_max_frame`'s size (py-libp2p's 64 KiB
    otherwise) and a wait for send window that window updates end; the same locks, checks and
    errors as py-libp2p 0.8.1's."""
    from libp2p.stream_muxer.exceptions import MuxedStreamError
    from libp2p.stream_muxer.yamux import yamux
    if self.send_closed:
        raise MuxedStreamError("Stream is closed for sending")
    view = memoryview(data)
    total, sent = len(view), 0
    limit = self.__dict__.get(_FRAME) or yamux.MAX_MESSAGE_SIZE - yamux.HEADER_SIZE
    while sent < total:
        frame = None
        async with self.rw_lock.write_lock():
            if self.send_closed:
                raise MuxedStreamError("Stream is closed for sending")
            async with self.window_lock:
                if self.closed:
                    raise MuxedStreamError("Stream is closed")
                if self.send_window > 0:
                    n = min(self.send_window, limit, total - sent)
                    self.send_window -= n
                    frame = struct.pack(yamux.YAMUX_HEADER_FORMAT, 0, yamux.TYPE_DATA, 0,
                                        self.stream_id, n) + view[sent:sent + n]
        if frame is None:
            with trio.move_on_after(WINDOW_WAIT) as scope:
                await wait_send_window(self, WINDOW_WAIT)
            if scope.cancelled_caught:
                raise MuxedStreamError(
                    f"Timed out waiting for window update after {WINDOW_WAIT:g} seconds.")
            continue
        await self.conn._write_frame(frame)
        sent += n


def set_max_frame(stream: Any, size: int) -> None:
    """Let writes on ``stream`` (a NetStream over Yamux) use DATA frames carrying up to
    ``size`` bytes, within the peer's receive window.  No-op on other muxers."""
    muxed = getattr(stream, "muxed_stream", None)
    if muxed is not None and isinstance(getattr(muxed, "send_window", None), int):
        muxed.__dict__[_FRAME] = size


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
