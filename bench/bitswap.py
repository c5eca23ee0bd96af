"""Bitswap between two processes on loopback, against raw trio TCP carrying the same bytes.

    .venv/bin/python bench/bitswap.py [--quick] [--repeats N] [--keep] [--profile]

A provider process (its own home, the content published into it with the library) serves with
``BlockExchange``; a fetcher process (its own fresh block store) runs ``fetch_dag`` of the
content root.  The time is ``fetch_dag`` in the fetcher: dial, wants, blocks, verification of
every block against its CID, storage, and the final durable commit.  Afterwards the bench reads
every file back from the fetcher's store and compares it with the original (outside the
timing): a run whose bytes differ is a crash, not a figure.

Sets: one 256 MiB file (1 MiB chunks), and 2,000 files of seeded-random sizes 4-64 KiB in 4
folders of 500 (as bench/publish_small.py).
Baseline (same run, ceiling): two processes and a plain trio TCP connection, the sender writing
the same bytes (the file, or the small files one after another) in 256 KiB chunks, the receiver
counting them.  Context (same run): the same bytes on one py-libp2p stream (Noise + Yamux,
256 KiB writes) between two processes, what any protocol on py-libp2p can at best reach.
Targets (issue 3): >= 60 MiB/s for 256 MiB, >= 18 MiB/s for the 2,000 files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.REPO))
MiB = C.MiB
TARGET_LARGE = 60.0
TARGET_SMALL = 18.0
RAW_CHUNK = 256 * 1024
LISTEN = "/ip4/127.0.0.1/tcp/0"
STREAM_PROTOCOL = "/schoolmesh/bench-stream/1.0.0"


# -- child processes -------------------------------------------------------------------------

async def _wait_stdin_closed() -> None:
    import trio
    stream = trio.lowlevel.FdStream(os.dup(0))
    async with stream:
        while await stream.receive_some(65536):
            pass


def child_provide(home_dir: str, profile: str | None = None) -> None:
    """Serve a home's blocks until stdin closes; print {"addr"} when ready."""
    import trio

    from node.home import open_home
    from node.p2p.bitswap import BlockExchange
    from node.p2p.host import listen_addrs, make_host, run_host

    async def main() -> None:
        home = open_home(Path(home_dir))
        host = make_host(os.urandom(32), [LISTEN])
        async with run_host(host, [LISTEN]), trio.open_nursery() as nursery:
            ex = BlockExchange(host, home.blocks)
            await nursery.start(ex.serve)
            print(json.dumps({"addr": listen_addrs(host)[0]}), flush=True)
            await _wait_stdin_closed()
            nursery.cancel_scope.cancel()
        home.close()
    if profile:
        import cProfile
        cProfile.runctx("trio.run(main)", globals(), {"trio": trio, "main": main},
                        filename=profile)
    else:
        trio.run(main)


def child_fetch(blocks_dir: str, root: str, addr: str, profile: str | None) -> None:
    """Fetch ``root`` from ``addr`` into a fresh block store; print timing as JSON."""
    import trio

    from crypto import cid_from_str
    from node.blockstore import BlockStore
    from node.p2p.bitswap import BlockExchange
    from node.p2p.host import make_host, run_host

    async def main() -> None:
        store = BlockStore(Path(blocks_dir))
        store.create()
        host = make_host(os.urandom(32), [LISTEN])
        async with run_host(host, [LISTEN]), trio.open_nursery() as nursery:
            ex = BlockExchange(host, store)
            await nursery.start(ex.serve)
            t0, cpu0 = time.perf_counter(), time.process_time()
            stats = await ex.fetch_dag(cid_from_str(root), [addr])
            dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            print(json.dumps({"seconds": dt, "cpu": cpu, "bytes": stats.bytes_fetched,
                              "blocks": stats.blocks_fetched, "wants": stats.wants_sent,
                              "duplicates": stats.duplicates, "dropped": stats.dropped}),
                  flush=True)
            nursery.cancel_scope.cancel()
        store.close()
    if profile:
        import cProfile
        cProfile.runctx("trio.run(main)", globals(), {"trio": trio, "main": main},
                        filename=profile)
    else:
        trio.run(main)


