"""Shared helpers for the benchmark scripts (not a benchmark itself).

The scripts print figures and ratios against a baseline measured in the same run; they never
fail on timing.  Each one ends with a line ``SUMMARY {json}`` that bench/run_all.py collects.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def cli_path() -> str:
    """The schoolmesh entry point of the venv running this script (else the one on PATH)."""
    here = Path(sys.executable).parent / "schoolmesh"
    if here.exists():
        return str(here)
    found = shutil.which("schoolmesh")
    if not found:
        sys.exit("schoolmesh CLI not found: run 'make venv' and use .venv/bin/python")
    return found


def make_tmpdir(tag: str) -> Path:
    """A scratch folder on the same filesystem as the repository.

    $BENCH_TMPDIR wins; otherwise the folder holding the repository (e.g. /work/bench-tmp-*),
    falling back to the system temp folder if that is not writable.
    """
    base = os.environ.get("BENCH_TMPDIR")
    if not base:
        parent = REPO.parent
        base = str(parent) if os.access(parent, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=f"bench-tmp-{tag}-", dir=base))


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def done_with(tmp: Path, keep: bool) -> None:
    """End of a benchmark: keep the scratch folder if asked (and say where), else delete it."""
    if keep:
        print(f"kept {tmp}")
    else:
        rmtree(tmp)


def settle() -> None:
    """Flush dirty pages (os.sync) so one measurement does not pay for another's writeback.

    Matters here because the block store makes a publish durable with syncfs(2), which would
    otherwise also write back whatever the benchmark itself just created.
    """
    os.sync()
    time.sleep(0.2)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile (p in 0..100)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_cli(home: Path, *args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``schoolmesh --home HOME ARGS`` and return (wall seconds, completed process)."""
    cmd = [cli_path(), "--home", str(home), *args]
    env = {**os.environ, "SCHOOLMESH_HOME": str(home)}
    env.pop("SCHOOLMESH_PASSPHRASE", None)
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({cp.returncode}):\n{cp.stderr}")
    return dt, cp


def new_home(path: Path, name: str = "Bench School") -> None:
    """A fresh home, created in-process (the CLI's init does exactly this)."""
    from node.home import init_home
    init_home(path, name, "school").close()


def cli_fixed_cost(home: Path, repeats: int = 3) -> float:
    """Median wall time of a trivial CLI command on ``home`` (interpreter start, imports,
    opening the home): the part of every CLI timing that does not depend on the data."""
    ts = [run_cli(home, "search", "zzzznothingmatches")[0] for _ in range(repeats)]
    return median(ts)


def fmt_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if n and _numeric(c) else c.ljust(w)
                               for c, w in zip(r, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(c: object) -> str:
    if isinstance(c, float):
        if c != c:
            return "n/a"
        if abs(c) >= 100:
            return f"{c:,.1f}"
        if abs(c) >= 1:
            return f"{c:.2f}"
        return f"{c:.3f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c)


def _numeric(s: str) -> bool:
    try:
        float(s.replace(",", "").rstrip("x%"))
        return True
    except ValueError:
        return False


def yesno(ok: bool) -> str:
    return "yes" if ok else "no"


def header(title: str, quick: bool) -> None:
    print(f"== {title}{'  (--quick: reduced sizes, figures not comparable to targets)' if quick else ''}")
    print(f"   python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"cli {cli_path()}", flush=True)


def summary(name: str, data: dict) -> None:
    """The machine-readable last line collected by run_all.py."""
    print("SUMMARY " + json.dumps({"bench": name, **data}, ensure_ascii=False), flush=True)
