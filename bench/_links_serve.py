"""bench/links.py, scenario ``serve``: a demonstration school serves N villages at once, each
village behind its own emulated link, the school's own uplink shared by all of them.

Node 0 is the demonstration school (``init --role demonstration``, ``community create``);
nodes 1..N are villages that ``init``, ``start`` and ``community join`` with a one-time invite
code.  The school publishes one file of random bytes; once every village has it in its catalog
(gossip), the N villages run ``schoolmesh get RID -o DIR`` at the same moment (one thread each,
the CLI in the village's namespace).  Every output is compared with the original.

Figures: each village's wall time, the slowest over the fastest (fairness: 1.0 = equal shares),
the aggregate goodput as a fraction of the link rate (the school's uplink carries every byte),
the school's peak RSS (VmHWM) and CPU, the wire bytes over the payload and the Bitswap block
bytes the school sent over the payload (above 1.0: blocks sent twice).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from _links_tools import BenchError, Daemon, cpu_seconds, wait_for
from linkemu import Link

MiB = 1024 * 1024


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmHWM for {pid}")


def _tcp_counters(link: Link, k: int) -> dict[str, int]:
    """Node k's kernel TCP counters (its namespace's /proc/net/snmp, via nstat)."""
    out = link.run(k, ["nstat", "-az", "TcpOutSegs", "TcpRetransSegs"], capture_output=True,
                   text=True, timeout=30)
    return {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines()
            if line.startswith("Tcp")}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def serve_villages(link: Link, tmp: Path, mib: float, rate: float) -> dict:
    """Run the scenario on ``link`` (node 0 the school); the figures as a dict."""
    n = link.nodes - 1
    demo = Daemon(link, 0, tmp / "demo")
    villages = [Daemon(link, k, tmp / f"village{k}") for k in range(1, n + 1)]
    demo.init("--role", "demonstration")
    for v in villages:
        v.init()
    src = tmp / "lesson-video.bin"
    src.write_bytes(hashlib.shake_256(b"serve %d" % n).digest(int(mib * MiB)))
    expected = _sha(src)
    everyone = [demo, *villages]
    try:
        demo.start()
        demo.cli("community", "create", "Serve bench community")
        rid = demo.cli("publish", str(src), "--title", "Serve bench")["resource_id"]
        t0 = time.monotonic()
        for v in villages:
            v.start()
            v.cli("community", "join", demo.cli("community", "invite")["code"])
        print(f"   {n} villages joined in {time.monotonic() - t0:.1f} s", flush=True)
        wait_for(lambda: all(any(r["resource_id"] == rid for r in v.cli("search", "Serve"))
                             for v in villages),
                 "every village has the resource in its catalog", timeout=600)
        time.sleep(5)
        link.zero_counters()
        sent0 = demo.cli("status")["exchange"]["bytes_sent"]
        tcp0 = _tcp_counters(link, 0)
        cpu0 = cpu_seconds(demo.proc.pid)  # type: ignore[union-attr]
        times: dict[str, float] = {}
        errors: dict[str, str] = {}
        barrier = threading.Barrier(n)

        def one(v: Daemon) -> None:
            barrier.wait()
            t = time.monotonic()
            try:
                v.cli("get", rid, "-o", str(tmp / f"out-{v.k}"), timeout=3600)
                times[v.home.name] = time.monotonic() - t
            except BenchError as exc:
                errors[v.home.name] = str(exc)

        threads = [threading.Thread(target=one, args=(v,)) for v in villages]
        t_start = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t_all = time.monotonic() - t_start
        stats = link.stats()
        demo_cpu = cpu_seconds(demo.proc.pid) - cpu0  # type: ignore[union-attr]
        demo_hwm = _vm_hwm(demo.proc.pid)  # type: ignore[union-attr]
        sent = demo.cli("status")["exchange"]["bytes_sent"] - sent0
        tcp = {k: v - tcp0.get(k, 0) for k, v in _tcp_counters(link, 0).items()}
        if errors:
            raise BenchError("serve: " + "; ".join(f"{k}: {e}" for k, e in errors.items()))
        for v in villages:
            got = list((tmp / f"out-{v.k}").rglob("*.bin"))
            if len(got) != 1 or _sha(got[0]) != expected:
                raise BenchError(f"serve: {v.home.name} wrote {got}, not the published file")
        rows = {v.home.name: [t for t in v.cli("transfers") if t["target"] == rid][-1]
                for v in villages}
        first = min(r["created"] for r in rows.values())
        payload = n * mib * MiB
        wire = stats.total()
        per = sorted(times.values())
        return {"villages": n, "mib": mib, "seconds_all": round(t_all, 1),
                "village_s": {k: round(t, 1) for k, t in sorted(times.items(),
                                                                key=lambda kv: kv[1])},
                "village_transfer": {k: {"start_s": round((r["created"] - first) / 1000, 1),
                                         "seconds": round((r["updated"] - r["created"]) / 1000,
                                                          1),
                                         "providers": r["providers_tried"]}
                                     for k, r in rows.items()},
                "fastest_s": round(per[0], 1), "median_s": round(per[len(per) // 2], 1),
                "slowest_s": round(per[-1], 1), "fairness": round(per[0] / per[-1], 3),
                "aggregate_goodput": round(payload * 8 / t_all / rate, 3),
                "wire_over_payload": round(wire / payload, 3),
                "wire_from_school": sum(stats.delivered[0]),
                "wire_to_school": sum(row[0] for row in stats.delivered),
                "wire_between_villages": sum(sum(row[1:]) for row in stats.delivered[1:]),
                "wire_matrix": stats.delivered,
                "bitswap_sent_over_payload": round(sent / payload, 3),
                "demo_tcp_retransmitted": round(tcp.get("TcpRetransSegs", 0)
                                                / max(1, tcp.get("TcpOutSegs", 0)), 3),
                "demo_cpu_s": round(demo_cpu, 1), "demo_peak_rss_mb": round(demo_hwm / 1e6, 1)}
    finally:
        for d in reversed(everyone):
            d.stop()


def print_serve(r: dict, profile: str) -> None:
    print(f"   {r['villages']} villages x {r['mib']:g} MiB over {profile} (the demonstration "
          f"school's uplink shared): all done in {r['seconds_all']} s; aggregate "
          f"{r['aggregate_goodput']} of the link; fastest {r['fastest_s']} s, median "
          f"{r['median_s']} s, slowest {r['slowest_s']} s: fairness {r['fairness']}; wire / "
          f"payload {r['wire_over_payload']} (block bytes the school sent / payload "
          f"{r.get('bitswap_sent_over_payload')}, segments it retransmitted "
          f"{r.get('demo_tcp_retransmitted')}); demonstration school CPU {r['demo_cpu_s']} s, "
          f"peak RSS {r['demo_peak_rss_mb']} MB", flush=True)
    print("   per village (s): " + ", ".join(f"{k} {t}" for k, t in r["village_s"].items()))
