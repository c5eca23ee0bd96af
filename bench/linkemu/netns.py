"""Network namespaces and TUN devices (Linux, root): create, enter, remove.

Namespaces are named ones (``ip netns add``), so that ``ip netns exec NAME cmd`` runs a program
inside; the TUN device of each is opened from inside it (``setns`` of the calling thread), so
nothing is ever created in the caller's own namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
NETNS_DIR = "/var/run/netns"
TUN_NAME = "tun0"
SELF_NS = "/proc/thread-self/ns/net"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the body with the calling thread in namespace ``name`` (sockets made there stay
    there); the thread's own namespace is restored afterwards, also on error."""
    home = os.open(SELF_NS, os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def create(name: str, address: str, prefix_len: int = 24, route: str | None = None) -> int:
    """A new namespace with ``lo`` up and a TUN device holding ``address``; returns the TUN fd
    (non-blocking, IPv4 packets without a header).  With ``route`` (a CIDR) that subnet is
    reached through the TUN device (for a /32 address: the other nodes are not on a subnet of
    this one's interfaces, as across a WAN)."""
    _ip("netns", "add", name)
    try:
        with inside(name):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            try:
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(),
                                                       IFF_TUN | IFF_NO_PI))
                # no IPv6 chatter (router solicitations, DAD) on the emulated link
                for conf in ("all", "default"):
                    with contextlib.suppress(FileNotFoundError), \
                            open(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6", "w") as f:
                        f.write("1")
            except BaseException:
                os.close(fd)
                raise
        try:
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "addr", "add", f"{address}/{prefix_len}", "dev", TUN_NAME)
            _ip("-n", name, "link", "set", TUN_NAME, "mtu", "1500", "up")
            if route is not None:
                _ip("-n", name, "route", "add", route, "dev", TUN_NAME)
        except BaseException:
            os.close(fd)
            raise
        return fd
    except BaseException:
        remove(name)
        raise


def pids(name: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                         timeout=30)
    return [int(p) for p in out.stdout.split()] if out.returncode == 0 else []


def remove(name: str) -> None:
    """Kill whatever still runs in the namespace (only processes we started live there), then
    delete it.  Idempotent."""
    if not os.path.exists(os.path.join(NETNS_DIR, name)):
        return
    for pid in pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def kill_connections(name: str, subnet: str) -> None:
    """Destroy every TCP socket in ``name`` whose peer is in ``subnet`` (the kernel sends RSTs):
    what a modem that re-attaches does to open connections."""
    subprocess.run(["ss", "-N", name, "-K", "dst", subnet], capture_output=True, timeout=30)


_PROBE = f"""
import ctypes, fcntl, os, struct
fd = os.open("{NETNS_DIR}/" + os.environ["LINKEMU_PROBE"], os.O_RDONLY)
if ctypes.CDLL(None, use_errno=True).setns(fd, {CLONE_NEWNET}) != 0:
    raise SystemExit("setns: " + os.strerror(ctypes.get_errno()))
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, {TUNSETIFF}, struct.pack("16sH", b"probe0", {IFF_TUN | IFF_NO_PI}))
"""


@functools.cache
def available() -> tuple[bool, str]:
    """Whether namespaces joined by TUN devices can be made here, and if not, why not."""
    if sys.platform != "linux":
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "network namespaces and TUN devices need root"
    for tool in ("ip", "ss"):
        if shutil.which(tool) is None:
            return False, f"'{tool}' (iproute2) is not installed"
    if not os.path.exists("/dev/net/tun"):
        return False, "/dev/net/tun does not exist (no TUN support)"
    name = f"linkemu-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                          timeout=30)
    if made.returncode != 0:
        return False, f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                               timeout=30, env={**os.environ, "LINKEMU_PROBE": name})
        if probe.returncode != 0:
            why = (probe.stderr.strip().splitlines() or ["?"])[-1]
            return False, f"cannot create a TUN device in a namespace: {why}"
    finally:
        remove(name)
    return True, "network namespaces and TUN devices work"
