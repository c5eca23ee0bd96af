"""bench/links.py, the three tools: one fetch of a file or folder across an emulated link.

``run_schoolmesh``, ``run_rsync`` and ``run_syncthing`` each take a ``Link`` of two nodes
(node 0 has the data, node 1 fetches it), a fresh work folder, the source (a file or a folder)
and an optional ``Outages`` (blackholes or resets during the fetch); each returns ``figures``.
Every process runs inside its node's namespace; nothing listens outside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import _common as C
from _syncthing import FOLDER_ID, _complete, _connected, _Instance, _rest_up, _scanned
from _syncthing import ensure_syncthing
from linkemu import Link, LinkStats

MiB = C.MiB
PORT = 4004
RSYNC_PORT = 8730
ST_GUI_PORT, ST_SYNC_PORT = 8384, 22000
SETUP_TIMEOUT = 90.0       # daemon start, catalog across the link, Syncthing connected
STALL_S = 120.0            # no new bytes for this long: the fetch did not finish
DEADLINE_FACTOR = 3.0      # ... nor if it takes this many times what the rate implies
POLL_S = 5.0               # schoolmesh transfer progress, read with the CLI in the namespace
ST_POLL_S = 1.0            # Syncthing REST, read through a socket in the namespace
RSYNC_RETRY_S = 5.0        # pause between rsync attempts after a failed one (outages)
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


def payload_of(src: Path) -> int:
    return src.stat().st_size if src.is_file() else sum(
        p.stat().st_size for p in src.rglob("*") if p.is_file())


def digest(path: Path) -> list[tuple[str, int, str]]:
    """(file name, size, sha256) of the file or of every file below the folder, sorted: equal
    for a copy whatever folder the tool wrote it under.  Syncthing's marker is left out."""
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and ".stfolder" not in p.parts)
    return sorted((p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in files)


def deadline_for(payload: int, rate: float, outages: Outages | None) -> float:
    return DEADLINE_FACTOR * payload * 8 / rate + 60 + (outages.downtime if outages else 0)


def stall_for(outages: Outages | None) -> float:
    """No progress for this long ends a run; the outages' own time does not count."""
    return STALL_S + (outages.downtime if outages else 0)


class Outages:
    """Link failures during a fetch: at each offset (seconds after the fetch started) the link
    drops every packet for ``seconds`` (sockets stay open); with ``reset`` every TCP connection
    across the link is reset when the outage ends (a modem that re-attached).  ``start`` runs
    them on a thread; ``stop`` cancels those not yet due and returns how many happened."""

    def __init__(self, offsets: list[float], seconds: float, reset: bool) -> None:
        self.offsets, self.seconds, self.reset = offsets, seconds, reset
        self.downtime = seconds * len(offsets)
        self.applied = 0
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, link: Link, t0: float) -> None:
        def run() -> None:
            for off in self.offsets:
                if self._cancel.wait(max(0.0, t0 + off - time.monotonic())):
                    return
                link.blackhole(self.seconds)
                if self.reset and self._cancel.wait(self.seconds):
                    return
                if self.reset:
                    link.reset_connections()
                self.applied += 1
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()
        return self.applied


def figures(tool: str, seconds: float | None, payload: int, rate: float, wire: LinkStats,
            rx_cpu: float, tx_cpu: float, note: str = "", **extra) -> dict:
    """Ratios to the payload only for a finished run; bytes and CPU seconds always."""
    mib, done = payload / MiB, seconds is not None
    return {"tool": tool, "finished": done, "payload": payload,
            "seconds": round(seconds, 2) if done else None,
            "goodput": round(payload * 8 / seconds / rate, 3) if done else None,
            "wire_down": round(wire.wire_bytes(0, 1) / payload, 3) if done else None,
            "wire_total": round(wire.total() / payload, 3) if done else None,
            "wire_bytes": [wire.wire_bytes(0, 1), wire.wire_bytes(1, 0)],
            "rx_cpu": round(rx_cpu, 2), "tx_cpu": round(tx_cpu, 2),
            "rx_cpu_per_mib": round(rx_cpu / mib, 3) if done else None,
            "tx_cpu_per_mib": round(tx_cpu / mib, 3) if done else None,
            "note": note, **extra}


# -- schoolmesh ------------------------------------------------------------------------------

class Daemon:
    """``schoolmesh start`` in node k's namespace; its CLI runs there too (control API on the
    namespace's loopback)."""

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

    def init(self, *args: str) -> None:
        C.run_cli(self.home, "init", "--name", self.home.name, *args)

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

    def addr(self) -> str:
        return f"/ip4/{self.link.address(self.k)}/tcp/{PORT}/p2p/{self.cli('id')['school_id']}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stored_blocks(self) -> int:
        """Blocks in the store: big ones are files, small ones rows of blocks/small.db."""
        root = self.home / "blocks"
        files = sum(1 for p in root.rglob("*") if p.is_file() and "tmp" not in
                    p.relative_to(root).parts[:1] and not p.name.startswith("small.db"))
        db = root / "small.db"
        if not db.exists():
            return files
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return files + conn.execute("SELECT count(*) FROM small").fetchone()[0]

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


