"""Slow, far, flaky links between network namespaces, for tests and benchmarks.

    from bench.linkemu import Link, available      # tests (repository root on sys.path)
    ok, why = available()                          # root, iproute2, /dev/net/tun, a real probe
    with Link(rate="512kbit", delay=0.150) as link:          # 300 ms RTT
        server = link.popen(1, ["schoolmesh", "--home", B, "start", "--listen",
                                f"/ip4/{link.address(1)}/tcp/4004", ...])
        link.run(0, ["schoolmesh", "--home", A, "connect", ...])
        link.blackhole(30)          # packets dropped for 30 s, sockets stay open
        link.reset_connections()    # every TCP connection across the link is reset
        link.stats().wire_bytes(1, 0)

The kernel here has no ``netem``, so a userspace engine (a child process) reads every IPv4
packet from each namespace's TUN device and writes it to the destination's after the link's
serialisation time and one-way delay (``shaper.py``, the model; ``_engine.py``, the loop).
TCP sees the real RTT and real queueing.  Node k is 10.77.0.(k+1)/24 in namespace
``link.namespace(k)``; each namespace has its own loopback, so a daemon's control API on
127.0.0.1 is reached by running the CLI in the same namespace (``link.run(k, ...)``).
"""

from .link import Link, LinkError, LinkStats
from .netns import available
from .shaper import Shaper, parse_rate

__all__ = ["Link", "LinkError", "LinkStats", "Shaper", "available", "parse_rate"]
