"""The seam where every byte of the node's libp2p TCP traffic meets the limiter.

py-libp2p's ``TCP`` transport hands the swarm a ``ReadWriteCloser`` (``TrioTCPStream``): on dial
inside the ``RawConnection`` it returns, on listen as the argument of the listener's handler.
:class:`LimitedTCP` subclasses the transport and wraps that stream in :class:`LimitedStream`
in both places, so Noise, Yamux and every protocol above run over a limited byte stream.
"""

from __future__ import annotations

import ipaddress
import os
import platform
import socket
import sys
from typing import Any

import trio

from ..limits import Limiter
from .tcp import ExclusiveTCP


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Bytes written to a TCP socket but not sent yet that the kernel takes (Linux, macOS): on a slow
# link a deep socket buffer puts seconds between a control message (a stream opening, a
# window update, a ping) and the wire, behind the blocks written before it.  Above this, the
# writer waits in the process, where frames of every stream queue in turn.
NOTSENT_LOWAT = 128 * 1024

# Reads on a slow link: Noise asks for the rest of a frame, and each read returns the one or
# two TCP segments that arrived since the last (1.4-2.9 KB at 2 Mbit/s, 180 wake-ups a second,
# each costing the event loop and py-libp2p's read loop far more than the bytes).  After a
# read that returned less than asked and less than COALESCE_BELOW bytes, the next read waits
# COALESCE_DELAY first, so the segments arrive in fewer, larger reads.  A complete read (a
# whole frame, a whole length prefix) never delays the next; fast links read more per wake-up.
COALESCE_BELOW = 16 * 1024
COALESCE_DELAY = 0.05
# A read on a limited link takes at most READ_SECONDS of the rate (at least COALESCE_BELOW):
# the limiter makes the reader wait for what it read, and a reader asking for a lot (the
# Noise session reads what the socket holds, node/p2p/noise_session.py) would otherwise hold
# seconds of bytes back from the protocols above, which judge a peer by its bytes arriving.
READ_SECONDS = 0.25


def local_networks() -> list[Network]:
    """The subnets of this computer's interfaces (from their addresses and prefix lengths)."""
    import ifaddr
    nets: list[Network] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            addr = ip.ip if isinstance(ip.ip, str) else ip.ip[0]   # IPv6: (addr, flow, scope)
            try:
                nets.append(ipaddress.ip_interface(f"{addr.split('%', 1)[0]}/"
                                                   f"{ip.network_prefix}").network)
            except ValueError:
                continue
    return nets


