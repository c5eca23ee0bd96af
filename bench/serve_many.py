"""One demonstration school serving N villages at once: its peak memory and fair shares.

    .venv/bin/python bench/serve_many.py [--villages 30] [--size-mib 20] [--keep]

A provider process (``bench/bitswap.py``'s: a home with SIZE MiB of random bytes published by
the library, served by ``BlockExchange``) and one villages process running N fetchers, each
with its own libp2p host and block store, all calling ``fetch_dag`` of the same root at once
(on 127.0.0.1).  Figures: the provider's peak RSS (VmHWM, read before it stops) and its RSS
before the fetches, every village's fetch time, the slowest over the fastest, and the
aggregate MiB/s.  Every village's blocks are checked against the root (the store verifies each
block's CID when it is read back).  No target is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import bitswap as B  # noqa: E402

sys.path.insert(0, str(C.REPO))
MiB = C.MiB
LISTEN = "/ip4/127.0.0.1/tcp/0"


def child_villages(n: str, root: str, addr: str, base: str) -> None:
    """N fetchers in one process; print one JSON line with their times."""
    import trio

    from crypto import cid_from_str
    from node.blockstore import BlockStore
    from node.p2p.bitswap import BlockExchange
    from node.p2p.host import make_host, run_host
    from protocol import unixfs

    async def village(i: int, results: list, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        store = BlockStore(Path(base) / f"v{i}")
        store.create()
        host = make_host(os.urandom(32), [LISTEN])
        try:
            async with run_host(host, [LISTEN]), trio.open_nursery() as nursery:
                ex = BlockExchange(host, store)
                await nursery.start(ex.serve)
                go: trio.Event = await _started(task_status)
                await go.wait()
                t0 = time.perf_counter()
                stats = await ex.fetch_dag(cid_from_str(root), [addr])
                results.append({"village": i, "seconds": time.perf_counter() - t0,
                                "bytes": stats.bytes_fetched, "dropped": stats.dropped})
                # read everything back: every block is verified against its CID
                for path, cid in unixfs.list_directory(cid_from_str(root), store.get).items():
                    for _ in unixfs.iter_file_chunks(cid, store.get):
                        pass
                nursery.cancel_scope.cancel()
        finally:
            store.close()

    go = trio.Event()

    async def _started(task_status) -> trio.Event:
        task_status.started()
        return go

    async def main() -> None:
        results: list = []
        async with trio.open_nursery() as nursery:
            for i in range(int(n)):
                await nursery.start(village, i, results)
            print(json.dumps({"ready": True}), flush=True)
            t0 = time.perf_counter()
            go.set()
        print(json.dumps({"results": results, "wall": time.perf_counter() - t0}), flush=True)
    trio.run(main)


def vm_hwm(pid: int) -> tuple[int, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(rest.split()[0]) * 1024
    return out["VmHWM"], out["VmRSS"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--villages", type=int, default=30)
    p.add_argument("--size-mib", type=int, default=20)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    tmp = C.make_tmpdir("servemany")
    try:
        src = tmp / "src"
        src.mkdir()
        (src / "video.bin").write_bytes(os.urandom(args.size_mib * MiB))
        root = B.publish(tmp, "many", [src / "video.bin"])
        provider = B._child("_provide", str(tmp / "home-many"), stdin=subprocess.PIPE)
        addr = json.loads(provider.stdout.readline())["addr"]
        villages = subprocess.Popen(
            [sys.executable, __file__, "_villages", str(args.villages), root, addr,
             str(tmp / "villages")], stdout=subprocess.PIPE, text=True)
        assert json.loads(villages.stdout.readline())["ready"]
        _, rss_before = vm_hwm(provider.pid)
        out = json.loads(villages.stdout.readline())
        villages.wait()
        hwm, _ = vm_hwm(provider.pid)
        provider.stdin.close()
        provider.wait(timeout=60)
        times = sorted(r["seconds"] for r in out["results"])
        dropped = [r["dropped"] for r in out["results"] if r["dropped"]]
        summary = {"villages": args.villages, "size_mib": args.size_mib,
                   "provider_rss_before_mb": round(rss_before / 1e6, 1),
                   "provider_peak_rss_mb": round(hwm / 1e6, 1),
                   "fastest_s": round(times[0], 2), "slowest_s": round(times[-1], 2),
                   "slowest_over_fastest_rate": round(times[0] / times[-1], 3),
                   "aggregate_mib_s": round(args.villages * args.size_mib / times[-1], 1),
                   "dropped": dropped}
        print(f"provider RSS before {summary['provider_rss_before_mb']} MB, peak "
              f"{summary['provider_peak_rss_mb']} MB; villages {times[0]:.1f}-{times[-1]:.1f} s;"
              f" slowest rate / fastest rate {summary['slowest_over_fastest_rate']}; "
              f"aggregate {summary['aggregate_mib_s']} MiB/s")
        print("SUMMARY " + json.dumps(summary))
    finally:
        C.done_with(tmp, args.keep)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_villages":
        child_villages(*sys.argv[2:])
    else:
        main()
