"""A community as separate processes on 127.0.0.1: one demonstration school and N village
schools (each a real ``schoolmesh start`` daemon with its own home).

    .venv/bin/python bench/community.py [--size-mib 50] [--villages 10] [--files 1]
                                        [--via cli|api] [--quick] [--keep]

Setup (not timed): ``init`` every home (the demonstration school with ``--role
demonstration``), start every daemon (``--no-mdns --no-web``, loopback), ``community create``
at the demonstration school, one one-time ``community invite`` per village and ``community
join CODE`` at each village; wait until the demonstration school lists every village as a
member and has them all connected.

Figures:

1. seeding: village 0 publishes SIZE MiB of random bytes (``schoolmesh publish DIR``); the
   time runs from the moment ``publish`` returns to the moment the demonstration school's pins
   show the resource with reason ``community`` (its database read every 0.1 s).  It covers the
   signed head reaching the demonstration school, the seeding fetch being queued (the community
   loop) and the Bitswap fetch from village 0.
2. village 0 (the publisher) is stopped (SIGTERM), so no one but the demonstration school holds
   the content.  Every village waits until the resource is in its catalog (not timed).
3. baseline, same run: one extra village (joined like the others, idle until now) runs
   ``schoolmesh get RID -o DIR`` alone, the demonstration school being the only holder; then it
   is stopped too, so it cannot serve the others.  Same command, same source, same data as the
   parallel fetch: what one village gets when it has the demonstration school to itself.
4. the N villages 1..N run ``schoolmesh get RID -o DIR`` at once (N subprocesses started
   together); each one's wall time, and the time until the last finishes.  Aggregate
   throughput (N x SIZE / that time) over the baseline's throughput is the printed ratio: 1.0
   means the demonstration school serves N villages as fast in total as one; N would be perfect
   scaling.  (Villages may also serve each other the blocks they already have: that is how the
   network works.)
   ``--via api`` times the same fetches through the node's control API instead (POST fetch,
   poll the transfer on one kept-open connection, files written afterwards, untimed): the
   network part without the ``get`` CLI's own start-up, polling and file writing.
5. memory: peak RSS (VmHWM from /proc/PID/status) of every daemon, read just before it stops.

Every ``get`` output is compared (sha256) with the original files; a difference, a timeout or
a failed command ends the run with a non-zero exit and the tail of every daemon's log.
Wall-clock times include each CLI's interpreter start-up (printed separately as "CLI fixed
cost").  There is no target: figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.REPO))
MiB = C.MiB
LISTEN = "/ip4/127.0.0.1/tcp/0"
POLL = 0.1


class BenchError(RuntimeError):
    pass


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "SCHOOLMESH_HOME": str(home)}
    env.pop("SCHOOLMESH_PASSPHRASE", None)
    return env


def cli(home: Path, *args: str, timeout: float = 300) -> dict | list:
    """``schoolmesh --home HOME ARGS --json``; the parsed JSON (BenchError if it fails)."""
    cmd = [C.cli_path(), "--home", str(home), *args, "--json"]
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, env=_env(home),
                            stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)} did not finish in {timeout:.0f} s") from None
    if cp.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({cp.returncode}):\n{cp.stderr.strip()}")
    return json.loads(cp.stdout)


def vm_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS of a live process in bytes (Linux /proc)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def children_cpu() -> float:
    """User + system CPU of this script's finished children (the CLI commands it ran)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    """One ``schoolmesh start`` process, its output in NAME.log next to its home."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.name = name
        self.home = tmp / name
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.peak_rss: int | None = None  # VmHWM read just before stopping
        self.cpu: float | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [C.cli_path(), "--home", str(self.home), "start", "--no-mdns", "--no-web",
                 "--listen", LISTEN], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=_env(self.home))

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not (self.home / "control.json").exists():
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name}: the daemon exited ({self.proc.returncode}) "
                                 "before it was ready")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: not ready after {timeout:.0f} s")
            time.sleep(POLL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sample(self) -> None:
        """Remember peak RSS and CPU time (while the process still exists)."""
        if self.alive():
            assert self.proc is not None
            try:
                self.peak_rss = vm_status(self.proc.pid)["VmHWM"]
                self.cpu = cpu_seconds(self.proc.pid)
            except (OSError, KeyError, ValueError):
                pass

    def stop(self) -> None:
        """SIGTERM, wait up to 20 s, then SIGKILL; BenchError if it did not exit cleanly."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.sample()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BenchError(f"{self.name}: did not stop within 20 s of SIGTERM (killed)") \
                from None
        if rc != 0:
            raise BenchError(f"{self.name}: exited with {rc} after SIGTERM")

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"


def db_rows(home: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read a running node's database (WAL: readers never block the daemon)."""
    conn = sqlite3.connect(home / "schoolmesh.db", timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def has_resource(home: Path, rid: str) -> bool:
    return bool(db_rows(home, "SELECT 1 FROM resources WHERE resource_id = ?", (rid,)))


def pinned_for_community(home: Path, rid: str) -> bool:
    return bool(db_rows(home, "SELECT 1 FROM pins p JOIN resources r ON r.content = p.cid "
                              "WHERE r.resource_id = ? AND p.reason = 'community'", (rid,)))


def wait_for(check, what: str, timeout: float, daemons: list[Daemon]) -> float:
    """Poll ``check`` every 0.1 s; return the perf_counter time it first held."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.perf_counter()
        for d in daemons:
            if d.proc is not None and d.proc.poll() is not None:
                raise BenchError(f"{d.name}: the daemon exited ({d.proc.returncode}) while "
                                 f"waiting until {what}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(POLL)


def make_source(root: Path, size: int, files: int) -> dict[str, str]:
    """``files`` files of random bytes totalling ``size``; their sha256 by relative path."""
    root.mkdir(parents=True)
    digests = {}
    per = size // files
    for i in range(files):
        n = per if i < files - 1 else size - per * (files - 1)
        h = hashlib.sha256()
        p = root / f"part-{i:02d}.bin"
        with open(p, "wb") as f:
            while n > 0:
                chunk = os.urandom(min(MiB, n))
                f.write(chunk)
                h.update(chunk)
                n -= len(chunk)
        digests[p.name] = h.hexdigest()
    return digests


def check_output(out: Path, expected: dict[str, str], who: str) -> None:
    got = {}
    for p in sorted(out.rglob("*")):
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while chunk := f.read(MiB):
                    h.update(chunk)
            got[p.relative_to(out).as_posix()] = h.hexdigest()
    if got != expected:
        bad = sorted(set(got) ^ set(expected)) or [k for k in expected if got.get(k) !=
                                                     expected[k]]
        raise BenchError(f"{who}: the fetched files differ from the originals: {bad[:5]}")


def timed_get(home: Path, rid: str, out: Path, timeout: float, via: str = "cli") -> float:
    """Seconds until ``rid`` is fetched; the files are in ``out`` afterwards.

    via "cli": ``schoolmesh get RID -o OUT`` timed as a whole (what a teacher runs: it asks the
    node to fetch, polls the node's transfer every 0.2 s, then writes the files).
    via "api": POST /v1/fetch to the node, then GET /v1/transfers every 0.1 s on one kept-open
    HTTP connection until the transfer is done (timed); ``get`` writes the files afterwards
    (not timed) - the network fetch without the CLI's own cost.
    """
    if via == "cli":
        t0 = time.perf_counter()
        cli(home, "get", rid, "-o", str(out), timeout=timeout)
        return time.perf_counter() - t0
    import httpx
    info = json.loads((home / "control.json").read_text())
    with httpx.Client(base_url=info["url"], timeout=30,
                      headers={"authorization": f"Bearer {info['token']}"}) as client:
        t0 = time.perf_counter()
        r = client.post("/v1/fetch", json={"target": rid})
        if r.status_code != 200:
            raise BenchError(f"{home.name}: fetch {rid} answered {r.status_code}: {r.text}")
        tid = r.json()["id"]
        deadline = time.monotonic() + timeout
        while True:
            t = next(t for t in client.get("/v1/transfers").json() if t["id"] == tid)
            if t["state"] == "done":
                dt = time.perf_counter() - t0
                break
            if t["state"] in ("failed", "cancelled"):
                raise BenchError(f"{home.name}: transfer {tid} {t['state']}: {t['error']}")
            if time.monotonic() > deadline:
                raise BenchError(f"{home.name}: transfer {tid} not done after {timeout:.0f} s "
                                 f"({t['state']}, {t['bytes_done']} bytes)")
            time.sleep(POLL)
    cli(home, "get", rid, "-o", str(out), timeout=timeout)
    return dt


def call(home: Path, name: str) -> dict | list:
    """GET a running node's control API (what ``cli/net.py`` does for the CLI)."""
    import httpx
    info = json.loads((home / "control.json").read_text())
    r = httpx.get(f"{info['url']}/v1/{name}", timeout=30,
                  headers={"authorization": f"Bearer {info['token']}"})
    if r.status_code != 200:
        raise BenchError(f"control API {name} of {home.name} answered {r.status_code}: "
                         f"{r.text[:300]}")
    return r.json()


def transfer_of(home: Path, rid: str) -> dict | None:
    """The (last) transfer of ``rid`` in a running node's queue, via its control API."""
    ts = [t for t in call(home, "transfers") if t["target"] == rid]
    return ts[-1] if ts else None


def run(args: argparse.Namespace, tmp: Path, daemons: list[Daemon]) -> dict:
    n = args.villages
    size = int(args.size_mib * MiB)
    mib = size / MiB
    timeout = args.timeout
    demo = Daemon(tmp, "demo")
    villages = [Daemon(tmp, f"village{i}") for i in range(n + 1)]
    base = Daemon(tmp, "baseline")   # the extra village of the baseline fetch
    everyone = [demo, *villages, base]
    daemons.extend(everyone)

    print(f"   villages fetch with: {'schoolmesh get' if args.via == 'cli' else 'the control API'}")
    print(f"-- setup: 1 demonstration + {n + 1} village daemons ({n} fetching villages + "
          f"village0 the publisher) + 1 baseline village; {mib:g} MiB in {args.files} "
          f"file(s)", flush=True)
    t_setup = time.perf_counter()
    expected = make_source(tmp / "src" / "resource", size, args.files)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda d: cli(d.home, "init", "--name", d.name,
                                    *(["--role", "demonstration"] if d is demo else [])),
                      everyone))
    fixed = C.median([C.run_cli(demo.home, "search", "zzzznothingmatches")[0]
                      for _ in range(3)])
    for d in everyone:
        d.start()
    for d in everyone:
        d.wait_ready(timeout)
    community_id = cli(demo.home, "community", "create", "Bench Community")["community_id"]
    codes = [cli(demo.home, "community", "invite")["code"] for _ in [*villages, base]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        joined = list(pool.map(lambda vc: cli(vc[0].home, "community", "join", vc[1]),
                               zip([*villages, base], codes)))
    for d, j in zip([*villages, base], joined):
        if j.get("community_id") != community_id:
            raise BenchError(f"{d.name} joined {j.get('community_id')}, not {community_id}")
    ids = {d.name: cli(d.home, "id")["school_id"] for d in [*villages, base]}
    names = {v: k for k, v in ids.items()} | {cli(demo.home, "id")["school_id"]: "demo"}

    def all_members() -> bool:
        ms = cli(demo.home, "community", "members")["members"]
        have = {m["school_id"] for m in ms if m.get("status") == "active"}
        return set(ids.values()) <= have

    wait_for(all_members, "the demonstration school lists every village as a member", timeout,
             everyone)
    wait_for(lambda: call(demo.home, "status")["peers"] >= len(villages) + 1,
             "every village is connected to the demonstration school", timeout, everyone)
    print(f"   ready in {time.perf_counter() - t_setup:.1f} s (community {community_id}); "
          f"CLI fixed cost {fixed:.2f} s", flush=True)

    # 1. publish at village 0 -> pinned (reason community) at the demonstration school
    pub = villages[0]
    hwm0 = vm_status(demo.proc.pid)["VmHWM"]  # type: ignore[union-attr]
    C.settle()
    t0 = time.perf_counter()
    published = cli(pub.home, "publish", str(tmp / "src" / "resource"), "--title",
                    "Bench community resource")
    t_published = time.perf_counter()
    rid = published["resource_id"]
    print(f"-- village0 published {rid} ({mib:g} MiB) in {t_published - t0:.2f} s", flush=True)
    cpu0 = {d.name: cpu_seconds(d.proc.pid) for d in (demo, pub)}  # type: ignore[union-attr]
    t_head = wait_for(lambda: has_resource(demo.home, rid),
                      "the demonstration school has the resource in its catalog", timeout,
                      everyone)
    t_pinned = wait_for(lambda: pinned_for_community(demo.home, rid),
                        "the demonstration school pins the resource (reason community)", timeout,
                        everyone)
    demo_hwm = {"before publish": hwm0}
    demo_hwm["after seeding"] = vm_status(demo.proc.pid)["VmHWM"]  # type: ignore[union-attr]
    seed_cpu = {k: cpu_seconds(d.proc.pid) - cpu0[k]  # type: ignore[union-attr]
                for k, d in (("demo", demo), ("village0", pub))}
    t_seeded = t_pinned - t_published
    seeding = transfer_of(demo.home, rid)
    fetch_s = None
    if seeding is not None and seeding["state"] == "done":
        fetch_s = (seeding["updated"] - seeding["created"]) / 1000
    print(f"   head at the demonstration school after {t_head - t_published:.2f} s; pinned "
          f"(community) after {t_seeded:.2f} s = {mib / t_seeded:.1f} MiB/s"
          + (f"; its transfer ran {fetch_s:.2f} s from queued to done "
             f"({mib / fetch_s:.1f} MiB/s)" if fetch_s else ""), flush=True)

    # 2. the publisher leaves; every village must know the resource before it asks for it
    pub.stop()
    fetchers = villages[1:]
    t_cat = wait_for(lambda: all(has_resource(v.home, rid) for v in [*fetchers, base]),
                     "every village has the resource in its catalog", timeout,
                     [d for d in everyone if d is not pub])   # pub was stopped on purpose
    print(f"   village0 stopped; the resource was in every village's catalog "
          f"{t_cat - t_published:.2f} s after publish (or earlier)", flush=True)

    # 3. baseline: one village alone, only the demonstration school holds the content
    C.settle()
    b_cpu0 = (cpu_seconds(demo.proc.pid), cpu_seconds(base.proc.pid),  # type: ignore
              children_cpu())
    t_single = timed_get(base.home, rid, tmp / "out-baseline", timeout, args.via)
    b_cpu = (cpu_seconds(demo.proc.pid) - b_cpu0[0],  # type: ignore[union-attr]
             cpu_seconds(base.proc.pid) - b_cpu0[1],  # type: ignore[union-attr]
             children_cpu() - b_cpu0[2])
    check_output(tmp / "out-baseline", expected, "baseline")
    tr = transfer_of(base.home, rid)
    base_providers = tr["providers_tried"] if tr else []
    demo_hwm["after the baseline fetch"] = vm_status(demo.proc.pid)["VmHWM"]  # type: ignore
    base.stop()
    print(f"-- baseline: one village alone fetched it in {t_single:.2f} s "
          f"({mib / t_single:.1f} MiB/s); verified; baseline village stopped", flush=True)
    C.rmtree(tmp / "out-baseline")

    # 4. N villages at once
    C.settle()
    times: dict[str, float] = {}
    ends: dict[str, float] = {}
    errors: dict[str, str] = {}
    demo_cpu0 = cpu_seconds(demo.proc.pid)  # type: ignore[union-attr]
    v_cpu0 = {v.name: cpu_seconds(v.proc.pid) for v in fetchers}  # type: ignore[union-attr]
    cli_cpu0 = children_cpu()
    barrier = threading.Barrier(len(fetchers))
    t_start = [0.0]

    def one(v: Daemon) -> None:
        barrier.wait()
        if not t_start[0]:
            t_start[0] = time.perf_counter()
        try:
            t = time.perf_counter()
            times[v.name] = timed_get(v.home, rid, tmp / f"out-{v.name}", timeout, args.via)
            ends[v.name] = t + times[v.name]
        except BenchError as exc:
            errors[v.name] = str(exc)

    threads = [threading.Thread(target=one, args=(v,)) for v in fetchers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_all = max(ends.values(), default=time.perf_counter()) - t_start[0]
    demo_cpu_all = cpu_seconds(demo.proc.pid) - demo_cpu0  # type: ignore[union-attr]
    v_cpu_all = sum(cpu_seconds(v.proc.pid) - v_cpu0[v.name]  # type: ignore[union-attr]
                    for v in fetchers)
    cli_cpu_all = children_cpu() - cli_cpu0
    if errors:
        raise BenchError("parallel fetch failed:\n" + "\n".join(f"{k}: {v}"
                                                                for k, v in errors.items()))
    for v in fetchers:
        check_output(tmp / f"out-{v.name}", expected, v.name)
        C.rmtree(tmp / f"out-{v.name}")
    rows = {v.name: transfer_of(v.home, rid) or {} for v in fetchers}
    providers = {name: row.get("providers_tried", []) for name, row in rows.items()}
    print("   per village (s, attempts, last error): " + "; ".join(
        f"{name} {t:.1f}" + (f" x{rows[name].get('attempts')}" if rows[name].get("attempts", 1)
                             > 1 else "")
        + (f" ({rows[name]['last_error']})" if rows[name].get("last_error") else "")
        for name, t in sorted(times.items(), key=lambda kv: kv[1])), flush=True)
    for d in [demo, *fetchers]:
        d.sample()

    # figures
    agg = n * mib / t_all
    single = mib / t_single
    per = sorted(times.values())
    print(f"-- {n} villages fetched it at once: all done after {t_all:.2f} s; each verified")
    print(C.fmt_table(["measure", "seconds", "MiB/s", "note"], [
        ["publish at village0 (CLI)", t_published - t0, mib / (t_published - t0), ""],
        ["publish -> head at demonstration", t_head - t_published, float("nan"), ""],
        ["publish -> seeded (pinned, community)", t_seeded, mib / t_seeded,
         f"CPU demo {seed_cpu['demo']:.1f} s, village0 {seed_cpu['village0']:.1f} s"],
        ["  of which the seeding transfer", fetch_s if fetch_s else float("nan"),
         mib / fetch_s if fetch_s else float("nan"), "queue created -> done (ms clock)"],
        [f"baseline: 1 village alone ({args.via})", t_single, single, "only the demonstration holds it"],
        [f"{n} villages at once: all done", t_all, agg, "aggregate"],
        [f"  per village: fastest", per[0], mib / per[0], ""],
        [f"  per village: median", C.median(per), mib / C.median(per), ""],
        [f"  per village: slowest", per[-1], mib / per[-1], ""],
    ]))
    if args.via == "api":
        print("   (--via api: times end when the node's transfer is done; the get CLI that "
              "writes the files for the check ran afterwards, its CPU is in the table below)")
    print(f"   aggregate / baseline throughput = {agg / single:.2f} (1.0 = no gain from "
          f"parallel requests, {n} = perfect scaling); median per-village time / baseline = "
          f"{C.median(per) / t_single:.2f}")
    cores = os.cpu_count() or 1
    timed_cli = args.via == "cli"  # with --via api the get CLIs ran after the timed part
    busy_b = b_cpu[0] + b_cpu[1] + (b_cpu[2] if timed_cli else 0)
    busy_all = demo_cpu_all + v_cpu_all + (cli_cpu_all if timed_cli else 0)
    print(C.fmt_table(["CPU seconds", "demonstration", "village daemon(s)",
                       "get CLI(s)" + ("" if timed_cli else " (untimed)"),
                       f"machine busy ({cores} CPUs)"], [
        ["baseline (1 village)", b_cpu[0], b_cpu[1], b_cpu[2],
         f"{100 * busy_b / (cores * t_single):.0f}%"],
        [f"{n} villages at once", demo_cpu_all, v_cpu_all, cli_cpu_all,
         f"{100 * busy_all / (cores * t_all):.0f}%"],
    ]))
    def who(addr: str) -> str:
        pid = addr.rsplit("/p2p/", 1)[-1]
        return names.get(pid, pid[-8:])
    counts: dict[str, int] = {}
    for p in providers.values():
        for name in {who(a) for a in p}:
            counts[name] = counts.get(name, 0) + 1
    print(f"   providers tried: baseline {sorted({who(a) for a in base_providers})}; the {n} "
          "villages: " + ", ".join(f"{k} by {v}" for k, v in sorted(counts.items())))

    rss = {d.name: d.peak_rss for d in everyone if d.peak_rss is not None}
    demo_hwm[f"after the {n}-way fetch"] = rss.get("demo", 0)
    print("   demonstration school peak RSS: " + ", ".join(
        f"{k} {v / 1e6:.0f} MB" for k, v in demo_hwm.items()))
    mb = 1e6
    vill = [rss[v.name] for v in fetchers if v.name in rss]
    print(C.fmt_table(["peak RSS (VmHWM) of the daemon", "MB"], [
        ["demonstration school", rss.get("demo", 0) / mb],
        ["village0 (publisher; at its stop)", rss.get("village0", 0) / mb],
        ["baseline village (at its stop)", rss.get("baseline", 0) / mb],
        [f"villages 1..{n}: median", C.median(vill) / mb],
        [f"villages 1..{n}: max", max(vill) / mb],
    ]))
    return {"size_mib": mib, "villages": n, "files": args.files, "via": args.via,
            "publish_s": round(t_published - t0, 2),
            "head_at_demo_s": round(t_head - t_published, 2),
            "seeded_s": round(t_seeded, 2), "seeded_mib_s": round(mib / t_seeded, 1),
            "seed_transfer_s": round(fetch_s, 2) if fetch_s else None,
            "baseline_get_s": round(t_single, 2), "baseline_mib_s": round(single, 1),
            "all_get_s": round(t_all, 2), "aggregate_mib_s": round(agg, 1),
            "aggregate_ratio": round(agg / single, 2),
            "village_get_s_median": round(C.median(per), 2),
            "village_get_s_max": round(per[-1], 2),
            "village_get_s_min": round(per[0], 2),
            "fairness": round(per[0] / per[-1], 3),
            "cli_fixed_s": round(fixed, 2),
            "baseline_cpu_s": round(sum(b_cpu), 1),
            "parallel_cpu_s": round(demo_cpu_all + v_cpu_all + cli_cpu_all, 1),
            "demo_peak_rss_mb": round(rss.get("demo", 0) / mb, 1),
            "village_peak_rss_mb_median": round(C.median(vill) / mb, 1),
            "village_peak_rss_mb_max": round(max(vill) / mb, 1),
            "targets": {}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=float, default=50, help="resource size (default 50)")
    ap.add_argument("--villages", type=int, default=10,
                    help="villages fetching at once (default 10)")
    ap.add_argument("--files", type=int, default=1, help="files in the resource (default 1)")
    ap.add_argument("--via", choices=["cli", "api"], default="cli",
                    help="how villages fetch: 'schoolmesh get' (default) or the node's control "
                         "API (POST fetch, poll transfers; files written afterwards, untimed)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed per step")
    ap.add_argument("--quick", action="store_true", help="5 MiB and 3 villages")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    if args.quick:
        args.size_mib, args.villages = min(args.size_mib, 5), min(args.villages, 3)
    if args.villages < 1 or args.size_mib <= 0 or args.files < 1:
        ap.error("--villages, --size-mib and --files must be positive")

    C.header(f"community: 1 demonstration + {args.villages} villages as processes, "
             f"{args.size_mib:g} MiB resource", args.quick)
    tmp = C.make_tmpdir("community")
    print(f"   scratch folder: {tmp}", flush=True)
    daemons: list[Daemon] = []
    figures = None
    failed = False
    try:
        figures = run(args, tmp, daemons)
    except Exception as exc:  # noqa: BLE001 - any failure: report, show the logs, exit 1
        failed = True
        print(f"\nFAILED: {type(exc).__name__}: {exc}", flush=True)
    finally:
        # every daemon is stopped, whatever happened; the villages before their seed
        for d in sorted(daemons, key=lambda d: d.name == "demo"):
            try:
                d.stop()
            except BenchError as exc:
                failed = True
                print(f"FAILED: {exc}", flush=True)
        if failed:
            for d in daemons:
                if d.log.exists():
                    print(f"--- tail of {d.log.name}:\n{d.tail()}")
            print(f"(daemon logs are in {tmp}" + (")" if args.keep else
                                                   ", removed now; --keep keeps them)"))
        C.done_with(tmp, args.keep)
    if failed or figures is None:
        sys.exit(1)
    C.summary("community", {"quick": args.quick, **figures})


if __name__ == "__main__":
    main()
