"""One fetch over an emulated rural link: goodput, wire overhead and receiver CPU.

    sudo .venv/bin/python bench/slowlink.py --rate 512kbit --rtt 300 --size-mib 8 \
        --emu PATH/netemu.py [--prefix ex] [--repeats 1] [--keep]
        [--via cli|api] [--profile FILE]

Needs root: it runs a packet-level link emulator (``--emu``, a ``netemu.py`` that makes network
namespaces ``<prefix>0`` and ``<prefix>1`` joined by a TUN link of ``--rate`` and ``--rtt``) and
two ``schoolmesh start`` daemons, A in ``<prefix>0`` and B in ``<prefix>1``, with default
settings (no limits).  A publishes ``--size-mib`` of random bytes; B follows A, connects and
waits until the resource is in its catalog (not timed).  Then the emulator's counters are reset
and B runs ``schoolmesh get`` (timed from the transfer's creation to its completion, as the
daemon records them in its database, so the CLI's start-up is not counted).

Figures: goodput as a fraction of the link rate (payload bits / elapsed / rate); wire bytes of
the whole link (IP packets both ways, as the emulator counts them) over the payload; B's CPU
seconds per MiB during the fetch (``--via api`` starts the fetch with one control API request
and watches the database instead of running ``get``, whose polling costs the node CPU too).
The output is verified (sha256).  No targets are asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from community import Daemon, cpu_seconds, db_rows  # noqa: E402

MiB = C.MiB
PORT = 4004


def parse_rate(s: str) -> float:
    s = s.strip().lower()
    for suffix, mul in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1)):
        if s.endswith(suffix):
            return float(s[:-len(suffix)]) * mul
    return float(s)


def emu_call(sock: str, msg: dict) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(json.dumps(msg).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(1 << 20)
        if not d:
            break
        buf += d
    s.close()
    return json.loads(buf)


class NsDaemon(Daemon):
    """A daemon inside a network namespace, listening on its TUN address."""

    def __init__(self, tmp: Path, name: str, ns: str, addr: str) -> None:
        super().__init__(tmp, name)
        self.ns, self.addr = ns, addr

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, C.cli_path(), "--home", str(self.home),
                 "start", "--no-mdns", "--no-web", "--listen", f"/ip4/{self.addr}/tcp/{PORT}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "SCHOOLMESH_HOME": str(self.home)})

    def cli(self, *args: str, timeout: float = 3600) -> dict:
        cmd = ["ip", "netns", "exec", self.ns, C.cli_path(), "--home", str(self.home), *args,
               "--json"]
        cp = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=timeout)
        if cp.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {cp.stderr.strip()}")
        return json.loads(cp.stdout)


def one_run(args: argparse.Namespace, tmp: Path, sock: str) -> dict:
    a = NsDaemon(tmp, "A", f"{args.prefix}0", "10.77.0.1")
    b = NsDaemon(tmp, "B", f"{args.prefix}1", "10.77.0.2")
    for d in (a, b):
        d.cli("init", "--name", d.name)
    src = tmp / "src"
    src.mkdir()
    data = os.urandom(args.size_mib * MiB)
    (src / "payload.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    try:
        for d in (a, b):
            d.start()
        for d in (a, b):
            d.wait_ready(60)
        rid = a.cli("publish", str(src), "--title", "payload")["resource_id"]
        a_id = a.cli("id")["school_id"]
        b.cli("follow", a_id)
        b.cli("connect", f"/ip4/{a.addr}/tcp/{PORT}/p2p/{a_id}")
        deadline = time.monotonic() + 300
        while not db_rows(b.home, "SELECT 1 FROM resources WHERE resource_id = ?", (rid,)):
            if time.monotonic() > deadline:
                raise RuntimeError("B never saw the resource")
            time.sleep(0.2)
        time.sleep(2)   # let identify / feed sync settle before counting bytes
        emu_call(sock, {"cmd": "reset"})
        cpu0 = cpu_seconds(b.proc.pid)
        a_cpu0 = cpu_seconds(a.proc.pid)
        out = tmp / "out"
        spy = None
        if args.profile:   # py-spy (pip install py-spy): collapsed stacks of B during the fetch
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                 str(b.proc.pid), "--format", "raw", "--rate", "200", "--nonblocking",
                 "-o", args.profile], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.via == "cli":
            b.cli("get", rid, "-o", str(out), timeout=args.timeout)
        else:   # POST /v1/fetch, then watch the database: no control API requests meanwhile
            info = json.loads((b.home / "control.json").read_text())
            subprocess.run(["ip", "netns", "exec", b.ns, "curl", "-sf", "-X", "POST", "-H",
                            f"authorization: Bearer {info['token']}", "-H",
                            "content-type: application/json", "-d",
                            json.dumps({"target": rid}), f"{info['url']}/v1/fetch"],
                           check=True, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + args.timeout
            while not db_rows(b.home, "SELECT 1 FROM transfers WHERE state = 'done'"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not fetched after {args.timeout:.0f} s")
                time.sleep(0.5)
        cpu = cpu_seconds(b.proc.pid) - cpu0
        a_cpu = cpu_seconds(a.proc.pid) - a_cpu0
        if args.via == "api":
            b.cli("get", rid, "-o", str(out), timeout=args.timeout)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stats = emu_call(sock, {"cmd": "stats"})
        (created, updated, attempts, err), = db_rows(
            b.home, "SELECT created, updated, attempts, last_error FROM transfers "
                    "ORDER BY id DESC LIMIT 1")
        got = hashlib.sha256((out / "payload.bin").read_bytes()).hexdigest()
        if got != digest:
            raise RuntimeError("the fetched file differs")
        for d in (a, b):
            d.sample()
        elapsed = (updated - created) / 1000
        payload = args.size_mib * MiB
        rate = parse_rate(args.rate)
        wire = sum(stats["tx"])
        return {"elapsed_s": round(elapsed, 2),
                "goodput_fraction": round(payload * 8 / elapsed / rate, 3),
                "wire_over_payload": round(wire / payload, 4),
                "a_to_b_over_payload": round(stats["tx"][0] / payload, 4),
                "receiver_cpu_s_per_mib": round(cpu / args.size_mib, 4),
                "sender_cpu_s_per_mib": round(a_cpu / args.size_mib, 4),
                "attempts": attempts, "last_error": err,
                "drops": stats.get("drop_queue"),
                "peak_rss_mb": {d.name: round((d.peak_rss or 0) / 1e6, 1) for d in (a, b)}}
    except BaseException:
        for d in (a, b):
            print(f"--- {d.name} log tail\n{d.tail(15)}", file=sys.stderr)
        raise
    finally:
        for d in (a, b):
            try:
                d.stop()
            except Exception as exc:  # report, keep cleaning up
                print(f"{d.name}: {exc}", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", default="512kbit")
    p.add_argument("--rtt", type=float, default=300)
    p.add_argument("--size-mib", type=int, default=8)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--emu", required=True,
                   help="a netemu.py-compatible emulator script (bench/links.py uses the "
                        "project's own, bench/linkemu)")
    p.add_argument("--prefix", default="ex")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--via", choices=("cli", "api"), default="cli",
                   help="start the fetch with 'schoolmesh get' (which polls the node's "
                        "transfers every 0.2 s: its CPU counts) or one control API request")
    p.add_argument("--profile", metavar="FILE",
                   help="record B's stacks during the fetch with py-spy (collapsed format)")
    args = p.parse_args()
    tmp = C.make_tmpdir("slowlink")
    sock = str(tmp / "emu.sock")
    emu = subprocess.Popen([sys.executable, args.emu, "--nodes", "2", "--rate", args.rate,
                            "--rtt", str(args.rtt), "--prefix", args.prefix, "--sock", sock],
                           stdout=subprocess.PIPE, text=True, cwd=Path(args.emu).parent)
    results = []
    try:
        line = emu.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        for i in range(args.repeats):
            run_dir = tmp / f"run{i}"
            run_dir.mkdir()
            r = one_run(args, run_dir, sock)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        emu.send_signal(signal.SIGTERM)
        try:
            emu.wait(timeout=20)
        except subprocess.TimeoutExpired:
            emu.kill()
        C.done_with(tmp, args.keep)
    print("SUMMARY " + json.dumps({"rate": args.rate, "rtt_ms": args.rtt,
                                   "size_mib": args.size_mib, "runs": results}))


if __name__ == "__main__":
    main()
