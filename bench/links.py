"""Rural links: schoolmesh, rsync and Syncthing across emulated slow, far, flaky links (root).

    .venv/bin/python bench/links.py [--scenario transfer|outage|idle|community|serve ...]
        [--profile NAME ...] [--case 20mib|files ...] [--tool NAME ...] [--runs 3] [--quick]
        [--mib 20] [--files 200] [--outage-mode uninterrupted|blackhole|reset ...]
        [--idle-seconds 1800] [--serve-profile 10mbit-60ms] [--serve-villages 30]
        [--serve-mib 4] [--json FILE] [--keep]

Every run gets a fresh set of network namespaces joined by bench/linkemu (packet-level rate and
delay; no netem here).  Node 0 has the data, node 1 fetches it; every process, and every
command or REST call that talks to one, runs inside its node's namespace.

Scenarios (``--scenario``, repeatable; default: all five):

* transfer: each profile (rate each way, RTT: 10mbit-60ms, 2mbit-150ms, 512kbit-300ms,
  256kbit-600ms) x each case (``20mib``: one --mib MiB file of random bytes; ``files``: --files
  files of 4-64 KiB, seeded) x each tool, --runs times; medians of the finished runs.
  - schoolmesh: a school daemon publishes (not timed); a village daemon follows it, connects,
    and once the catalog has crossed, ``schoolmesh get RID -o DIR --json`` in the village's
    namespace is timed from start to exit.  Default settings, no ``limits set``.
  - rsync: ``rsync --daemon`` at node 0, ``rsync -a --partial rsync://…`` at node 1, timed.
  - Syncthing (Debian's package): send-only A, receive-only B, configured as bench/_syncthing.py
    (discovery, relays, NAT off) on the link's addresses; transfer only: from un-pausing B's
    folder (A has scanned) until B is idle and complete, REST polled every second.
  A run that makes no progress for 120 s, or takes 3x what the rate implies (+60 s), "did not
  finish" (in the outage scenario both limits grow by the outages' 60 s).
* outage: the --outage-profile link (2mbit-150ms), the 20mib case, each tool: uninterrupted;
  with two 30 s blackholes (every packet dropped, sockets left open) at 20 % of the ideal time
  and 30 s + 40 % later; and the same two outages each ending with every TCP connection across
  the link reset (a modem that re-attached).  rsync is re-run (``--partial``) after a failure.
  schoolmesh also reports blocks received twice (Bitswap counters in ``status --json``, minus
  the blocks the village stored).
* idle: a connected pair (a village following a school) for --idle-seconds after 30 s of
  settling: wire bytes per node (sent + received) extrapolated to a day, connections, and
  ``status --json`` ``traffic`` per protocol; two idle Syncthing instances alongside.
* community: a demonstration school and 4 villages joined with invite codes, idle as above.
* serve: a demonstration school serves --serve-villages (30) villages at once, each behind its
  own --serve-profile link, the school's uplink shared by all: a --serve-mib (4) MiB file it
  published, ``schoolmesh get`` in every village at the same moment (bench/_links_serve.py):
  each village's time, fairness (fastest / slowest), aggregate goodput, the school's peak RSS.

Figures: seconds; goodput = payload bits / seconds / link rate; wire/payload = bytes that
crossed the link (IPv4 packets) / payload, the data direction and both; receiver and sender CPU
s/MiB (daemons: utime+stime from /proc/PID/stat over the timed window; rsync: rusage).  Prints
one table per scenario and writes every run to a JSON file.  No targets: figures for issue 12.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from _links_idle import idle_community, idle_pair, idle_syncthing  # noqa: E402
from _links_serve import print_serve, serve_villages  # noqa: E402
from _links_tools import RUNNERS, BenchError, Outages, payload_of  # noqa: E402
from _syncthing import _make_small  # noqa: E402
from linkemu import Link, available  # noqa: E402

MiB = C.MiB
PROFILES = {  # name: (bit/s, RTT seconds)
    "10mbit-60ms": (10e6, 0.060),
    "2mbit-150ms": (2e6, 0.150),
    "512kbit-300ms": (512e3, 0.300),
    "256kbit-600ms": (256e3, 0.600),
}
SCENARIOS = ("transfer", "outage", "idle", "community", "serve")
CASES = ("20mib", "files")
OUTAGE_S = 30.0
OUTAGE_MODES = {"uninterrupted": None, "2 x 30 s blackhole": False,  # reset after each outage?
                "2 x 30 s outage + reset": True}
VILLAGES = 4
NUMERIC = ("seconds", "goodput", "wire_down", "wire_total", "rx_cpu_per_mib", "tx_cpu_per_mib",
           "duplicate_blocks")


def make_data(root: Path, case: str, mib: int, files: int) -> Path:
    if case == "20mib":
        src = root / "big" / "lesson.bin"
        src.parent.mkdir(parents=True)
        src.write_bytes(os.urandom(mib * MiB))
        return src
    src = root / "small" / "pages"
    _make_small(src, files, files)
    return src


def combine(runs: list[dict]) -> dict:
    """One row from several runs of the same thing: medians of the finished runs."""
    done = [r for r in runs if r["finished"]]
    row = {**runs[0], "runs": len(runs), "finished_runs": len(done), "each": runs,
           "finished": bool(done), "note": "; ".join(r["note"] for r in runs if r["note"])}
    for key in NUMERIC:
        vals = [r[key] for r in done if r.get(key) is not None]
        row[key] = round(statistics.median(vals), 3) if vals else None
    if not done:
        row["wire_bytes"] = [int(statistics.median(r["wire_bytes"][i] for r in runs))
                             for i in (0, 1)]
    return row


def one_run(tool: str, rate: float, rtt: float, work: Path, src: Path,
            outages: Outages | None = None) -> dict:
    work.mkdir(parents=True)
    with Link(rate=rate, delay=rtt / 2) as link:
        return RUNNERS[tool](link, work, src, rate, outages)


def dash(x):
    return "-" if x is None else x


def seconds_cell(r: dict) -> object:
    if not r["finished"]:
        return "did not finish"
    s = r["seconds"]
    return s if r["runs"] == 1 else f"{s} ({r['finished_runs']}/{r['runs']})"


def scenario_transfer(args, tmp: Path, data: dict[str, Path]) -> list[dict]:
    results = []
    for name in args.profile:
        rate, rtt = PROFILES[name]
        for case in args.case:
            for tool in args.tool:
                runs = []
                for i in range(args.runs):
                    r = one_run(tool, rate, rtt, tmp / f"{name}-{case}-{tool}-{i}", data[case])
                    runs.append(r)
                    print(f"   {name} {case} {tool} #{i + 1}: " +
                          (f"{r['seconds']} s" if r["finished"] else r["note"]), flush=True)
                results.append({"profile": name, "case": case, **combine(runs)})
    print_transfer(results)
    return results


def print_transfer(results: list[dict]) -> None:
    print(C.fmt_table(
        ["profile", "case", "tool", "seconds", "goodput/rate", "wire/payload (down)",
         "wire/payload (total)", "wire MB down/up", "rx CPU s/MiB", "tx CPU s/MiB"],
        [[r["profile"], r["case"], r["tool"], seconds_cell(r), dash(r["goodput"]),
          dash(r["wire_down"]), dash(r["wire_total"]),
          "/".join(f"{b / 1e6:.2f}" for b in r["wire_bytes"]),
          dash(r["rx_cpu_per_mib"]), dash(r["tx_cpu_per_mib"])] for r in results]))


def outage_plan(payload: int, rate: float, reset: bool | None) -> Outages | None:
    if reset is None:
        return None
    ideal = payload * 8 / rate
    first = 0.2 * ideal
    return Outages([first, first + OUTAGE_S + 0.4 * ideal], OUTAGE_S, reset)


def scenario_outage(args, tmp: Path, data: dict[str, Path]) -> list[dict]:
    name = args.outage_profile
    rate, rtt = PROFILES[name]
    src = data["20mib"]
    modes = {mode: reset for mode, reset in OUTAGE_MODES.items()
             if mode.split()[-1] in args.outage_mode}
    results = []
    for tool in args.tool:
        for mode, reset in modes.items():
            runs = []
            for i in range(args.runs):
                slug = mode.split()[-1]
                r = one_run(tool, rate, rtt, tmp / f"outage-{tool}-{slug}-{i}", src,
                            outage_plan(payload_of(src), rate, reset))
                runs.append(r)
                print(f"   {name} {tool} {mode} #{i + 1}: " +
                      (f"{r['seconds']} s" if r["finished"] else r["note"]), flush=True)
            results.append({"profile": name, "mode": mode, **combine(runs)})
    print_outage(results)
    return results


def print_outage(results: list[dict]) -> None:
    """The outage table; adds each row's extra seconds over the same tool uninterrupted."""
    clean = {r["tool"]: r["seconds"] for r in results if r["mode"] == "uninterrupted"}
    for r in results:
        base = clean.get(r["tool"])
        r["vs_uninterrupted"] = (round(r["seconds"] - base, 1)
                                 if r["finished"] and base else None)
    print(C.fmt_table(
        ["tool", "link", "seconds", "extra s vs uninterrupted", "goodput/rate",
         "wire/payload (total)", "wire MB down/up", "outages", "dup blocks", "rx CPU s/MiB"],
        [[r["tool"], r["mode"], seconds_cell(r), dash(r["vs_uninterrupted"]),
          dash(r["goodput"]), dash(r["wire_total"]),
          "/".join(f"{b / 1e6:.2f}" for b in r["wire_bytes"]),
          r.get("outages_applied", 0), dash(r.get("duplicate_blocks")),
          dash(r["rx_cpu_per_mib"])] for r in results]))


