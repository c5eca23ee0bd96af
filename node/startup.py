"""What ``schoolmesh start`` checks before the node runs, how it explains a port it cannot
have, and the addresses it tells teachers to open.

Every message names the option (``--listen``, ``--web``, ``--control``, ``--bootstrap``) so the
person starting the node knows what to change.
"""

from __future__ import annotations

import errno
import ipaddress
from urllib.parse import urlsplit

from .errors import NodeError

MAX_PORT = 65535


def parse_hostport(option: str, value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IP address or ``localhost``; IPv6 in brackets) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    example = "e.g. 0.0.0.0:8080" if option == "--web" else "e.g. 127.0.0.1:0"
    if not sep or not host or not port.isdigit():
        raise NodeError(f"{option} {value}: expected HOST:PORT, {example}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if bare != "localhost":
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            raise NodeError(f"{option} {value}: {host} is not an IP address "
                            f"(expected HOST:PORT, {example})") from None
    if int(port) > MAX_PORT:
        raise NodeError(f"{option} {value}: port {port} is out of range (0-{MAX_PORT})")
    return bare, int(port)


def check_listen(value: str) -> None:
    """A listen address: ``/ip4/ADDR/tcp/PORT`` or ``/ip6/ADDR/tcp/PORT``."""
    parts = value.split("/")
    example = "e.g. /ip4/0.0.0.0/tcp/4004"
    if len(parts) != 5 or parts[0] or parts[1] not in ("ip4", "ip6") or parts[3] != "tcp":
        raise NodeError(f"--listen {value}: expected /ip4/ADDRESS/tcp/PORT or "
                        f"/ip6/ADDRESS/tcp/PORT, {example}")
    try:
        ip = ipaddress.ip_address(parts[2])
    except ValueError:
        ip = None
    if ip is None or ip.version != int(parts[1][-1]):
        raise NodeError(f"--listen {value}: {parts[2]} is not an {parts[1]} address")
    if not parts[4].isdigit() or int(parts[4]) > MAX_PORT:
        raise NodeError(f"--listen {value}: port {parts[4]} is out of range (0-{MAX_PORT})")


def check_bootstrap(value: str) -> None:
    """A peer address ending in /p2p/<school id> that py-multiaddr parses."""
    import multiaddr
    try:
        multiaddr.Multiaddr(value)
    except ValueError as exc:
        reason = str(exc).split("': ", 1)[-1].split(" (string:", 1)[0]
        raise NodeError(f"--bootstrap {value}: not a valid multiaddr ({reason})") from None
    if "/p2p/" not in value:
        raise NodeError(f"--bootstrap {value}: the address must end with /p2p/<school id>")


def os_error(exc: BaseException) -> OSError | None:
    """``exc`` if it is an OSError, or the first OSError of an exception group holding
    nothing else (trio and hypercorn wrap errors in groups); else None."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(OSError)
        if matched is not None and rest is None:
            while isinstance(matched, BaseExceptionGroup):
                matched = matched.exceptions[0]
            return matched
    return None


def bind_error(option: str, value: str, exc: OSError) -> NodeError:
    """A port the node could not have, explained."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        hint = (f"another program listens there (another schoolmesh node on this computer? "
                f"give this one another port with {option}")
        hint += ", and --web)" if option == "--listen" else ")"
        return NodeError(f"{option} {value}: port already in use: {hint}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return NodeError(f"{option} {value}: this computer has no such address ({reason})")
    if exc.errno == errno.EACCES:
        return NodeError(f"{option} {value}: not allowed to listen there ({reason}; ports "
                         "below 1024 need administrator rights)")
    return NodeError(f"{option} {value}: cannot listen there ({reason})")


def teacher_urls(url: str) -> list[str]:
    """The addresses to open the web library at, for a server started at ``url``: this
    computer's addresses from its network interfaces when it listens on all of them."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    if host not in ("0.0.0.0", "::"):
        return [url.rstrip("/") + "/"]
    import ifaddr
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.append(ipaddress.IPv4Address(ip.ip))
            elif host == "::":
                found.append(ipaddress.IPv6Address(ip.ip[0]))
    lan = [a for a in found if not (a.is_loopback or a.is_link_local)]
    chosen = sorted(set(lan or [a for a in found if a.is_loopback]),
                    key=lambda a: (a.version, a.packed)) or [ipaddress.IPv4Address("127.0.0.1")]
    return [f"http://{a}:{port}/" if a.version == 4 else f"http://[{a}]:{port}/"
            for a in chosen]


def reachable_addrs(listen: list[str]) -> list[str]:
    """Listen addresses other schools can dial (an invite's seeds): a wildcard listen address
    is replaced by this computer's LAN address; loopback is kept only when it is all there is
    (tests, demos).  At most 4."""
    out = []
    for a in listen:
        if a.startswith("/ip4/0.0.0.0/"):
            a = "/ip4/" + _lan_ip() + a[len("/ip4/0.0.0.0"):]
        out.append(a)
    public = [a for a in out if not a.startswith("/ip4/127.")]
    return (public or out)[:4]


def _lan_ip() -> str:
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))   # TEST-NET address: no packet is sent by connect()
        return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()
