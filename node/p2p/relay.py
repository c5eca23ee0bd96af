"""Circuit relay v2: a school seed relays for its members; a member behind NAT is reachable
through its seed.

Roles (libp2p circuit relay v2, https://github.com/libp2p/specs/blob/master/relay/circuit-v2.md):

* hop  (``/libp2p/circuit/relay/0.2.0/hop``): the seed accepts RESERVE from members and CONNECT
  from anyone who wants to reach a reserved member, and pipes the bytes.
* stop (``/libp2p/circuit/relay/0.2.0/stop``): the member accepts circuits the relay opens to
  it; the circuit is then upgraded (Noise + Yamux, end to end) into a normal libp2p connection.
* a dialer needs neither service: ``dial_via_relay`` speaks HOP CONNECT itself.

What runs: py-libp2p's ``CircuitV2Protocol`` (hop and stop handlers, resource accounting). The
client side (RESERVE, refresh, CONNECT) is done here with py-libp2p's own protobuf messages and
framing, because its client code is unfit for us (measured/read in 0.8.1):

* ``RelayDiscovery(auto_reserve=True)`` only looks at relays connected before it started
  (docs/py-libp2p.md), and its ``make_reservation`` needs the relay to have been "discovered" first.
* ``CircuitV2Transport.dial`` makes a *reservation* on the relay before every CONNECT when the
  client role is on, swallows every error into ``False``/``ConnectionError`` strings, and may
  sleep through back-offs in ``_select_relay``; it also returns an upgraded connection, so it
  cannot be registered as a swarm transport (the swarm expects a raw one).
* The swarm skips ``/p2p-circuit`` addresses when dialling (``is_relay_address`` filter in
  ``Swarm.dial_peer``), so ``host.connect`` with a circuit address can never work: use
  ``dial_via_relay``. Once that connection exists, ``host.new_stream(peer, ...)`` uses it.

Workaround on the hop side (``_Hop``): py-libp2p's RESERVE handler takes the reserving peer id
from the message's optional ``peer`` field when present, i.e. any peer could make (and use up)
a reservation in another school's name. We clear that field so the reservation is always for
the authenticated peer of the connection (what go/rust-libp2p do). Our own client never sends it.

Limits for a school seed (``SEED_LIMITS``; numbers are per relay):

* 32 reservations at a time (a demonstration school with a few dozen member schools); a
  reservation lasts 1 h and ``Relay.reserve`` refreshes it after 80 % of that.
* 16 simultaneous circuits to one reserved member.
* a circuit lives at most 1 h and carries at most 256 MiB in total (both directions): enough
  for feed sync and lessons/small videos, and a cap on what one circuit can cost the seed
  (measured: 12.7 MiB/s through one circuit with relay, member and dialer in one process, 64 KiB
  writes; 256 MiB is then ~20 s of the seed's CPU). When a cap is hit the relay resets the
  circuit; the caller sees a broken connection (StreamEOF/reset) and may dial again. py-libp2p
  checks the duration only when bytes flow: an idle circuit outlives it.

Caller must know:

* The relayed connection is an ordinary swarm connection to that peer and counts against
  ``max_connections_per_peer=1``: ``dial_via_relay`` returns at once when already connected, and
  if a direct connection is added later the swarm trims one of the two by fewest streams/age
  (after its grace period), not by preferring the direct one.
* ``relay_service(hop=True)`` is the whole "enable_hop": nothing in ``make_host`` changes. With
  ``hop=True`` py-libp2p also registers the stop handler (it cannot be separated).
* A reservation only lives while the member stays connected to the relay (py-libp2p checks the
  connection on every CONNECT). Keep the connection to the seed open.
* Any protocol runs over a relayed connection (tested: identify on connect, an echo protocol
  with 300 kB each way), at relay speed; the circuit's byte cap counts handshakes too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import multiaddr
import trio

from ..peerlog import PeerLog
from .streams import DIAL_TIMEOUT, REQUEST_TIMEOUT

log = logging.getLogger("schoolmesh.relay")

HOP_PROTOCOL_ID = "/libp2p/circuit/relay/0.2.0/hop"
STOP_PROTOCOL_ID = "/libp2p/circuit/relay/0.2.0/stop"

MAX_RESERVATIONS = 32
MAX_CIRCUITS_PER_PEER = 16
CIRCUIT_DURATION_S = 3600
CIRCUIT_DATA_BYTES = 256 * 1024 * 1024
RESERVATION_TTL_S = 3600
REFRESH_AT = 0.8          # refresh a reservation after this fraction of its lifetime

_STATUS = {100: "OK", 200: "RESERVATION_REFUSED", 201: "RESOURCE_LIMIT_EXCEEDED",
           202: "PERMISSION_DENIED", 203: "CONNECTION_FAILED", 204: "NO_RESERVATION",
           400: "MALFORMED_MESSAGE", 401: "UNEXPECTED_MESSAGE"}


class RelayError(ConnectionError):
    """A reservation or a relayed dial failed; ``status`` is the relay's status name if any."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_reservations: int = MAX_RESERVATIONS
    max_circuits_per_peer: int = MAX_CIRCUITS_PER_PEER
    circuit_duration_s: int = CIRCUIT_DURATION_S
    circuit_data_bytes: int = CIRCUIT_DATA_BYTES
    reservation_ttl_s: int = RESERVATION_TTL_S