def print_idle(rows: list[dict]) -> None:
    print(C.fmt_table(
        ["node", "role", "idle s", "wire KB sent/recv", "MB/day (sent+recv)", "peers",
         "TCP conns"],
        [[r["node"], r["role"], r["seconds"],
          f"{r['wire_sent'] / 1e3:.1f}/{r['wire_received'] / 1e3:.1f}", r["mb_per_day"],
          r["peers"], r["tcp"]] for r in rows]))
    protos = sorted({p for r in rows for p in r["traffic"]},
                    key=lambda p: -sum(r["traffic"].get(p, 0) for r in rows))
    if protos:
        print("   status --json traffic, kB/day per node (sent + received; 'total' excludes "
              "TCP/IP headers):")
        print(C.fmt_table(["protocol", *[r["node"] for r in rows if r["traffic"]]],
                          [[p, *[r["traffic_kb_per_day"].get(p, 0.0) for r in rows
                                 if r["traffic"]]] for p in protos]))


def scenario_idle(args, tmp: Path) -> list[dict]:
    rate, rtt = PROFILES[args.idle_profile]
    box: dict[str, object] = {}

    def st() -> None:            # Syncthing on its own link, at the same time
        try:
            with Link(rate=rate, delay=rtt / 2) as link:
                box["st"] = idle_syncthing(link, tmp / "idle-syncthing", args.idle_seconds)
        except BaseException as e:   # reported after the schoolmesh pair
            box["st_error"] = e
    (tmp / "idle-syncthing").mkdir()
    thread = threading.Thread(target=st, daemon=True)
    if "syncthing" in args.tool:
        thread.start()
    (tmp / "idle-pair").mkdir()
    with Link(rate=rate, delay=rtt / 2) as link:
        rows = idle_pair(link, tmp / "idle-pair", args.idle_seconds)
    if thread.ident is not None:          # started
        thread.join()
        if "st_error" in box:
            print(f"   syncthing idle pair failed: {box['st_error']}")
        rows += box.get("st", [])
    print_idle(rows)
    return rows


