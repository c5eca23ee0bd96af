"""Bytes sent and received per libp2p protocol since start (``status --json`` ``traffic``), so
an operator on a metered link can see where the traffic goes.

py-libp2p creates its streams (``NetStream``) deep inside the swarm, for its own protocols
(identify, ping, gossipsub, kad) as for ours, so the count is taken by wrapping
``NetStream.read``/``write`` once per process; each stream reports to the meter of the host it
belongs to (several nodes in one process count separately).  Bytes of a stream before its
protocol is agreed (multistream-select) count as ``negotiation``.  What the TCP connections
carried in all (Noise, Yamux framing and keepalives included) is the limiter's count
(node/p2p/ratelimit.py); the difference is reported as ``transport``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_ATTR = "_schoolmesh_meter"
NEGOTIATION = "negotiation"


class Meter:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self._taken: tuple[Counter[str], Counter[str]] = (Counter(), Counter())

    def take(self) -> dict[str, tuple[int, int]]:
        """``{protocol: (sent, received)}`` counted since the previous call (the daily counts
        of node/limits.py)."""
        out = {}
        for p in set(self.sent) | set(self.received):
            sent = self.sent[p] - self._taken[0][p]
            received = self.received[p] - self._taken[1][p]
            if sent or received:
                out[p] = (sent, received)
        self._taken = (Counter(self.sent), Counter(self.received))
        return out

    def snapshot(self, tcp_sent: int | None = None, tcp_received: int | None = None
                 ) -> dict[str, dict[str, int]]:
        """``{protocol: {sent, received}}``; with the TCP totals, also ``transport`` (their
        excess over the protocols' bytes: encryption, framing, keepalives) and ``total``."""
        out = {p: {"sent": self.sent[p], "received": self.received[p]}
               for p in sorted(set(self.sent) | set(self.received))}
        if tcp_sent is not None and tcp_received is not None:
            out["transport"] = {"sent": max(0, tcp_sent - sum(self.sent.values())),
                                "received": max(0, tcp_received - sum(self.received.values()))}
            out["total"] = {"sent": tcp_sent, "received": tcp_received}
        return out


def install(host: Any) -> Meter:
    """Count the streams of ``host`` from now on; returns its meter."""
    _wrap_streams_once()
    meter = Meter()
    setattr(host.get_network(), _ATTR, meter)
    return meter


def _meter_of(stream: Any) -> Meter | None:
    return getattr(getattr(stream.swarm_conn, "swarm", None), _ATTR, None)


def _wrap_streams_once() -> None:
    from libp2p.network.stream.net_stream import NetStream
    if getattr(NetStream, _ATTR, False):
        return
    read, write = NetStream.read, NetStream.write

    async def counted_read(self: Any, n: int | None = None) -> bytes:
        data = await read(self, n)
        meter = _meter_of(self)
        if meter is not None:
            meter.received[self.protocol_id or NEGOTIATION] += len(data)
        return data

    async def counted_write(self: Any, data: bytes) -> None:
        await write(self, data)
        meter = _meter_of(self)
        if meter is not None:
            meter.sent[self.protocol_id or NEGOTIATION] += len(data)

    NetStream.read = counted_read  # type: ignore[method-assign]
    NetStream.write = counted_write  # type: ignore[method-assign]
    setattr(NetStream, _ATTR, True)