SEED_LIMITS = Limits()


def _peer_id(p: Any) -> Any:
    from libp2p.peer.id import ID
    return p if isinstance(p, ID) else ID.from_base58(str(p))


def _connected(host: Any, pid: Any) -> bool:
    return bool((host.get_network().connections or {}).get(pid))


async def _open_hop(host: Any, relay: Any) -> Any:
    from libp2p.custom_types import TProtocol
    try:
        return await host.new_stream(relay, [TProtocol(HOP_PROTOCOL_ID)])
    except trio.TooSlowError:
        raise
    except Exception as exc:
        if not _connected(host, relay):
            raise RelayError(f"relay {relay} is not connected") from exc
        raise RelayError(f"peer {relay} does not offer circuit relay v2 hop "
                         f"({HOP_PROTOCOL_ID}): {exc}") from exc


async def _exchange(stream: Any, request: Any, what: str, relay: Any) -> Any:
    """Send one HopMessage and read the relay's STATUS reply; raise RelayError unless OK."""
    from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
    from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
    try:
        await write_delimited_msg(stream, request)
        reply = await read_delimited_msg(stream, HopMessage)
    except (trio.TooSlowError, trio.Cancelled):
        raise
    except Exception as exc:
        raise RelayError(f"{what} with relay {relay} failed: connection lost ({exc!r})") from exc
    if reply.type != HopMessage.STATUS:
        raise RelayError(f"{what}: relay {relay} sent message type {reply.type}, not STATUS",
                         "UNEXPECTED_MESSAGE")
    # proto2: an absent status on a STATUS message means OK (as py-libp2p's discovery reads it)
    code = reply.status if reply.HasField("status") else 100
    if code != 100:
        name = _STATUS.get(code, str(code))
        raise RelayError(f"{what} refused by relay {relay}: {name}", name)
    return reply


def _make_hop(host: Any, limits: Limits, allow: Callable[[str], bool] | None = None) -> Any:
    from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
    from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
    from libp2p.relay.circuit_v2.protocol_buffer import StatusCode, to_proto_status
    from libp2p.relay.circuit_v2.resources import RelayLimits
    from libp2p.relay.circuit_v2.utils import write_delimited_msg
    peer_log = PeerLog(log)

    class _Hop(CircuitV2Protocol):
        async def _handle_reserve(self, stream: Any, msg: Any) -> None:
            # Reserve for the authenticated remote peer, never for a peer id it names.
            msg.ClearField("peer")
            peer = stream.muxed_conn.peer_id.to_string()
            if allow is not None and not allow(peer):
                peer_log.info(peer, "relay: reservation refused",
                              "relay: reservation refused to %s (not one of our members)", peer)
                await write_delimited_msg(stream, HopMessage(
                    type=HopMessage.STATUS, status=to_proto_status(StatusCode.PERMISSION_DENIED)))
                return
            await super()._handle_reserve(stream, msg)

    return _Hop(host, allow_hop=True, limits=RelayLimits(
        duration=limits.circuit_duration_s, data=limits.circuit_data_bytes,
        max_circuit_conns=limits.max_circuits_per_peer,
        max_reservations=limits.max_reservations, reservation_ttl=limits.reservation_ttl_s))


