"""The seam where every byte of the node's libp2p TCP traffic meets the limiter.

py-libp2p's ``TCP`` transport hands the swarm a ``ReadWriteCloser`` (``TrioTCPStream``): on dial
inside the ``RawConnection`` it returns, on listen as the argument of the listener's handler.
:class:`LimitedTCP` subclasses the transport and wraps that stream in :class:`LimitedStream`
in both places, so Noise, Yamux and every protocol above run over a limited byte stream.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..limits import Limiter
from .tcp import ExclusiveTCP


def is_lan(remote: tuple[str, int] | None) -> bool:
    """Private, loopback or link-local addresses (the school LAN and this computer)."""
    if not remote:
        return False
    try:
        ip = ipaddress.ip_address(remote[0].split("%", 1)[0])
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


class LimitedStream:
    """A ``ReadWriteCloser`` whose reads and writes pass through ``limiter``."""

    def __init__(self, stream: Any, limiter: Limiter) -> None:
        self._stream = stream
        self._limiter = limiter
        self.lan = is_lan(stream.get_remote_address())

    async def read(self, n: int | None = None) -> bytes:
        data = await self._stream.read(n)
        await self._limiter.acquire("down", len(data), lan=self.lan)
        return data

    async def write(self, data: bytes) -> None:
        await self._limiter.acquire("up", len(data), lan=self.lan)
        await self._stream.write(data)

    async def close(self) -> None:
        await self._stream.close()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._stream.get_remote_address()

    def __getattr__(self, name: str) -> Any:  # anything else py-libp2p may look at
        return getattr(self._stream, name)


class LimitedTCP(ExclusiveTCP):
    def __init__(self, limiter: Limiter) -> None:
        super().__init__()
        self.limiter = limiter

    async def _dial_resolved(self, maddr: Any, source: tuple[str, int] | None = None) -> Any:
        conn = await super()._dial_resolved(maddr, source=source)
        conn.stream = LimitedStream(conn.stream, self.limiter)
        return conn

    def create_listener(self, handler_function: Any) -> Any:
        limiter = self.limiter

        async def limited(stream: Any) -> None:
            await handler_function(LimitedStream(stream, limiter))
        return super().create_listener(limited)
