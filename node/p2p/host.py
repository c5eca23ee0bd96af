"""A libp2p host configured the way schoolmesh needs it (see docs/py-libp2p.md).

* The host key is the school key (school id = peer id), so Noise authenticates the school.
* Security: Noise only. py-libp2p's default also offers TLS, SECIO and *plaintext*.
* Muxer: Yamux.
* ``max_connections_per_peer=1`` removes the fixed 250 ms happy-eyeballs wait on every dial.
* ``run_host`` always closes the host on exit (leaving ``host.run()`` alone leaks the listener),
  and raises :class:`ListenError` if an address could not be listened on (py-libp2p only logs
  it). TCP listeners never share a port with another process (node/p2p/tcp.py).
* Yamux tuning for bulk transfers (node/p2p/yamux_tuning.py): window updates wake waiting
  writers, and readers may offer a wider receive window.
* Noise sessions read and decrypt transport messages in bulk (node/p2p/noise_session.py);
  same wire format and handshake.
* Yamux without "release on read": py-libp2p otherwise sends a WINDOW_UPDATE frame (encrypted,
  one syscall, a wake-up of the sender) after every read of a stream, i.e. per 64 KiB received,
  which halves a stream's throughput (one stream between two processes on loopback, back to
  back: 39 -> 75 and 65 -> 151 MiB/s).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio

from .streams import DIAL_TIMEOUT

YAMUX_RTT_INTERVAL_S = 3600  # py-libp2p's default 30 s is a ping per connection per 30 s
# Seconds py-libp2p waits for the other side's answer when a stream opens (its default: 10).
# On a slow link that answer queues behind the data already sent on the connection (64 KiB
# take 2 s at 256 kbit/s); callers bound their own waits (Bitswap: no byte for 10 s).
NEGOTIATE_TIMEOUT = 60.0


class ListenError(Exception):
    """The host could not listen on ``addr`` (``cause``: the OSError, e.g. EADDRINUSE)."""

    def __init__(self, addr: str, cause: OSError | None) -> None:
        reason = (cause.strerror or str(cause)) if cause is not None else "cannot listen there"
        super().__init__(f"{addr}: {reason}")
        self.addr = addr
        self.cause = cause


def make_host(seed: bytes, listen: Sequence[str] = (), *, mdns: bool = False,
              limiter: Any = None) -> Any:
    """Build (not start) a host on the school's Ed25519 seed. With ``mdns`` the host announces
    itself and discovers peers on the LAN (zeroconf, every interface): found peers land in the
    peerstore and must be dialled by the caller. With ``limiter`` (a node.limits.Limiter) every
    byte read or written over TCP passes through it (node/p2p/ratelimit.py)."""
    from libp2p import new_host
    from libp2p.crypto.ed25519 import Ed25519PrivateKey
    from libp2p.crypto.keys import KeyPair
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID

    from .noise_session import NoiseTransport

    # py-libp2p's documented Yamux switch (read at call time): window updates are then sent
    # go-yamux style, once half the receive window has been consumed. setdefault: an operator
    # may still set it.
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    # Yamux pings every connection every 30 s to measure the RTT (~0.6 MB/day per idle
    # connection with TCP/IP headers, more than our whole idle budget, specs/links.md §3):
    # once after connecting is enough for its window tuning; dead links are the kernel's job
    # (node/p2p/ratelimit.py configure_socket).
    from libp2p.stream_muxer.yamux import yamux
    yamux.RTT_MEASURE_INTERVAL = YAMUX_RTT_INTERVAL_S
    from . import malloc_tuning, yamux_tuning
    yamux_tuning.install()
    malloc_tuning.install()
    if limiter is not None:
        from .ratelimit import LimitedTCP
        transports = [LimitedTCP(limiter)]
    else:
        from .tcp import ExclusiveTCP
        transports = [ExclusiveTCP()]
    priv = Ed25519PrivateKey.new(seed)
    key_pair = KeyPair(priv, priv.get_public_key())
    noise = NoiseTransport(key_pair, noise_privkey=new_x25519().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: noise},
        muxer_preference="YAMUX",
        listen_addrs=[multiaddr.Multiaddr(a) for a in listen],
        connection_config=ConnectionConfig(
            max_connections_per_peer=1, dial_timeout=DIAL_TIMEOUT,
            outbound_stream_protocol_negotiation_timeout=NEGOTIATE_TIMEOUT,
            inbound_stream_protocol_negotiation_timeout=NEGOTIATE_TIMEOUT),
        enable_mDNS=mdns,
        transports=transports,
    )
    _no_auto_connector(host)
    _pipelined_negotiation(host)
    return host


def _pipelined_negotiation(host: Any) -> None:
    """Every multistream-select negotiation we start (streams, and the security and muxer
    choice of connections we dial) sends the header and our first choice in one go, as
    go-multistream's SelectProtoOrFail does, instead of waiting a round trip for the other
    side's header first: one round trip per stream opening instead of two (0.6 s at a 600 ms
    satellite RTT; both Bitswap directions open a stream at the start of a fetch).  The answer
    is checked exactly as before; on "na" the remaining choices are tried one by one."""
    client = _pipelined_client()
    host.multiselect_client = client
    upgrader = getattr(host.get_network(), "upgrader", None)
    for layer in ("security_multistream", "muxer_multistream"):
        selector = getattr(getattr(upgrader, layer, None), "_selector", None)
        if selector is not None:
            selector.multiselect_client = client


def _pipelined_client() -> Any:
    from libp2p.protocol_muxer.exceptions import (
        MultiselectClientError,
        MultiselectCommunicatorError,
        ProtocolNotSupportedError,
    )
    from libp2p.protocol_muxer.multiselect_client import (
        MULTISELECT_PROTOCOL_ID,
        PROTOCOL_NOT_FOUND_MSG,
        MultiselectClient,
        is_valid_handshake,
    )

    class PipelinedClient(MultiselectClient):
        async def select_one_of(self, protocols: Any, communicator: Any,
                                negotiate_timeout: int = 30) -> Any:
            if not protocols:
                return await super().select_one_of(protocols, communicator, negotiate_timeout)
            first, rest = protocols[0], list(protocols[1:])
            proposal = first if first is not None else ""   # py-libp2p's None protocol
            with trio.move_on_after(negotiate_timeout):
                try:
                    await communicator.write(MULTISELECT_PROTOCOL_ID)
                    await communicator.write(proposal)
                    header = await communicator.read()
                    answer = await communicator.read()
                except MultiselectCommunicatorError as error:
                    raise MultiselectClientError(f"negotiation failed: {error}") from error
                if not is_valid_handshake(header):
                    raise MultiselectClientError(
                        f"multiselect protocol ID mismatch: got {header!r}")
                if answer == proposal:
                    return first
                if answer != PROTOCOL_NOT_FOUND_MSG:
                    raise MultiselectClientError(
                        f"unrecognized response: {answer!r}, protocol={first}")
                for protocol in rest:
                    try:
                        return await self.try_select(communicator, protocol)
                    except ProtocolNotSupportedError:
                        continue
                raise MultiselectClientError(
                    f"protocols not supported: {[str(p) for p in protocols]}")
            raise MultiselectClientError(
                f"response timed out after {negotiate_timeout}s, protocols tried: "
                f"{list(protocols)}")

    return PipelinedClient()


def _no_auto_connector(host: Any) -> None:
    """py-libp2p's auto-connector dials every peer in the peerstore until 50–200 connections
    are open (polling faster while under 50): in a community, villages then connect to every
    other village they heard of, and connections closed for idleness come straight back.
    Which connections a school keeps is decided by node/p2p/connmgr.py (specs/links.md §4)."""
    connector = host.get_network().auto_connector

    async def never(*_: Any) -> None:
        return None
    connector.maybe_connect = never
    connector.run_background_task = never


@asynccontextmanager
async def run_host(host: Any, listen: Sequence[str]) -> AsyncIterator[Any]:
    """Listen, yield the running host, and always close it (listeners and connections).
    ListenError if one of ``listen`` could not be listened on."""
    failed: ListenError | None = None
    async with host.run([multiaddr.Multiaddr(a) for a in listen]):
        try:
            failed = _listen_failure(host, listen)
            if failed is None:
                yield host
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(10):
                    await host.close()
    if failed is not None:
        raise failed  # out here, not wrapped in the exception groups of host.run()


def _listen_failure(host: Any, listen: Sequence[str]) -> ListenError | None:
    network = host.get_network()
    listening = {str(m) for m in network.listeners}
    failures: dict[str, OSError] = {}
    for t in network.transport_manager.get_transports():
        failures.update(getattr(t, "listen_failures", {}))
    for addr in listen:
        key = str(multiaddr.Multiaddr(addr))
        if key not in listening:
            return ListenError(addr, failures.get(key))
    return None


def listen_addrs(host: Any) -> list[str]:
    """The host's dialable addresses, each with /p2p/<peer id>."""
    pid = host.get_id().to_string()
    return [f"{a}/p2p/{pid}" if "/p2p/" not in str(a) else str(a) for a in host.get_addrs()]


