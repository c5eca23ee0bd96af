"""Network figures of issue 3 that need no big transfers:

* connect latency (TCP + Noise + Yamux + identify) with schoolmesh's host settings, against
  py-libp2p's default connection settings measured in the same run (the baseline: a fixed
  250 ms happy-eyeballs wait, docs/py-libp2p.md) — target < 100 ms;
* how fast a new resource's signed head reaches every node of a 20-node mesh and the entry is
  pulled (gossip + feed sync), all nodes in one process on 127.0.0.1 — target p95 < 2 s.

    .venv/bin/python bench/network.py [--quick] [--nodes N] [--rounds R]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio  # noqa: E402

from _common import (fmt_table, header, make_tmpdir, median, percentile, rmtree,  # noqa: E402
                     summary, yesno)

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


async def connect_latency(n: int) -> tuple[list[float], list[float]]:
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair

    from node.p2p import host as p2p

    ours, default = [], []
    for i in range(n):
        for kind, out in (("ours", ours), ("default", default)):
            if kind == "ours":
                a, b = p2p.make_host(os.urandom(32)), p2p.make_host(os.urandom(32))
            else:  # py-libp2p as it comes (default ConnectionConfig and security list)
                a, b = (new_host(key_pair=create_new_key_pair(os.urandom(32))) for _ in "ab")
            async with p2p.run_host(a, LOOPBACK), p2p.run_host(b, LOOPBACK):
                addr = p2p.listen_addrs(b)[0]
                t = time.perf_counter()
                await p2p.connect(a, addr)
                out.append((time.perf_counter() - t) * 1000)
    return ours, default


async def propagation(n_nodes: int, rounds: int, degree: int, tmp: Path) -> list[float]:
    from node import daemon, feeds, library
    from node.daemon import Node, Options
    from node.home import init_home
    from node.p2p import host as p2p

    rnd = random.Random(7)
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        nodes: list[Node] = []
        for i in range(n_nodes):
            home = init_home(tmp / f"n{i}", f"school {i}", "school")
            nodes.append(await nursery.start(Node(home, Options(listen=LOOPBACK)).serve))
        author = nodes[0]
        for n in nodes[1:]:
            daemon.follow(n.home, author.home.school_id)
        # a sparse random mesh: every node dials `degree` others (a connected graph: also i-1)
        for i, n in enumerate(nodes[1:], start=1):
            targets = {i - 1} | set(rnd.sample(range(n_nodes), degree))
            for j in targets - {i}:
                await n.api_connect(p2p.listen_addrs(nodes[j].host)[0])
        for n in nodes[1:]:
            await n.sync_now()
        await trio.sleep(3)  # let gossipsub build its mesh (heartbeat 1 s)
        for r in range(rounds):
            src = tmp / f"res{r}"
            src.mkdir()
            (src / "lesson.txt").write_text(f"lesson {r}\n", "utf-8")
            library.publish(author.home, [src], {"title": f"Lesson {r}"})
            target = feeds.head(author.home.conn, author.home.feed)[0]
            t0 = trio.current_time()
            pending = set(range(1, n_nodes))
            with trio.fail_after(60):
                while pending:
                    for i in list(pending):
                        if feeds.head(nodes[i].home.conn, author.home.feed)[0] >= target:
                            latencies.append(trio.current_time() - t0)
                            pending.discard(i)
                    await trio.sleep(0.01)
            await trio.sleep(1.5)  # rounds apart (A polls its head every 1 s)
        nursery.cancel_scope.cancel()
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--rounds", type=int)
    args = ap.parse_args()
    n_nodes = args.nodes or (6 if args.quick else 20)
    rounds = args.rounds or (3 if args.quick else 10)
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    logging.disable(logging.WARNING)
    header("network: connect latency and head propagation", args.quick)

    ours, default = trio.run(connect_latency, 5 if args.quick else 20)
    print(fmt_table(["host settings", "dials", "median ms", "p95 ms"], [
        ["py-libp2p defaults (baseline)", len(default), median(default), percentile(default, 95)],
        ["schoolmesh (Noise only, 1 conn/peer)", len(ours), median(ours), percentile(ours, 95)],
    ]))
    ok_connect = percentile(ours, 95) < 100
    print(f"target met: {yesno(ok_connect)}  (connect p95 {percentile(ours, 95):.1f} ms < 100 ms)")

    tmp = make_tmpdir("network")
    try:
        t = time.perf_counter()
        lat = trio.run(propagation, n_nodes, rounds, 3, tmp)
        print(f"\n{n_nodes} nodes in one process, {rounds} resources published by node 0, "
              f"{len(lat)} arrivals ({time.perf_counter() - t:.0f} s)")
        print(fmt_table(["measure", "seconds"], [
            ["p50 publish -> entry stored at a follower", median(lat)],
            ["p95", percentile(lat, 95)], ["max", max(lat)],
            ["(the author notices its own new entry within)", 0.25]]))
        ok_prop = percentile(lat, 95) < 2.0
        print(f"target met: {yesno(ok_prop)}  (p95 {percentile(lat, 95):.2f} s < 2 s)")
    finally:
        rmtree(tmp)
    summary("network", {"connect_p50_ms": round(median(ours), 1),
                        "connect_p95_ms": round(percentile(ours, 95), 1),
                        "default_connect_p50_ms": round(median(default), 1),
                        "nodes": n_nodes, "prop_p50_s": round(median(lat), 2),
                        "prop_p95_s": round(percentile(lat, 95), 2),
                        "targets": {"connect < 100 ms": ok_connect,
                                    "head to all p95 < 2 s": ok_prop}})


if __name__ == "__main__":
    main()