class Relay:
    """Circuit relay v2 on one host; made by ``relay_service``."""

    def __init__(self, host: Any, hop: bool, client: bool, nursery: trio.Nursery,
                 protocol: Any) -> None:
        self.host, self.hop, self.client = host, hop, client
        self.protocol = protocol            # py-libp2p's CircuitV2Protocol
        self._nursery = nursery
        self._reservations: dict[str, tuple[float, list[str]]] = {}  # relay id -> (expire, addrs)
        self._refreshing: set[str] = set()

    def circuit_addrs(self) -> list[str]:
        """Every circuit address through which this host is reachable now."""
        now = time.time()
        return [a for exp, addrs in self._reservations.values() if exp > now for a in addrs]

    async def reserve(self, relay_peer_id: Any, *, refresh: bool = True) -> list[str]:
        """Reserve a slot on an already-connected relay; return this host's circuit addresses
        through it (``<relay addr>/p2p/<relay>/p2p-circuit/p2p/<us>``). With ``refresh`` the
        reservation is renewed in the background until the service stops; a failed renewal is
        logged and the reservation dropped from ``circuit_addrs``."""
        if not self.client:
            raise RelayError("relay_service was started without client=True")
        relay = _peer_id(relay_peer_id)
        addrs = await self._reserve_once(relay)
        key = relay.to_base58()
        if refresh and key not in self._refreshing:
            self._refreshing.add(key)
            self._nursery.start_soon(self._keep, relay)
        return addrs

    async def _reserve_once(self, relay: Any) -> list[str]:
        from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
        from .streams import close_stream, reset_stream
        if not _connected(self.host, relay):
            raise RelayError(f"relay {relay} is not connected (connect to it first)")
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                stream = await _open_hop(self.host, relay)
                try:
                    # spec: RESERVE carries no fields; the relay reserves for the connection's
                    # peer
                    reply = await _exchange(stream, HopMessage(type=HopMessage.RESERVE),
                                            "reservation", relay)
                except BaseException:
                    with trio.CancelScope(shield=True):
                        await reset_stream(stream)
                    raise
                await close_stream(stream)
        except trio.TooSlowError:
            raise RelayError(f"relay {relay} did not answer a reservation within "
                             f"{REQUEST_TIMEOUT:g} s") from None
        if not reply.HasField("reservation"):
            raise RelayError(f"relay {relay} accepted without a reservation", "MALFORMED_MESSAGE")
        me = self.host.get_id().to_base58()
        bases = []
        for raw in reply.reservation.addrs:
            try:
                bases.append(multiaddr.Multiaddr(bytes(raw)))
            except Exception:
                log.debug("relay %s sent an unreadable address", relay)
        if not bases:  # relay listening on 0.0.0.0 only: use the address we know it by
            bases = list(self.host.get_peerstore().addrs(relay))
        out = []
        for ma in bases:
            s = str(ma)
            if "/p2p/" not in s:
                s = f"{s}/p2p/{relay.to_base58()}"
            out.append(f"{s}/p2p-circuit/p2p/{me}")
        expire = float(reply.reservation.expire)
        self._reservations[relay.to_base58()] = (expire, out)
        log.info("relay: reserved on %s until %s: %s", relay, time.ctime(expire), out)
        return out

    async def _keep(self, relay: Any) -> None:
        key = relay.to_base58()
        try:
            while key in self._reservations:
                expire, _ = self._reservations[key]
                now = time.time()
                await trio.sleep(max(1.0, (expire - now) * REFRESH_AT))
                try:
                    await self._reserve_once(relay)
                except (RelayError, trio.TooSlowError) as exc:
                    log.warning("relay: could not renew the reservation on %s: %s", relay, exc)
                    self._reservations.pop(key, None)
        finally:
            self._refreshing.discard(key)