async def connect(host: Any, addr: str) -> str:
    """Dial a full multiaddr (…/p2p/<id>, or a circuit address …/p2p/<relay>/p2p-circuit/p2p/
    <id> through a relay, node/p2p/relay.py); return the peer id string."""
    from libp2p.peer.peerinfo import info_from_p2p_addr
    if "/p2p-circuit" in addr:
        from .relay import dial_via_relay
        return await dial_via_relay(host, addr)
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    with trio.fail_after(DIAL_TIMEOUT):
        await host.connect(info)
    return info.peer_id.to_string()


def connection_lan(conn: Any) -> tuple[str | None, bool]:
    """The remote IP of a connection and whether it counts as LAN for the limits."""
    from .ratelimit import connection_lan as lan_of
    return lan_of(conn)


def known_addr(host: Any, peer_id: str) -> str | None:
    """A dialable ``…/p2p/<peer_id>`` address from the peerstore (a direct one first), or
    None when we know no address of that peer."""
    from libp2p.peer.id import ID
    try:
        addrs = [str(a) for a in host.get_peerstore().addrs(ID.from_base58(peer_id))]
    except Exception:   # unknown peer (PeerStoreError) or not a peer id
        return None
    addrs.sort(key=lambda a: "/p2p-circuit" in a)
    for a in addrs:
        return a if "/p2p/" in a else f"{a}/p2p/{peer_id}"
    return None


