"""Publish a folder of many small files through the real CLI, against writing them one by one.

    .venv/bin/python bench/publish_small.py [--quick] [--repeats N] [--keep]

2,000 files of seeded-random sizes 4-64 KiB (random bytes), in 4 subfolders of 500 (a folder
may hold at most 1,000 entries).
Baseline: read each file and write it to another folder, fsync each file as it is written (and
each folder at the end) — the naive durable copy.
Measured: ``schoolmesh publish SRC --title x`` as a subprocess into a fresh home, wall clock.
Target: publish >= 20 MiB/s.  Every timed step starts after os.sync() with the source files in
the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

MiB = C.MiB
TARGET_MIB_S = 20.0
SEED = 20240601


def make_tree(root: Path, n_files: int, per_folder: int) -> list[Path]:
    rng = random.Random(SEED)
    files = []
    for i in range(n_files):
        d = root / f"unit{i // per_folder:02d}"
        if i % per_folder == 0:
            d.mkdir(parents=True)
        p = d / f"page{i % per_folder:04d}.bin"
        p.write_bytes(rng.randbytes(rng.randint(4 * 1024, 64 * 1024)))
        files.append(p)
    return files


def copy_fsync_each(src_root: Path, files: list[Path], dst_root: Path) -> float:
    t0 = time.perf_counter()
    dirs = set()
    for p in files:
        rel = p.relative_to(src_root)
        d = dst_root / rel.parent
        if d not in dirs:
            d.mkdir(parents=True)
            dirs.add(d)
        data = p.read_bytes()
        fd = os.open(d / rel.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    for d in [*dirs, dst_root]:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 files instead of 2,000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    n_files = 200 if args.quick else 2000
    per_folder = 50 if args.quick else 500
    reps = args.repeats

    C.header("publish_small: many small files through `schoolmesh publish`", args.quick)
    tmp = C.make_tmpdir("publish-small")
    print(f"   scratch folder: {tmp}")
    try:
        src = tmp / "src"
        files = make_tree(src, n_files, per_folder)
        total = sum(p.stat().st_size for p in files)
        mb = total / MiB
        C.settle()
        for p in files:
            p.read_bytes()
        print(f"   {n_files:,} files in {n_files // per_folder} folders of {per_folder}, "
              f"{mb:.1f} MiB total (mean {total / n_files / 1024:.1f} KiB), seed {SEED}; "
              "sources in page cache, os.sync() before each timed step", flush=True)

        base = []
        for i in range(reps):
            dst = tmp / f"copy{i}"
            C.settle()
            base.append(copy_fsync_each(src, files, dst))
            C.rmtree(dst)
        C.settle()

        fixed_home = tmp / "home-fixed"
        C.new_home(fixed_home)
        fixed = C.cli_fixed_cost(fixed_home)

        pubs = []
        for i in range(reps):
            home = tmp / f"home{i}"
            C.new_home(home)
            C.settle()
            dt, cp = C.run_cli(home, "publish", str(src), "--title", "x", "--json")
            out = json.loads(cp.stdout)
            assert len(out["files"]) == n_files, len(out["files"])
            pubs.append(dt)
            C.rmtree(home)
            C.settle()

        base_m, pub_m = C.median(base), C.median(pubs)
        pub_rate = mb / pub_m
        ok = pub_rate >= TARGET_MIB_S
        print()
        print(f"{n_files:,} files / {mb:.1f} MiB, median of {reps} runs")
        print(C.fmt_table(["measurement", "median s", "MiB/s", "files/s", "vs baseline",
                           "runs (s)"], [
            ["write+fsync each (baseline)", base_m, mb / base_m, n_files / base_m, 1.0,
             " ".join(f"{t:.2f}" for t in base)],
            ["CLI fixed cost (context)", fixed, float("nan"), float("nan"), float("nan"),
             "search, no match"],
            ["schoolmesh publish", pub_m, pub_rate, n_files / pub_m, base_m / pub_m,
             " ".join(f"{t:.2f}" for t in pubs)],
            ["publish minus fixed cost", pub_m - fixed, mb / (pub_m - fixed),
             n_files / (pub_m - fixed), base_m / (pub_m - fixed), "(informational)"],
        ]))
        print(f"publish/baseline throughput ratio = {base_m / pub_m:.2f}")
        print(f"target met: {C.yesno(ok)}  (publish {pub_rate:.1f} MiB/s >= {TARGET_MIB_S:.0f} MiB/s)")
        C.summary("publish_small", {
            "quick": args.quick, "files": n_files, "mib": round(mb, 1),
            "baseline_mib_s": round(mb / base_m, 1), "publish_mib_s": round(pub_rate, 1),
            "ratio": round(base_m / pub_m, 2), "cli_fixed_s": round(fixed, 3),
            "targets": {"publish >= 20 MiB/s": ok},
        })
    finally:
        C.done_with(tmp, args.keep)


if __name__ == "__main__":
    main()