def run_schoolmesh(link: Link, tmp: Path, src: Path, rate: float,
                   outages: Outages | None = None) -> dict:
    school, village = Daemon(link, 0, tmp / "school"), Daemon(link, 1, tmp / "village")
    for d in (school, village):
        d.init()
    payload = payload_of(src)
    rid = school.cli("publish", str(src), "--title", "Links bench")["resource_id"]
    try:
        school.start()
        village.start()
        village.cli("follow", school.cli("id")["school_id"])
        village.cli("connect", school.addr())
        wait_for(lambda: any(r["resource_id"] == rid for r in village.cli("search", "Links")),
                 "the village has the school's catalog")
        deadline = deadline_for(payload, rate, outages)
        ex0, blocks0 = village.cli("status")["exchange"], village.stored_blocks()
        link.zero_counters()
        rx0, tx0, t0 = village.cpu(), school.cpu(), time.monotonic()
        if outages:
            outages.start(link, t0)
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
            if now - last_change > stall_for(outages) or now - t0 > deadline:
                state = rows[0] if rows else {}
                note = (f"did not finish: {done / MiB:.2f} of {payload / MiB:.1f} MiB after "
                        f"{now - t0:.0f} s ({state.get('state')}: {state.get('error')})")
                get.kill()
                break
        seconds = time.monotonic() - t0 if not note else None
        get.wait()
        applied = outages.stop() if outages else 0
        stderr = (tmp / "get.err").read_text()
        rx, tx, wire = village.cpu() - rx0, school.cpu() - tx0, link.stats()
        ex1, blocks1 = village.cli("status")["exchange"], village.stored_blocks()
        if not note and get.returncode != 0:
            raise BenchError(f"get failed: {stderr.strip()}\n{village.tail()}")
        if not note and digest(tmp / "out") != digest(src):
            raise BenchError("the fetched files differ from the published ones")
        received = ex1["blocks_received"] - ex0["blocks_received"]
        return figures("schoolmesh", seconds, payload, rate, wire, rx, tx, note,
                       outages_applied=applied, blocks_stored=blocks1 - blocks0,
                       blocks_received=received,
                       duplicate_blocks=received - (blocks1 - blocks0),
                       block_bytes_received=ex1["bytes_received"] - ex0["bytes_received"])
    finally:
        village.stop()
        school.stop()


# -- rsync -----------------------------------------------------------------------------------

def run_rsync(link: Link, tmp: Path, src: Path, rate: float,
              outages: Outages | None = None) -> dict:
    """``rsync --daemon`` at node 0, ``rsync -a --partial rsync://…`` at node 1.  With outages,
    a failed attempt is run again after RSYNC_RETRY_S (what a village's script would do);
    ``attempts`` says how many it took."""
    conf = tmp / "rsyncd.conf"
    conf.write_text(f"use chroot = no\nuid = root\ngid = root\npid file = {tmp}/rsyncd.pid\n"
                    f"[m]\npath = {src.parent}\nread only = yes\n")
    daemon = link.popen(0, ["rsync", "--daemon", "--no-detach", f"--config={conf}",
                            f"--address={link.address(0)}", f"--port={RSYNC_PORT}",
                            f"--log-file={tmp}/rsyncd.log"])
    payload = payload_of(src)
    out_dir = tmp / "rsync-out"
    attempts, note = 0, ""
    try:
        wait_for(lambda: f":{RSYNC_PORT}" in link.run(
            0, ["ss", "-Hltn"], capture_output=True, text=True).stdout, "rsyncd listens")
        deadline = deadline_for(payload, rate, outages)
        link.zero_counters()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        if outages:
            outages.start(link, t0)
        while True:
            attempts += 1
            left = deadline - (time.monotonic() - t0)
            try:
                out = link.run(1, ["rsync", "-a", "--partial",
                                   f"rsync://{link.address(0)}:{RSYNC_PORT}/m/{src.name}",
                                   str(out_dir) + "/"], capture_output=True, text=True,
                               timeout=max(left, 1))
            except subprocess.TimeoutExpired:
                note = f"did not finish in {deadline:.0f} s ({attempts} attempts)"
                break
            if out.returncode == 0:
                break
            if not outages or time.monotonic() - t0 > deadline:
                note = f"did not finish: {out.stderr.strip()[-300:]}"
                break
            time.sleep(RSYNC_RETRY_S)
        seconds = time.monotonic() - t0 if not note else None
        applied = outages.stop() if outages else 0
        wire = link.stats()
        after_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not note and digest(out_dir) != digest(src):
        raise BenchError("rsync's copy differs")
    rx = (after_client.ru_utime + after_client.ru_stime) - (before.ru_utime + before.ru_stime)
    tx = (after.ru_utime + after.ru_stime) - (after_client.ru_utime + after_client.ru_stime)
    return figures("rsync", seconds, payload, rate, wire, rx, tx, note,
                   outages_applied=applied, attempts=attempts)


# -- Syncthing -------------------------------------------------------------------------------