def on_connections(host: Any, *, connected: Any, disconnected: Any) -> None:
    """Call ``connected(peer_id_str)`` / ``disconnected(peer_id_str)`` (plain, non-blocking)
    whenever a connection opens or closes."""
    from libp2p.abc import INotifee

    class _Notifee(INotifee):
        async def opened_stream(self, network: Any, stream: Any) -> None:
            pass

        async def closed_stream(self, network: Any, stream: Any) -> None:
            pass

        async def connected(self, network: Any, conn: Any) -> None:
            connected(conn.muxed_conn.peer_id.to_string())

        async def disconnected(self, network: Any, conn: Any) -> None:
            disconnected(conn.muxed_conn.peer_id.to_string())

        async def listen(self, network: Any, multiaddr: Any) -> None:
            pass

        async def listen_close(self, network: Any, multiaddr: Any) -> None:
            pass
    host.get_network().register_notifee(_Notifee())


async def dial_known(host: Any, peer_id: Any) -> None:
    """Dial a peer at the addresses the peerstore has for it (mDNS found it on the LAN)."""
    from libp2p.peer.peerinfo import PeerInfo
    with trio.fail_after(DIAL_TIMEOUT):
        await host.connect(PeerInfo(peer_id, host.get_peerstore().addrs(peer_id)))
