"""Tables of several bench/links.py result files as one: medians over every run of each row.

    .venv/bin/python bench/links_merge.py RESULTS.json [RESULTS.json ...] [--json OUT]

Runs of the slow profiles take minutes each and hardly use the CPU, so they can run as
separate ``bench/links.py --runs 1`` processes at once (each on namespaces of its own); this
prints the transfer, outage, idle and community tables of all of them together, the medians
taken over the runs of every (profile, case or outage mode, tool), exactly as ``--runs N`` in
one process would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from links import combine, print_idle, print_outage, print_transfer  # noqa: E402


def merge(reports: list[dict]) -> dict:
    out: dict = {}
    for scenario, key in (("transfer", "case"), ("outage", "mode")):
        groups: dict[tuple, list[dict]] = {}
        for rep in reports:
            for row in rep.get(scenario, []):
                groups.setdefault((row["profile"], row[key], row["tool"]), []).extend(
                    row["each"])
        if groups:
            out[scenario] = [{"profile": p, key: k, **combine(runs)}
                             for (p, k, _tool), runs in groups.items()]
    for scenario in ("idle", "community"):
        rows = [r for rep in reports for r in rep.get(scenario, [])]
        if rows:
            out[scenario] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="write the merged rows here")
    args = ap.parse_args()
    try:
        reports = [json.loads(p.read_text()) for p in args.results]
    except (OSError, ValueError) as exc:
        sys.exit(f"error: cannot read the results: {exc}")
    merged = merge(reports)
    if "transfer" in merged:
        print("-- transfer (medians of the finished runs)")
        print_transfer(sorted(merged["transfer"], key=lambda r: (r["profile"], r["case"])))
    if "outage" in merged:
        print("-- outage")
        print_outage(merged["outage"])
    for scenario in ("idle", "community"):
        if scenario in merged:
            print(f"-- {scenario}")
            print_idle(merged[scenario])
    if args.json:
        args.json.write_text(json.dumps(merged, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
