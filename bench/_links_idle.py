"""bench/links.py, idle traffic: what connected nodes put on the link while nobody does
anything.

``idle_pair`` (a school and a village that follows it), ``idle_syncthing`` (two Syncthing
instances sharing a synced folder) and ``idle_community`` (a demonstration school and N
villages that joined its community with invite codes) each set the nodes up, wait SETTLE_S,
then count the link's bytes for ``seconds``; they return one row per node.
"""

from __future__ import annotations

import time
from pathlib import Path

from _links_tools import Daemon, BenchError, stop_syncthing, syncthing_pair, wait_for
from _syncthing import _complete
from linkemu import Link, LinkStats

SETTLE_S = 30.0           # after set-up, before counting (re-announcements of a new head)
DAY = 86400.0


def node_bytes(stats: LinkStats, k: int) -> tuple[int, int]:
    """(sent, received) wire bytes of node k: whole IPv4 packets delivered across the link."""
    n = len(stats.delivered)
    return (sum(stats.delivered[k][j] for j in range(n)),
            sum(stats.delivered[j][k] for j in range(n)))


def per_day(nbytes: float, seconds: float) -> float:
    return nbytes * DAY / seconds


def tcp_connections(link: Link, k: int) -> int:
    """Established TCP connections of node k with other nodes of the link."""
    out = link.run(k, ["ss", "-Htn", "state", "established", "dst", "10.77.0.0/24"],
                   capture_output=True, text=True, timeout=30)
    return len([line for line in out.stdout.splitlines() if line.strip()])


def _traffic_delta(before: dict, after: dict) -> dict[str, int]:
    """Bytes (sent + received) per protocol between two ``status --json`` ``traffic``s."""
    out = {}
    for proto, v in after.items():
        b = before.get(proto, {"sent": 0, "received": 0})
        out[proto] = (v["sent"] - b["sent"]) + (v["received"] - b["received"])
    return out


def _idle(seconds: float, alive) -> float:
    t0 = time.monotonic()
    while (left := seconds - (time.monotonic() - t0)) > 0:
        alive()
        time.sleep(min(left, 5.0))
    return time.monotonic() - t0


def measure_daemons(link: Link, daemons: list[Daemon], roles: list[str],
                    seconds: float) -> list[dict]:
    time.sleep(SETTLE_S)
    t_before = [d.cli("status")["traffic"] for d in daemons]
    link.zero_counters()

    def alive() -> None:
        for d in daemons:
            if d.proc.poll() is not None:
                raise BenchError(f"{d.home.name} exited:\n{d.tail()}")
    elapsed = _idle(seconds, alive)
    stats = link.stats()
    rows = []
    for k, (d, role) in enumerate(zip(daemons, roles)):
        sent, received = node_bytes(stats, k)
        traffic = _traffic_delta(t_before[k], d.cli("status")["traffic"])
        rows.append({"node": d.home.name, "role": role, "seconds": round(elapsed, 1),
                     "wire_sent": sent, "wire_received": received,
                     "mb_per_day": round(per_day(sent + received, elapsed) / 1e6, 3),
                     "peers": len(d.cli("peers")), "tcp": tcp_connections(link, k),
                     "traffic": traffic,
                     "traffic_kb_per_day": {p: round(per_day(b, elapsed) / 1e3, 1)
                                            for p, b in traffic.items()}})
    return rows


def idle_pair(link: Link, tmp: Path, seconds: float) -> list[dict]:
    school, village = Daemon(link, 0, tmp / "school"), Daemon(link, 1, tmp / "village")
    for d in (school, village):
        d.init()
    note = tmp / "note.txt"
    note.write_text("idle bench\n")
    rid = school.cli("publish", str(note), "--title", "Idle bench")["resource_id"]
    try:
        school.start()
        village.start()
        village.cli("follow", school.cli("id")["school_id"])
        village.cli("connect", school.addr())
        wait_for(lambda: any(r["resource_id"] == rid for r in village.cli("search", "Idle")),
                 "the village has the school's catalog")
        return measure_daemons(link, [school, village], ["school", "village (follows)"],
                               seconds)
    finally:
        village.stop()
        school.stop()


def idle_syncthing(link: Link, tmp: Path, seconds: float) -> list[dict]:
    src = tmp / "st-src"
    src.mkdir()
    (src / "note.txt").write_text("idle bench\n")
    a, b = syncthing_pair(link, tmp, src, tmp / "dst")
    try:
        a.set_folder_paused(False)
        b.set_folder_paused(False)
        wait_for(lambda: _complete(b, 1), "Syncthing B has the folder")
        time.sleep(SETTLE_S)
        link.zero_counters()

        def alive() -> None:
            a.check_alive()
            b.check_alive()
        elapsed = _idle(seconds, alive)
        stats = link.stats()
        rows = []
        for k, inst in enumerate((a, b)):
            sent, received = node_bytes(stats, k)
            conns = inst.get("/rest/system/connections").get("connections", {})
            rows.append({"node": f"syncthing-{inst.name}", "role": "syncthing",
                         "seconds": round(elapsed, 1), "wire_sent": sent,
                         "wire_received": received,
                         "mb_per_day": round(per_day(sent + received, elapsed) / 1e6, 3),
                         "peers": sum(1 for c in conns.values() if c.get("connected")),
                         "tcp": tcp_connections(link, k), "traffic": {},
                         "traffic_kb_per_day": {}})
        return rows
    finally:
        stop_syncthing(b, a)


def idle_community(link: Link, tmp: Path, seconds: float) -> list[dict]:
    """Node 0: ``init --role demonstration``, ``community create``; nodes 1..N-1: ``init``,
    ``start``, ``community join CODE`` with a code from ``community invite`` (the seed is the
    demonstration school's listen address).  Counting starts once every node lists all N
    schools as active members."""
    n = link.nodes
    demo = Daemon(link, 0, tmp / "demo")
    villages = [Daemon(link, k, tmp / f"village{k}") for k in range(1, n)]
    demo.init("--role", "demonstration")
    for v in villages:
        v.init()
    everyone = [demo, *villages]
    try:
        demo.start()
        demo.cli("community", "create", "Links bench community")
        for v in villages:
            v.start()
            v.cli("community", "join", demo.cli("community", "invite")["code"])

        def complete() -> bool:
            for d in everyone:
                ms = d.cli("community", "members")["members"]
                if len([m for m in ms if m["status"] == "active"]) < n:
                    return False
            return True
        wait_for(complete, f"all {n} nodes list {n} active members", timeout=300)
        return measure_daemons(link, everyone,
                               ["demonstration"] + ["village"] * len(villages), seconds)
    finally:
        for d in reversed(everyone):
            d.stop()
