"""The TCP transport the node listens with: one process per port, and failures kept.

py-libp2p's ``TCPListener`` binds with ``SO_REUSEPORT`` (for DCUtR hole punching, which
schoolmesh does not use). On Linux a second process of the same user may then bind the same
port, and the kernel splits incoming connections between the two nodes. This listener opens its
sockets with ``trio.open_tcp_listeners`` (``SO_REUSEADDR`` only), so an address in use fails, and
records why: py-libp2p's swarm swallows a listen failure (the node would run with no address).
"""

from __future__ import annotations

from typing import Any

import trio
from libp2p.io.trio import TrioTCPStream
from libp2p.transport.exceptions import OpenConnectionError
from libp2p.transport.tcp.tcp import TCP, TCPListener
from libp2p.utils.multiaddr_utils import extract_ip_from_multiaddr


class ExclusiveListener(TCPListener):
    def __init__(self, handler_function: Any, failures: dict[str, OSError]) -> None:
        super().__init__(handler_function)
        self._failures = failures

    async def listen(self, maddr: Any) -> None:
        try:
            port = int(maddr.value_for_protocol("tcp"))
        except (LookupError, ValueError, TypeError) as exc:  # ProtocolLookupError: no /tcp
            raise OpenConnectionError(f"cannot listen on {maddr}: no TCP port") from exc
        host = extract_ip_from_multiaddr(maddr)
        try:
            sockets = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            self._failures[str(maddr)] = exc
            raise OpenConnectionError(f"cannot listen on {maddr}: {exc}") from exc
        try:
            await self._serve(sockets)
        except BaseException:
            for s in sockets:
                await s.aclose()
            raise

    async def _serve(self, sockets: list[trio.SocketListener]) -> None:
        """Serve in the listener's own nursery, as py-libp2p's ``listen`` does."""
        async def handler(stream: trio.SocketStream) -> None:
            try:
                await self.handler(TrioTCPStream(stream))
            except Exception:  # one failed inbound connection (py-libp2p does the same)
                pass

        async with self._lifecycle_lock:
            if self._closed:
                raise OpenConnectionError("listener is closed")
            if self._nursery is None:
                await self._spawn_background_task()
            started = await self._nursery.start(trio.serve_listeners, handler, sockets)
            self.listeners.extend(started)


class ExclusiveTCP(TCP):
    """py-libp2p's TCP transport with :class:`ExclusiveListener`; ``listen_failures`` maps a
    multiaddr string to the OSError that kept the node from listening there."""

    def __init__(self) -> None:
        super().__init__()
        self.listen_failures: dict[str, OSError] = {}

    def create_listener(self, handler_function: Any) -> Any:
        return ExclusiveListener(handler_function, self.listen_failures)
