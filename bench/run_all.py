"""Run every benchmark in sequence (one at a time) and print a combined summary.

    .venv/bin/python bench/run_all.py [--quick]

Each benchmark's own output is shown as it runs; the summary at the end is built from the
``SUMMARY {json}`` line each one prints last.  Always exits 0 unless a benchmark crashed
(timing targets are reported, not enforced).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["publish_large.py", "publish_small.py", "search.py", "extract_search.py",
           "bundle.py", "network.py", "bitswap.py", "web.py", "community.py", "storage.py",
           "courses.py", "report.py", "ai_overhead.py"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    args = ap.parse_args()
    results: list[dict] = []
    crashed: list[str] = []
    t_all = time.perf_counter()
    for name in BENCHES:
        cmd = [sys.executable, str(HERE / name)] + (["--quick"] if args.quick else [])
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        summary = None
        assert p.stdout is not None
        for line in p.stdout:
            if line.startswith("SUMMARY "):
                summary = json.loads(line[len("SUMMARY "):])
            else:
                print(line, end="", flush=True)
        rc = p.wait()
        dt = time.perf_counter() - t0
        print(f"-- {name} finished in {dt:.0f} s (exit {rc})\n", flush=True)
        if rc != 0 or summary is None:
            crashed.append(name)
        else:
            summary["wall_s"] = round(dt, 1)
            results.append(summary)

    print("=" * 78)
    print(f"SUMMARY{' (--quick: reduced sizes)' if args.quick else ''}, "
          f"total {time.perf_counter() - t_all:.0f} s")
    by = {r["bench"]: r for r in results}
    if "publish_large" in by:
        r = by["publish_large"]
        print(f"publish_large  {r['size_mib']} MiB: sha256 {r['sha256_mib_s']} MiB/s, "
              f"publish {r['publish_mib_s']} MiB/s, ratio {r['ratio']} "
              f"(copy+fsync {r['copy_fsync_mib_s']} MiB/s); "
              f"{r['rss_file_mib']} MiB publish peak RSS {r['peak_rss_mb']} MB")
    if "publish_small" in by:
        r = by["publish_small"]
        print(f"publish_small  {r['files']} files / {r['mib']} MiB: write+fsync each "
              f"{r['baseline_mib_s']} MiB/s, publish {r['publish_mib_s']} MiB/s, "
              f"ratio {r['ratio']}")
    if "search" in by:
        r = by["search"]
        print(f"search         {r['resources']:,} resources (built in {r['build_s']} s), "
              f"{r['queries']} queries: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
              f"p99 {r['p99_ms']} ms (SELECT 1 p50 {r['select1_p50_ms']} ms); "
              f"{r['sql_share_pct']}% of query time inside SQLite")
    if "bundle" in by:
        r = by["bundle"]
        print(f"bundle         {r['library_mib']} MiB library: write+fsync {r['baseline_mib_s']} "
              f"MiB/s, export {r['export_mib_s']} MiB/s (ratio {r['export_ratio']}), import "
              f"{r['import_mib_s']} MiB/s (ratio {r['import_ratio']}); peak RSS "
              f"{r['export_rss_mb']} / {r['import_rss_mb']} MB")
    if "extract_search" in by:
        e, s = by["extract_search"]["extract"], by["extract_search"]["search"]
        print(f"extract_search {e['files']} files / {e['mib']} MiB: extract {e['extract_mib_s']} "
              f"MiB/s, {e['extract_files_s']} files/s (peak RSS {e['peak_rss_mib']} MiB), "
              f"indexer {e['indexer_mib_s']} MiB/s; search on {s['resources']:,} resources "
              f"with file text: p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms")
    for name in ("network", "bitswap", "web", "community"):
        if name in by:
            figures = {k: v for k, v in by[name].items() if k not in ("bench", "targets")}
            print(f"{name:<14} " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print()
    for r in results:
        for target, ok in r["targets"].items():
            print(f"target met: {'yes' if ok else 'no'}  {r['bench']}: {target}")
    for name in crashed:
        print(f"CRASHED: {name} (see its output above)")
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