def syncthing_pair(link: Link, tmp: Path, folder_a: Path, folder_b: Path,
                   reconnect_s: int = 60) -> tuple[_Instance, _Instance]:
    """Syncthing A at node 0 (send-only ``folder_a``) and B at node 1 (receive-only
    ``folder_b``), configured as bench/_syncthing.py does (discovery, relays, NAT off; the
    folder paused) but on the link's addresses, REST reached through sockets made in each
    namespace.  ``reconnect_s`` is Syncthing's own default (60 s) unless told.  Started
    (B first, so that A's first dial finds it) and connected; the caller stops them."""
    binary = ensure_syncthing()

    def connect(k: int):
        def make(port: int):
            s = link.socket(k)
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            return s
        return make

    insts = [_Instance(binary, name, tmp, ST_GUI_PORT, ST_SYNC_PORT, host=link.address(k),
                       wrap=lambda argv, k=k: link.command(k, argv), connect=connect(k),
                       reconnect_s=reconnect_s) for k, name in enumerate("ab")]
    a, b = insts
    for folder in (folder_a, folder_b):
        (folder / ".stfolder").mkdir(parents=True, exist_ok=True)
    a.generate()
    b.generate()
    a.write_config(b, folder_a, "sendonly")
    b.write_config(a, folder_b, "receiveonly")
    try:
        b.start()
        wait_for(lambda: b.check_alive() or _rest_up(b), "Syncthing B's REST API answers")
        a.start()
        wait_for(lambda: a.check_alive() or _rest_up(a), "Syncthing A's REST API answers")
        wait_for(lambda: _connected(a, b.device_id) and _connected(b, a.device_id),
                 "the Syncthing instances connect")
    except BaseException:
        stop_syncthing(a, b)
        raise
    return a, b


def stop_syncthing(*insts: _Instance) -> None:
    for inst in insts:
        inst.request_shutdown()
    for inst in insts:
        inst.stop()


def _hardlink_tree(src: Path, dst: Path) -> Path:
    """A copy of ``src`` (file or folder) inside the folder ``dst`` made of hard links, so that
    Syncthing's marker and index never touch the source the other tools read."""
    dst.mkdir(parents=True)
    if src.is_file():
        os.link(src, dst / src.name)
        return dst
    for p in src.rglob("*"):
        q = dst / src.name / p.relative_to(src)
        if p.is_dir():
            q.mkdir(parents=True, exist_ok=True)
        else:
            q.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, q)
    return dst


def run_syncthing(link: Link, tmp: Path, src: Path, rate: float,
                  outages: Outages | None = None) -> dict:
    """Transfer only, as bench/_syncthing.py times it: A has scanned (B's folder paused), then
    from un-pausing B's folder until B is idle and complete (REST polled every ST_POLL_S)."""
    payload = payload_of(src)
    folder_a, folder_b = _hardlink_tree(src, tmp / "st-src"), tmp / "dst"
    n_files = len(digest(src))
    a, b = syncthing_pair(link, tmp, folder_a, folder_b)
    note = ""
    try:
        a.set_folder_paused(False)
        wait_for(lambda: _scanned(a, n_files, payload), "Syncthing A has scanned the folder")
        deadline = deadline_for(payload, rate, outages)
        link.zero_counters()
        rx0, tx0, t0 = cpu_seconds(b.proc.pid), cpu_seconds(a.proc.pid), time.monotonic()
        if outages:
            outages.start(link, t0)
        b.set_folder_paused(False)
        done, last_change = -1, t0
        while True:
            b.check_alive()
            try:
                if _complete(b, n_files):
                    break
                # progress: bytes B's connection to A received (inSyncBytes moves per whole
                # file only, so one big file would look stalled)
                conns = b.get("/rest/system/connections").get("connections", {})
                have = conns.get(a.device_id, {}).get("inBytesTotal", 0)
            except OSError:           # URLError too: REST busy or restarting the folder
                have = done
            now = time.monotonic()
            if have > done:
                done, last_change = have, now
            if now - last_change > stall_for(outages) or now - t0 > deadline:
                st = b.folder_status()
                note = (f"did not finish: {st.get('inSyncBytes', 0) / MiB:.2f} of "
                        f"{payload / MiB:.1f} MiB in sync after {now - t0:.0f} s "
                        f"({max(done, 0) / MiB:.2f} MiB received)")
                break
            time.sleep(ST_POLL_S)
        seconds = time.monotonic() - t0 if not note else None
        applied = outages.stop() if outages else 0
        rx, tx = cpu_seconds(b.proc.pid) - rx0, cpu_seconds(a.proc.pid) - tx0
        wire = link.stats()
    finally:
        stop_syncthing(b, a)
    if not note and digest(folder_b) != digest(src):
        raise BenchError("Syncthing's copy differs")
    return figures("syncthing", seconds, payload, rate, wire, rx, tx, note,
                   outages_applied=applied, folder=FOLDER_ID)


RUNNERS = {"schoolmesh": run_schoolmesh, "rsync": run_rsync, "syncthing": run_syncthing}