def scenario_community(args, tmp: Path) -> list[dict]:
    rate, rtt = PROFILES[args.idle_profile]
    (tmp / "community").mkdir()
    with Link(rate=rate, delay=rtt / 2, nodes=1 + VILLAGES) as link:
        rows = idle_community(link, tmp / "community", args.idle_seconds)
    print_idle(rows)
    return rows


def scenario_serve(args, tmp: Path) -> dict:
    rate, rtt = PROFILES[args.serve_profile]
    (tmp / "serve").mkdir()
    with Link(rate=rate, delay=rtt / 2, nodes=1 + args.serve_villages, wan=True) as link:
        r = serve_villages(link, tmp / "serve", args.serve_mib, rate)
    r["profile"] = args.serve_profile
    print_serve(r, args.serve_profile)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", choices=SCENARIOS,
                    help="what to run (repeatable; default: all)")
    ap.add_argument("--profile", action="append", choices=list(PROFILES),
                    help="a link profile for the transfer scenario (repeatable; default: all)")
    ap.add_argument("--case", action="append", choices=CASES,
                    help="what the transfer scenario moves (repeatable; default: both)")
    ap.add_argument("--tool", action="append", choices=list(RUNNERS),
                    help="schoolmesh, rsync, syncthing (repeatable; default: all three)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each; medians (default 3)")
    ap.add_argument("--mib", type=int, default=20, help="size of the 20mib case's file (MiB)")
    ap.add_argument("--files", type=int, default=200, help="files in the 'files' case")
    ap.add_argument("--quick", action="store_true", help="2 MiB, 20 files, one run")
    ap.add_argument("--outage-profile", default="2mbit-150ms", choices=list(PROFILES))
    ap.add_argument("--outage-mode", action="append",
                    choices=[m.split()[-1] for m in OUTAGE_MODES],
                    help="uninterrupted, blackhole, reset (repeatable; default: all three)")
    ap.add_argument("--idle-profile", default="2mbit-150ms", choices=list(PROFILES))
    ap.add_argument("--idle-seconds", type=float, default=1800.0,
                    help="how long the idle and community scenarios count bytes (default: one "
                    "whole feed-sync period, so a day's rounds are counted in proportion)")
    ap.add_argument("--serve-profile", default="10mbit-60ms", choices=list(PROFILES),
                    help="the serve scenario's link (every node's up- and downlink)")
    ap.add_argument("--serve-villages", type=int, default=30,
                    help="villages fetching at once in the serve scenario (default 30)")
    ap.add_argument("--serve-mib", type=float, default=4.0,
                    help="size of the file the serve scenario's villages fetch (MiB)")
    ap.add_argument("--json", type=Path, help="results file (default links-<time>.json here)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    ok, why = available()
    if not ok:
        sys.exit(f"error: cannot emulate links here: {why}")
    if args.quick:
        args.mib, args.files, args.runs = 2, 20, 1
    args.scenario = args.scenario or list(SCENARIOS)
    args.profile = args.profile or list(PROFILES)
    args.case = args.case or list(CASES)
    args.tool = args.tool or list(RUNNERS)
    args.outage_mode = args.outage_mode or [m.split()[-1] for m in OUTAGE_MODES]
    out = args.json or Path(f"links-{time.strftime('%Y%m%d-%H%M%S')}.json")
    C.header(f"rural links: {', '.join(args.scenario)}; {args.mib} MiB / {args.files} files; "
             f"{args.runs} run(s) each", args.quick)
    tmp = C.make_tmpdir("links")
    report: dict = {"args": {k: str(v) if isinstance(v, Path) else v
                             for k, v in vars(args).items()}}
    try:
        need = set(args.case if "transfer" in args.scenario else ()) | (
            {"20mib"} if "outage" in args.scenario else set())
        data = {case: make_data(tmp / "data", case, args.mib, args.files) for case in need}
        for scenario in args.scenario:
            print(f"-- {scenario}", flush=True)
            if scenario == "transfer":
                report[scenario] = scenario_transfer(args, tmp, data)
            elif scenario == "outage":
                report[scenario] = scenario_outage(args, tmp, data)
            elif scenario == "idle":
                report[scenario] = scenario_idle(args, tmp)
            elif scenario == "community":
                report[scenario] = scenario_community(args, tmp)
            else:
                report[scenario] = scenario_serve(args, tmp)
            out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        out.write_text(json.dumps({**report, "error": str(e)}, indent=1, ensure_ascii=False))
        raise SystemExit(1)
    finally:
        C.done_with(tmp, args.keep)
    for r in report.get("transfer", []) + report.get("outage", []):
        if r["note"]:
            print(f"   {r['profile']} {r.get('case') or r.get('mode')} {r['tool']}: {r['note']}")
    print(f"   results: {out}")
    C.summary("links", {k: v for k, v in report.items() if k != "args"})


if __name__ == "__main__":
    main()