@asynccontextmanager
async def relay_service(host: Any, *, hop: bool, client: bool,
                        limits: Limits = SEED_LIMITS,
                        allow: Callable[[str], bool] | None = None) -> AsyncIterator[Relay]:
    """Run circuit relay v2 on a running host until the context exits.

    ``hop``: relay for others (a seed); with ``allow`` only peers (id strings) for which it
    returns True get a reservation (others: PERMISSION_DENIED), asked at each reservation.
    ``client``: accept relayed connections (stop) and make reservations with
    ``Relay.reserve``. Dialling through a relay needs neither: see ``dial_via_relay``."""
    from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
    from libp2p.tools.anyio_service import background_trio_service

    if not (hop or client):
        raise ValueError("relay_service needs hop=True or client=True")
    protocol = (_make_hop(host, limits, allow) if hop
                else CircuitV2Protocol(host, allow_hop=False))
    async with background_trio_service(protocol), trio.open_nursery() as nursery:
        await protocol.event_started.wait()
        relay = Relay(host, hop, client, nursery, protocol)
        try:
            yield relay
        finally:
            nursery.cancel_scope.cancel()


def parse_circuit_addr(circuit_addr: str) -> tuple[str, str, str]:
    """``(relay address or "", relay peer id, destination peer id)`` of a circuit address."""
    s = str(circuit_addr)
    head, sep, tail = s.partition("/p2p-circuit")
    if not sep or not tail.startswith("/p2p/") or "/p2p/" not in head:
        raise ValueError(f"not a circuit address …/p2p/<relay>/p2p-circuit/p2p/<peer>: {s}")
    dest = tail[len("/p2p/"):]
    relay_addr, _, relay_id = head.rpartition("/p2p/")
    if not relay_id or not dest or "/" in dest or "/" in relay_id:
        raise ValueError(f"malformed circuit address: {s}")
    return relay_addr, relay_id, dest


async def dial_via_relay(host: Any, circuit_addr: str) -> str:
    """Connect ``host`` to the peer behind ``circuit_addr`` through its relay (dialling the
    relay first if it is not connected and the address says where it is); return the peer id
    string. The result is a normal connection: ``host.new_stream(peer, ...)`` uses it. Raises
    ``RelayError`` (never hangs: at most DIAL_TIMEOUT + REQUEST_TIMEOUT seconds)."""
    relay_addr, relay_s, dest_s = parse_circuit_addr(circuit_addr)
    relay, dest = _peer_id(relay_s), _peer_id(dest_s)
    if _connected(host, dest):
        return dest_s
    try:
        with trio.fail_after(DIAL_TIMEOUT + REQUEST_TIMEOUT):
            await _dial(host, relay_addr, relay, dest)
    except trio.TooSlowError:
        raise RelayError(f"no circuit to {dest_s} through relay {relay_s} within "
                         f"{DIAL_TIMEOUT + REQUEST_TIMEOUT:g} s") from None
    return dest_s


async def _dial(host: Any, relay_addr: str, relay: Any, dest: Any) -> None:
    from libp2p.connection_types import ConnectionType
    from libp2p.network.connection.raw_connection import RawConnection
    from libp2p.peer.peerinfo import PeerInfo
    from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage, PeerId
    from .streams import reset_stream

    if not _connected(host, relay):
        if not relay_addr:
            raise RelayError(f"relay {relay} is not connected and the address has no "
                             "transport part to dial it")
        try:
            await host.connect(PeerInfo(relay, [multiaddr.Multiaddr(relay_addr)]))
        except Exception as exc:
            raise RelayError(f"cannot reach relay {relay}: {exc}") from exc
    stream = await _open_hop(host, relay)
    try:
        await _exchange(stream, HopMessage(type=HopMessage.CONNECT,
                                           peer=PeerId(id=dest.to_bytes())),
                        f"circuit to {dest}", relay)
        ma = multiaddr.Multiaddr(f"/p2p/{relay.to_base58()}/p2p-circuit/p2p/{dest.to_base58()}")
        raw = RawConnection(stream=stream, initiator=True,
                            connection_type=ConnectionType.RELAYED, addresses=[ma])
        try:  # Noise authenticates ``dest`` end to end: the relay cannot impersonate it
            conn = await host.upgrade_outbound_connection(raw, dest)
        except Exception as exc:
            raise RelayError(f"securing the circuit to {dest} failed: {exc}") from exc
    except BaseException:
        with trio.CancelScope(shield=True):
            await reset_stream(stream)
        raise
    try:  # mark it relayed, as py-libp2p does for the inbound side
        conn.set_transport_info([ma], ConnectionType.RELAYED)
    except Exception:
        log.debug("could not mark the connection to %s as relayed", dest)
