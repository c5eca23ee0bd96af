"""Rural links: one resource fetched across an emulated slow, far link (needs root).

    .venv/bin/python bench/links.py [--profile NAME ...] [--mib 20] [--no-rsync] [--quick] [--keep]

Profiles (rate each way, round-trip time): 10mbit-60ms, 2mbit-150ms, 512kbit-300ms,
256kbit-600ms (all four by default).  For each profile a fresh pair of network namespaces is
joined by bench/linkemu (packet-level rate and delay; no netem here) and:

* schoolmesh: a school daemon (namespace 0) publishes --mib MiB of random bytes (not timed);
  a village daemon (namespace 1) follows it and connects, and once the catalog has crossed
  (not timed) ``schoolmesh get RID -o DIR --json`` runs in the village's namespace, timed
  from start to exit (the CLI's start-up, the fetch, writing the file out).  Default settings
  everywhere: no ``limits set``.  A fetch that makes no progress for STALL_S seconds, or takes
  more than DEADLINE_FACTOR x the time the rate implies, is reported as "did not finish".
* rsync (same run, same file, same link; the daemons are stopped first): ``rsync --daemon`` in
  namespace 0, ``rsync -a rsync://…`` pulling into an empty folder in namespace 1.

Figures per tool: seconds; goodput = payload bits / seconds / link rate; wire overhead = bytes
that crossed the link (IPv4 packets, both directions) / payload, and the data direction alone;
receiver and sender CPU seconds per MiB (schoolmesh: the daemons' utime+stime from
/proc/PID/stat; rsync: the rusage of the processes, the daemon's forked sender through its
parent).  One run per profile, not a median.  No target: figures for issue 12.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from linkemu import Link, LinkStats, available  # noqa: E402

MiB = C.MiB
PROFILES = {  # name: (bit/s, RTT seconds)
    "10mbit-60ms": (10e6, 0.060),
    "2mbit-150ms": (2e6, 0.150),
    "512kbit-300ms": (512e3, 0.300),
    "256kbit-600ms": (256e3, 0.600),
}
PORT = 4004
RSYNC_PORT = 8730
SETUP_TIMEOUT = 90.0       # daemon start, catalog across the link
STALL_S = 120.0            # no new bytes for this long: the fetch did not finish
DEADLINE_FACTOR = 3.0      # ... nor if it takes this many times what the rate implies
POLL_S = 5.0               # transfer progress, read with the CLI in the village's namespace
TICK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK    # utime, stime


def wait_for(check, what: str, timeout: float = SETUP_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise BenchError(f"timed out waiting until {what}")
        time.sleep(0.2)


class Daemon:
    def __init__(self, link: Link, k: int, home: Path) -> None:
        self.link, self.k, self.home = link, k, home
        self.log = home.parent / f"{home.name}.log"
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str, timeout: float = 120) -> dict | list:
        out = self.link.run(self.k, [C.cli_path(), "--home", str(self.home), *args, "--json"],
                            capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise BenchError(f"schoolmesh {' '.join(args)}: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def start(self) -> None:
        with open(self.log, "w") as log:
            self.proc = self.link.popen(
                self.k, [C.cli_path(), "--home", str(self.home), "start", "--no-mdns", "--no-web",
                         "--listen", f"/ip4/{self.link.address(self.k)}/tcp/{PORT}"],
                stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.home.name} exited:\n{self.tail()}")
            try:
                return json.loads((self.home / "control.json").read_text())["pid"] == self.proc.pid
            except (FileNotFoundError, ValueError, KeyError):
                return False
        wait_for(ready, f"{self.home.name} started")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def figures(tool: str, seconds: float | None, payload: int, rate: float, wire: LinkStats,
            rx_cpu: float, tx_cpu: float, note: str = "") -> dict:
    """Ratios to the payload only for a finished run; bytes and CPU seconds always."""
    mib, done = payload / MiB, seconds is not None
    return {"tool": tool, "finished": done,
            "seconds": round(seconds, 2) if done else None,
            "goodput": round(payload * 8 / seconds / rate, 3) if done else None,
            "wire_down": round(wire.wire_bytes(0, 1) / payload, 3) if done else None,
            "wire_total": round(wire.total() / payload, 3) if done else None,
            "wire_bytes": [wire.wire_bytes(0, 1), wire.wire_bytes(1, 0)],
            "rx_cpu": round(rx_cpu, 2), "tx_cpu": round(tx_cpu, 2),
            "rx_cpu_per_mib": round(rx_cpu / mib, 3) if done else None,
            "tx_cpu_per_mib": round(tx_cpu / mib, 3) if done else None,
            "note": note}


def run_schoolmesh(link: Link, tmp: Path, src: Path, rate: float) -> dict:
    school, village = Daemon(link, 0, tmp / "school"), Daemon(link, 1, tmp / "village")
    for d in (school, village):
        C.run_cli(d.home, "init", "--name", d.home.name)
    payload = src.stat().st_size
    rid = school.cli("publish", str(src), "--title", "Links bench")["resource_id"]
    try:
        school.start()
        village.start()
        school_id = school.cli("id")["school_id"]
        village.cli("follow", school_id)
        village.cli("connect", f"/ip4/{link.address(0)}/tcp/{PORT}/p2p/{school_id}")
        wait_for(lambda: any(r["resource_id"] == rid for r in village.cli("search", "Links")),
                 "the village has the school's catalog")
        deadline = DEADLINE_FACTOR * payload * 8 / rate + 60
        link.zero_counters()
        rx0, tx0, t0 = village.cpu(), school.cpu(), time.monotonic()
        with open(tmp / "get.err", "w") as err:
            get = link.popen(1, [C.cli_path(), "--home", str(village.home), "get", rid, "-o",
                                 str(tmp / "out"), "--json"],
                             stdout=subprocess.DEVNULL, stderr=err)
        done, last_change, note = 0, t0, ""
        while True:
            try:
                get.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            rows = [t for t in village.cli("transfers") if t["target"] == rid]
            if rows and rows[0]["bytes_done"] > done:
                done, last_change = rows[0]["bytes_done"], now
            if now - last_change > STALL_S or now - t0 > deadline:
                state = rows[0] if rows else {}
                note = (f"did not finish: {done / MiB:.2f} of {payload / MiB:.0f} MiB after "
                        f"{now - t0:.0f} s ({state.get('state')}: {state.get('error')})")
                get.kill()
                break
        seconds = time.monotonic() - t0 if not note else None
        get.wait()
        stderr = (tmp / "get.err").read_text()
        rx, tx, wire = village.cpu() - rx0, school.cpu() - tx0, link.stats()
        if not note and get.returncode != 0:
            raise BenchError(f"get failed: {stderr.strip()}\n{village.tail()}")
        if not note and (tmp / "out" / src.name).read_bytes() != src.read_bytes():
            raise BenchError("the fetched file differs from the published one")
        return figures("schoolmesh", seconds, payload, rate, wire, rx, tx, note)
    finally:
        village.stop()
        school.stop()


def run_rsync(link: Link, tmp: Path, src: Path, rate: float) -> dict:
    conf = tmp / "rsyncd.conf"
    conf.write_text(f"use chroot = no\nuid = root\ngid = root\npid file = {tmp}/rsyncd.pid\n"
                    f"[m]\npath = {src.parent}\nread only = yes\n")
    daemon = link.popen(0, ["rsync", "--daemon", "--no-detach", f"--config={conf}",
                            f"--address={link.address(0)}", f"--port={RSYNC_PORT}",
                            f"--log-file={tmp}/rsyncd.log"])
    try:
        wait_for(lambda: f":{RSYNC_PORT}" in link.run(
            0, ["ss", "-Hltn"], capture_output=True, text=True).stdout, "rsyncd listens")
        link.zero_counters()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        out = link.run(1, ["rsync", "-a", f"rsync://{link.address(0)}:{RSYNC_PORT}/m/{src.name}",
                           str(tmp / "rsync-out") + "/"], capture_output=True, text=True,
                       timeout=DEADLINE_FACTOR * src.stat().st_size * 8 / rate + 60)
        seconds = time.monotonic() - t0
        wire = link.stats()
        after_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise BenchError(f"rsync failed: {out.stderr.strip()}")
    if (tmp / "rsync-out" / src.name).read_bytes() != src.read_bytes():
        raise BenchError("rsync's copy differs")
    rx = (after_client.ru_utime + after_client.ru_stime) - (before.ru_utime + before.ru_stime)
    tx = (after.ru_utime + after.ru_stime) - (after_client.ru_utime + after_client.ru_stime)
    return figures("rsync", seconds, src.stat().st_size, rate, wire, rx, tx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="append", choices=list(PROFILES),
                    help="a link profile (repeatable; default: all)")
    ap.add_argument("--mib", type=int, default=20, help="size of the resource (MiB)")
    ap.add_argument("--no-rsync", action="store_true", help="schoolmesh only")
    ap.add_argument("--quick", action="store_true", help="2 MiB instead of --mib")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    ok, why = available()
    if not ok:
        sys.exit(f"error: cannot emulate links here: {why}")
    size = 2 * MiB if args.quick else args.mib * MiB
    profiles = args.profile or list(PROFILES)
    C.header(f"rural links: {size // MiB} MiB across {', '.join(profiles)}", args.quick)
    tmp = C.make_tmpdir("links")
    src = tmp / "data" / "lesson.bin"
    src.parent.mkdir()
    src.write_bytes(os.urandom(size))
    results = []
    try:
        for name in profiles:
            rate, rtt = PROFILES[name]
            for tool in ("schoolmesh", *(() if args.no_rsync else ("rsync",))):
                work = tmp / f"{name}-{tool}"
                work.mkdir()
                with Link(rate=rate, delay=rtt / 2) as link:
                    run = run_schoolmesh if tool == "schoolmesh" else run_rsync
                    r = {"profile": name, **run(link, work, src, rate)}
                results.append(r)
                print(f"   {name} {tool}: " + (f"{r['seconds']} s" if r["finished"] else
                                              r["note"]), flush=True)
    finally:
        C.done_with(tmp, args.keep)
    dash = lambda x: "-" if x is None else x  # noqa: E731
    print(C.fmt_table(
        ["profile", "tool", "seconds", "goodput/rate", "wire/payload (down)",
         "wire/payload (total)", "wire MB down/up", "rx CPU s/MiB", "tx CPU s/MiB"],
        [[r["profile"], r["tool"], r["seconds"] if r["finished"] else "did not finish",
          dash(r["goodput"]), dash(r["wire_down"]), dash(r["wire_total"]),
          "/".join(f"{b / 1e6:.2f}" for b in r["wire_bytes"]),
          dash(r["rx_cpu_per_mib"]), dash(r["tx_cpu_per_mib"])] for r in results]))
    for r in results:
        if r["note"]:
            print(f"   {r['profile']} {r['tool']}: {r['note']}")
    C.summary("links", {"mib": size // MiB, "results": results})


if __name__ == "__main__":
    main()