def child_raw_send(path_list: str) -> None:
    """Raw TCP sender: accept one connection, send the files' bytes in 256 KiB chunks."""
    import trio
    paths = Path(path_list).read_text("utf-8").splitlines()

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        print(json.dumps({"port": listeners[0].socket.getsockname()[1]}), flush=True)
        stream = await listeners[0].accept()
        async with stream:
            buf = b""
            for p in paths:
                with open(p, "rb") as f:
                    while data := f.read(RAW_CHUNK - len(buf)):
                        buf += data
                        if len(buf) == RAW_CHUNK:
                            await stream.send_all(buf)
                            buf = b""
            if buf:
                await stream.send_all(buf)
        for listener in listeners:
            await listener.aclose()
    trio.run(main)


def child_raw_recv(port: str) -> None:
    import trio

    async def main() -> None:
        t0 = time.perf_counter()
        stream = await trio.open_tcp_stream("127.0.0.1", int(port))
        total = 0
        async with stream:
            while data := await stream.receive_some(RAW_CHUNK):
                total += len(data)
        print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": total}), flush=True)
    trio.run(main)


def child_stream_recv() -> None:
    """py-libp2p stream receiver: print {"addr"}, count one stream's bytes, print timing."""
    import trio

    from node.p2p.host import listen_addrs, make_host, run_host

    async def main() -> None:
        host = make_host(os.urandom(32), [LISTEN])
        done = trio.Event()
        result: dict = {}

        async def handler(stream) -> None:
            t0, total = time.perf_counter(), 0
            try:
                while data := await stream.read(MiB):
                    total += len(data)
            except EOFError:
                pass
            result.update(seconds=time.perf_counter() - t0, bytes=total)
            done.set()

        async with run_host(host, [LISTEN]):
            host.set_stream_handler(STREAM_PROTOCOL, handler)
            print(json.dumps({"addr": listen_addrs(host)[0]}), flush=True)
            await done.wait()
        print(json.dumps(result), flush=True)
    trio.run(main)


def child_stream_send(path_list: str, addr: str) -> None:
    """py-libp2p stream sender: the files' bytes in 256 KiB writes on one stream."""
    import trio
    from libp2p.peer.id import ID

    from node.p2p.host import connect, make_host, run_host
    paths = Path(path_list).read_text("utf-8").splitlines()

    async def main() -> None:
        host = make_host(os.urandom(32), [LISTEN])
        async with run_host(host, [LISTEN]):
            pid = await connect(host, addr)
            stream = await host.new_stream(ID.from_base58(pid), [STREAM_PROTOCOL])
            buf = b""
            for p in paths:
                with open(p, "rb") as f:
                    while data := f.read(RAW_CHUNK - len(buf)):
                        buf += data
                        if len(buf) == RAW_CHUNK:
                            await stream.write(buf)
                            buf = b""
            if buf:
                await stream.write(buf)
            await stream.close()
            await trio.sleep(0.5)  # let the receiver drain before the connection closes
    trio.run(main)


# -- the measurements ------------------------------------------------------------------------

def _child(*args: str, stdin: int | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            stdin=stdin, text=True, cwd=C.REPO)


def raw_tcp(files: list[Path], tmp: Path) -> float:
    listing = tmp / "raw-files.txt"
    listing.write_text("\n".join(str(p) for p in files), "utf-8")
    sender = _child("_raw_send", str(listing))
    try:
        port = json.loads(sender.stdout.readline())["port"]
        out = subprocess.run([sys.executable, __file__, "_raw_recv", str(port)],
                             capture_output=True, text=True, check=True, timeout=600)
    finally:
        sender.wait(timeout=60)
    r = json.loads(out.stdout)
    expected = sum(p.stat().st_size for p in files)
    if r["bytes"] != expected:
        raise RuntimeError(f"raw TCP received {r['bytes']} bytes, expected {expected}")
    return r["seconds"]


