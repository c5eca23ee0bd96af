"""Which connections a node keeps (specs/links.md §4).

On a metered link every open connection costs a little even when idle (keepalive probes),
and py-libp2p opens connections on its own (the DHT dials the peers closest to a key when it
provides or looks one up).  A node therefore closes a connection *it dialled* once no byte has
crossed it in either direction for ``idle_close`` seconds, unless ``keep(peer_id)`` says the
peer is one it keeps connected (bootstrap peers, community seeds) or the connection is on the
school LAN (free, and mDNS would only dial it again).  Connections other schools
dialled are theirs to close: a demonstration school never drops its villages.

Time is the event here, so this is a timer: it sleeps until the earliest moment an open
connection could become idle, or ``idle_close`` when there is none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

log = logging.getLogger("schoolmesh.p2p")

IDLE_CLOSE_S = 120.0     # an outbound connection silent this long is closed
CLOSE_TIMEOUT_S = 5.0    # closing a connection whose peer is gone must not hang


def _conns(host: Any) -> list[tuple[Any, Any]]:
    out = []
    for pid, conns in list(host.get_network().connections.items()):
        for conn in conns if isinstance(conns, list) else [conns]:
            out.append((pid, conn))
    return out


class ConnectionManager:
    def __init__(self, host: Any, keep: Callable[[str], bool], *,
                 idle_close: float = IDLE_CLOSE_S) -> None:
        self.host = host
        self.keep = keep
        self.idle_close = idle_close
        self.closed = 0   # connections closed for idleness since start (status)

    def candidates(self) -> list[tuple[Any, Any, float]]:
        """(peer id, connection, last activity) of the connections we may close."""
        from .ratelimit import tcp_stream_of   # imports py-libp2p: only once the node runs
        out = []
        for pid, conn in _conns(self.host):
            direction = getattr(getattr(conn, "direction", None), "name", "")
            if direction != "OUTBOUND" or self.keep(pid.to_string()):
                continue
            stream = tcp_stream_of(conn)
            if stream is not None and not stream.lan:   # the school LAN costs nothing
                out.append((pid, conn, max(stream.last_read, stream.last_write)))
        return out

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            now = trio.current_time()
            wake = now + self.idle_close
            for pid, conn, since in self.candidates():
                if now - since >= self.idle_close:
                    await self._close(pid, conn)
                else:
                    wake = min(wake, since + self.idle_close)
            await trio.sleep_until(max(wake, now + 1.0))

    async def _close(self, pid: Any, conn: Any) -> None:
        log.debug("closing the idle connection to %s", pid)
        self.closed += 1
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            try:
                await conn.close()
            except Exception as exc:  # already closing, or the peer is gone
                log.debug("closing the connection to %s: %r", pid, exc)