def is_lan(remote: tuple[str, int] | None, networks: list[Network] | None = None) -> bool:
    """This computer (loopback), link-local, or the same subnet as one of this computer's
    interfaces (``networks``, default: looked up now).  A private address alone does not
    make a peer LAN: county education networks use 10.x addresses across slow WAN links."""
    if not remote:
        return False
    try:
        ip = ipaddress.ip_address(remote[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local:
        return True
    nets = local_networks() if networks is None else networks
    return any(ip.version == n.version and n.prefixlen > 0 and ip in n for n in nets)


def tcp_stream_of(conn: Any) -> LimitedStream | None:
    """The LimitedStream under a swarm connection or its Yamux connection (SwarmConn -> Yamux
    -> SecureSession -> Noise reader/writer -> RawConnection -> LimitedStream), or None
    (relayed, unlimited)."""
    obj = getattr(getattr(conn, "muxed_conn", conn), "secured_conn", None)
    for _ in range(6):
        if obj is None or isinstance(obj, LimitedStream):
            return obj
        obj = getattr(obj, "conn", None) or getattr(obj, "stream", None)
    return None


def connection_lan(conn: Any) -> tuple[str | None, bool]:
    """The remote IP of a swarm connection and whether it counts as LAN (as its limiter
    decided when the connection was made)."""
    stream = tcp_stream_of(conn)
    if stream is not None:
        remote = stream.get_remote_address()
        return (remote[0] if remote else None), stream.lan
    try:
        remote = conn.muxed_conn.get_remote_address()
    except Exception:  # a relayed or unusual connection: no TCP address of its own
        remote = None
    return (remote[0] if remote else None), is_lan(remote)


# Dead links (specs/links.md §2).  The kernel tells a quiet connection from a dead one at no
# cost in traffic: unacknowledged data for TCP_USER_TIMEOUT_S closes the socket; an idle
# connection gets a keepalive probe (one empty segment) after KEEPALIVE_IDLE_S, which also keeps
# NAT mappings of village routers alive, and is closed after KEEPALIVE_COUNT unanswered ones.
TCP_USER_TIMEOUT_S = 45        # > a 30 s outage is not survivable by TCP retransmission anyway
# The congestion control of our connections (specs/links.md §6).  Rural paths are small
# (2 Mbit/s x 600 ms is 150 KB in flight) and end in a modem's drop-tail buffer: there Reno's
# additive increase keeps the link busy, while BBRv1 (PROBE_RTT: 4 packets in flight for a round
# trip every 10 s, as its own standing queue hides the base RTT) and CUBIC (bursts of drops at
# each buffer overflow) idle a 256 kbit/s / 600 ms link about 1 s in every 12 (an 8 MiB fetch
# over bench/linkemu with the namespaces' default set to each: Reno 0.91 of the link, BBR 0.84).
# Reno is allowed to every process; "system" keeps the kernel's default; a name the kernel
# refuses leaves the default too (as every option here, it is skipped where unsupported).
CONGESTION = os.environ.get("SCHOOLMESH_TCP_CONGESTION", "reno")
KEEPALIVE_IDLE_S = 240         # common home routers drop idle TCP mappings after 5 min or more
KEEPALIVE_INTERVAL_S = 30
KEEPALIVE_COUNT = 4


def configure_socket(sock: Any) -> None:
    """Keepalive, user timeout, the unsent-bytes limit and the congestion control on a
    connection's socket (Linux; elsewhere what exists)."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL",
                        KEEPALIVE_INTERVAL_S), ("TCP_KEEPCNT", KEEPALIVE_COUNT),
                        ("TCP_USER_TIMEOUT", TCP_USER_TIMEOUT_S * 1000),
                        ("TCP_NOTSENT_LOWAT", NOTSENT_LOWAT)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    if CONGESTION != "system" and hasattr(socket, "TCP_CONGESTION"):
        options.append((socket.IPPROTO_TCP, socket.TCP_CONGESTION, CONGESTION.encode()))
    for level, name, value in options:
        try:
            sock.setsockopt(level, name, value)
        except OSError:
            continue   # not supported here: the connection works, dead links are found later


# Linux's per-socket pacing cap (TCP paces itself to it, no qdisc needed); -1 lifts it.  The
# number is asm-generic's (x86, ARM, RISC-V); other architectures are not paced.
SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47 if sys.platform == "linux" and (
    platform.machine() in ("x86_64", "i686", "aarch64", "armv7l", "armv6l", "riscv64")) else 0)


def pace(stream: LimitedStream, rate: float | None) -> None:
    """Cap how fast the kernel sends on the connection (bytes/s), or lift the cap (None):
    how a node shares its uplink among the peers it sends to (specs/links.md §8)."""
    if stream.socket is None or not SO_MAX_PACING_RATE:
        return
    value = -1 if rate is None else max(1, min(int(rate), 2**31 - 1))
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, value)
    except OSError:
        pass   # not supported here: the connection is simply not paced


class LimitedStream:
    """A ``ReadWriteCloser`` whose reads and writes pass through ``limiter``."""

    def __init__(self, stream: Any, limiter: Limiter) -> None:
        sock = getattr(getattr(stream, "stream", None), "socket", None)  # TrioTCPStream
        if sock is not None:
            configure_socket(sock)
        self.socket = sock
        self._stream = stream
        self._limiter = limiter
        self.lan = is_lan(stream.get_remote_address())
        # when bytes last arrived / were handed to the socket (trio clock): the connection
        # manager (node/p2p/connmgr.py) tells an idle connection by them
        self.last_read = self.last_write = trio.current_time()
        self._trickle = False   # the last read was short and small: the rest is on its way

    async def read(self, n: int | None = None) -> bytes:
        if self._trickle:
            await trio.sleep(COALESCE_DELAY)
        if n is not None:
            rate = self._limiter.rate("down", lan=self.lan)
            if rate is not None:
                n = min(n, max(COALESCE_BELOW, int(rate * READ_SECONDS)))
        data = await self._stream.read(n)
        if data:
            self.last_read = trio.current_time()
        self._trickle = n is not None and len(data) < min(n, COALESCE_BELOW)
        await self._limiter.acquire("down", len(data), lan=self.lan)
        return data

    def at_boundary(self) -> None:
        """The reader above (node/p2p/noise_session.py) holds no part of a message: a short
        read was a whole message, not a trickle of a longer one, so the next read waits for
        nothing."""
        self._trickle = False

    async def write(self, data: bytes) -> None:
        await self._limiter.acquire("up", len(data), lan=self.lan)
        self.last_write = trio.current_time()
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