def libp2p_stream(files: list[Path], tmp: Path) -> float:
    """Context: the same bytes on one py-libp2p stream (Noise + Yamux), two processes."""
    listing = tmp / "raw-files.txt"
    listing.write_text("\n".join(str(p) for p in files), "utf-8")
    receiver = _child("_stream_recv")
    try:
        addr = json.loads(receiver.stdout.readline())["addr"]
        subprocess.run([sys.executable, __file__, "_stream_send", str(listing), addr],
                       check=True, timeout=600, cwd=C.REPO, capture_output=True)
        r = json.loads(receiver.stdout.readline())
    finally:
        receiver.wait(timeout=60)
    expected = sum(p.stat().st_size for p in files)
    if r["bytes"] != expected:
        raise RuntimeError(f"libp2p stream received {r['bytes']} bytes, expected {expected}")
    return r["seconds"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bitswap_fetch(addr: str, root: str, dest: Path, profile: Path | None) -> dict:
    args = ["_fetch", str(dest), root, addr] + ([str(profile)] if profile else [])
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         timeout=1200, cwd=C.REPO)
    if out.returncode != 0:
        raise RuntimeError(f"fetcher failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def verify_received(dest: Path, root: str, expected: dict[str, str]) -> None:
    """Every file read back from the fetcher's store matches the original (sha256)."""
    from crypto import cid_from_str
    from node.blockstore import BlockStore
    from protocol import unixfs
    store = BlockStore(dest)
    try:
        files = unixfs.list_directory(cid_from_str(root), store.get)
        got = {}
        for path, cid in files.items():
            h = hashlib.sha256()
            for chunk in unixfs.iter_file_chunks(cid, store.get):
                h.update(chunk)
            got[path] = h.hexdigest()
    finally:
        store.close()
    if got != expected:
        bad = sorted(set(got.items()) ^ set(expected.items()))[:3]
        raise RuntimeError(f"received files differ from the originals: {bad}")


def publish(tmp: Path, name: str, src: list[Path]) -> str:
    from node import library
    from node.home import init_home
    home = init_home(tmp / f"home-{name}", "Bench Provider", "school")
    try:
        return library.publish(home, src, {"title": name})["content_cid"]
    finally:
        home.close()


def measure(tmp: Path, name: str, src: list[Path], files: list[Path], expected: dict[str, str],
            reps: int, profile: bool) -> tuple[list[float], list[float], list[float], int]:
    root = publish(tmp, name, src)
    total = sum(p.stat().st_size for p in files)
    for p in files:  # page cache, like the other benches
        p.read_bytes()
    raws, streams, bits = [], [], []
    provider = _child("_provide", str(tmp / f"home-{name}"), stdin=subprocess.PIPE)
    try:
        addr = json.loads(provider.stdout.readline())["addr"]
        for i in range(reps):
            C.settle()
            raws.append(raw_tcp(files, tmp))
            C.settle()
            streams.append(libp2p_stream(files, tmp))
            dest = tmp / f"fetch-{name}-{i}"
            C.settle()
            prof = tmp / f"profile-{name}.out" if profile and i == 0 else None
            cpu0 = cpu_seconds(provider.pid)
            r = bitswap_fetch(addr, root, dest, prof)
            r["provider_cpu"] = cpu_seconds(provider.pid) - cpu0
            verify_received(dest, root, expected)
            if r["bytes"] < total:
                raise RuntimeError(f"fetched {r['bytes']} bytes < {total} of file data")
            bits.append(r["seconds"])
            print(f"   run {i + 1}: raw TCP {total / MiB / raws[-1]:.1f} MiB/s, py-libp2p "
                  f"stream {total / MiB / streams[-1]:.1f} MiB/s, bitswap "
                  f"{total / MiB / r['seconds']:.1f} MiB/s ({r['blocks']} blocks, "
                  f"{r['wants']} wants, {r['duplicates']} duplicates; CPU: fetcher "
                  f"{100 * r['cpu'] / r['seconds']:.0f}%, provider "
                  f"{100 * r['provider_cpu'] / r['seconds']:.0f}%)", flush=True)
            if prof:
                import pstats
                pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
            C.rmtree(dest)
    finally:
        provider.stdin.close()
        provider.wait(timeout=60)
    return raws, streams, bits, total


def syncthing_on(src: Path, tmp: Path, name: str, repeats: int) -> tuple[float, float] | None:
    """Median (transfer_s, scan+transfer s) of Syncthing copying ``src``; None if unavailable."""
    from _syncthing import ensure_syncthing, syncthing_transfer
    try:
        ensure_syncthing()
    except RuntimeError as exc:
        print(f"   Syncthing not measured: {exc}")
        return None
    trs, tots = [], []
    for i in range(repeats):
        work = tmp / f"syncthing-{name}-{i}"
        work.mkdir()
        try:
            r = syncthing_transfer(src, work)
            trs.append(r.transfer_s)
            tots.append(r.total_s)
        finally:
            C.rmtree(work)
    return C.median(trs), C.median(tots)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 MiB and 200 files")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--profile", action="store_true", help="cProfile the first fetch of each set")
    args = ap.parse_args()
    size = (32 if args.quick else 256) * MiB
    n_small, per_folder = (200, 50) if args.quick else (2000, 500)

    C.header("bitswap: fetch_dag between two processes on loopback", args.quick)
    tmp = C.make_tmpdir("bitswap")
    print(f"   scratch folder: {tmp}")
    try:
        from publish_small import make_tree
        big = tmp / "big" / "big.bin"
        big.parent.mkdir()
        with open(big, "wb") as f:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))
        small_root = tmp / "small"
        small = make_tree(small_root, n_small, per_folder)

        def digests(root: Path, files: list[Path]) -> dict[str, str]:
            return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in files}

        results = {}
        for name, src, files, exp in (
                ("large", [big], [big], digests(big.parent, [big])),
                ("small", [small_root], small, digests(small_root, small))):
            print(f"-- {name}: {len(files)} file(s), "
                  f"{sum(p.stat().st_size for p in files) / MiB:.1f} MiB", flush=True)
            raws, streams, bits, total = measure(tmp, name, src, files, exp, args.repeats,
                                                 args.profile)
            mb = total / MiB
            raw_m, st_m, bit_m = C.median(raws), C.median(streams), C.median(bits)
            results[name] = (mb, raw_m, bit_m, st_m)
            print(C.fmt_table(["measurement", "median s", "MiB/s", "vs raw TCP", "runs (s)"], [
                ["raw trio TCP (ceiling)", raw_m, mb / raw_m, 1.0,
                 " ".join(f"{t:.2f}" for t in raws)],
                ["py-libp2p stream (context)", st_m, mb / st_m, raw_m / st_m,
                 " ".join(f"{t:.2f}" for t in streams)],
                ["bitswap fetch_dag", bit_m, mb / bit_m, raw_m / bit_m,
                 " ".join(f"{t:.2f}" for t in bits)],
            ]))
            print(f"   bitswap / py-libp2p stream = {st_m / bit_m:.2f}", flush=True)
            sync = syncthing_on(src[0] if name == "small" else big.parent, tmp, name,
                                args.repeats)
            if sync is not None:
                tr, tot = sync
                print(C.fmt_table(["Syncthing 1.19 (same files)", "median s", "MiB/s",
                                   "bitswap / Syncthing"], [
                    ["transfer only (A already scanned)", tr, mb / tr, tr / bit_m],
                    ["scan + transfer", tot, mb / tot, tot / bit_m]]), flush=True)
                results[name] = (*results[name], tr, tot)
        large_mib_s = results["large"][0] / results["large"][2]
        small_mib_s = results["small"][0] / results["small"][2]
        print()
        print(f"target met: {C.yesno(large_mib_s >= TARGET_LARGE)}  ({size // MiB} MiB file: "
              f"{large_mib_s:.1f} MiB/s >= {TARGET_LARGE:g})")
        print(f"target met: {C.yesno(small_mib_s >= TARGET_SMALL)}  ({n_small} small files: "
              f"{small_mib_s:.1f} MiB/s >= {TARGET_SMALL:g})")
        C.summary("bitswap", {
            "quick": args.quick, "large_mib": size // MiB, "small_files": n_small,
            "large_mib_s": round(large_mib_s, 1), "small_mib_s": round(small_mib_s, 1),
            "large_raw_mib_s": round(results["large"][0] / results["large"][1], 1),
            "small_raw_mib_s": round(results["small"][0] / results["small"][1], 1),
            "large_stream_mib_s": round(results["large"][0] / results["large"][3], 1),
            "small_stream_mib_s": round(results["small"][0] / results["small"][3], 1),
            **{f"{k}_syncthing_{w}_mib_s": round(v[0] / v[i], 1)
               for k, v in results.items() if len(v) == 6
               for w, i in (("transfer", 4), ("total", 5))},
            "targets": {f"{size // MiB} MiB >= {TARGET_LARGE:g} MiB/s":
                        large_mib_s >= TARGET_LARGE,
                        f"{n_small} files >= {TARGET_SMALL:g} MiB/s": small_mib_s >= TARGET_SMALL},
        })
    finally:
        C.done_with(tmp, args.keep)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        role, rest = sys.argv[1], sys.argv[2:]
        if role == "_provide":
            child_provide(rest[0], rest[1] if len(rest) > 1 else None)
        elif role == "_fetch":
            child_fetch(rest[0], rest[1], rest[2], rest[3] if len(rest) > 3 else None)
        elif role == "_raw_send":
            child_raw_send(*rest)
        elif role == "_raw_recv":
            child_raw_recv(*rest)
        elif role == "_stream_recv":
            child_stream_recv()
        elif role == "_stream_send":
            child_stream_send(*rest)
        else:
            sys.exit(f"unknown role {role}")
    else:
        main()
