"""`make demo`: the paired-assistance story on embedded defaults, narrated step by step.

Three schools run real `schoolmesh` nodes as separate processes on 127.0.0.1, each with a
throwaway home (SQLite + files, no servers): a county demonstration school founds a community
and invites two village schools; both join by invite code; village A publishes the sample
lessons shipped in samples/; the demonstration school replicates and seeds them; village A goes
offline; village B finds them with search and gets them from the seed, byte-identical and
verified; the demonstration school publishes a course using them, village B adopts it with a
timetable starting today and its node fetches what the next two weeks' lessons need; the
demonstration school ends with the community report. Exits non-zero if any step does not do
what it says.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
EXE = Path(sys.executable).parent / "schoolmesh"
WAIT = 90.0   # seconds any one step may wait for the network


def step(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(home: Path, *args: str, json_out: bool = False, ok: bool = True,
        quiet: bool = False) -> object:
    cmd = [str(EXE), "--home", str(home), *args] + (["--json"] if json_out else [])
    shown = [a if len(a) < 70 else a[:40] + "…" for a in args]
    print(f"[{home.name}] $ schoolmesh " + " ".join(a if " " not in a else repr(a)
                                                  for a in shown), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if ok and res.returncode != 0:
        print(res.stdout + res.stderr, file=sys.stderr)
        raise SystemExit(f"demo step failed: schoolmesh {' '.join(shown)}")
    if not ok:
        return res
    if json_out:
        return json.loads(res.stdout)
    if quiet:
        return res.stdout
    print(res.stdout.rstrip())
    return res.stdout


def wait_until(check, what: str) -> float:
    """Poll ``check`` until it holds; return how long it took (the demo narrates it)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > WAIT:
            raise SystemExit(f"demo step failed: {what} did not happen within {WAIT:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - t0


class Daemons:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, home: Path) -> None:
        log = open(self.work / f"{home.name}.log", "w")
        proc = subprocess.Popen([str(EXE), "--home", str(home), "start", "--no-mdns", "--no-web",
                                 "--listen", "/ip4/127.0.0.1/tcp/0"],
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[home.name] = proc
        wait_until(lambda: (home / "control.json").exists() or proc.poll() is not None,
                   f"{home.name} starting")
        if proc.poll() is not None:
            self.tail(home.name)
            raise SystemExit(f"demo step failed: the node of {home.name} did not start")
        print(f"[{home.name}] node running (pid {proc.pid})")

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def tail(self, name: str) -> None:
        path = self.work / f"{name}.log"
        if path.exists():
            print("".join(path.read_text("utf-8", "replace").splitlines(True)[-15:]),
                  file=sys.stderr)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def _flip_one_bit(home: Path, cid_text: str) -> None:
    """Damage one stored block the way a failing disk would (it may live in small.db)."""
    import sqlite3

    from crypto import cid_from_str
    from node.blockstore import BlockStore
    store = BlockStore(home / "blocks")
    cid = cid_from_str(cid_text)
    data = bytearray(store.get(cid))
    data[0] ^= 0xFF
    if store.is_small(cid):
        with sqlite3.connect(home / "blocks" / "small.db") as db:
            db.execute("UPDATE small SET data = ? WHERE cid = ?", (bytes(data), cid))
    else:
        store.path(cid).write_bytes(bytes(data))
    store.close()
    print(f"(changed one byte of block {cid_text})")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="schoolmesh-demo-"))
    demo = work / "county-demonstration-school"
    village_a = work / "qingshan-village-school"
    village_b = work / "shiling-village-school"
    stranger = work / "another-school"
    daemons = Daemons(work)
    ok = False
    try:
        step("1. Three schools create their nodes (each a new signed identity)")
        run(demo, "init", "--name", "县实验小学 County Demonstration School",
            "--role", "demonstration")
        run(village_a, "init", "--name", "青山村小学 Qingshan Village School")
        run(village_b, "init", "--name", "石岭村小学 Shiling Village School")

        step("2. The three nodes start, as separate processes on 127.0.0.1")
        for home in (demo, village_a, village_b):
            daemons.start(home)

        step("3. The demonstration school founds the paired-assistance community")
        c = run(demo, "community", "create", "青山片区结对帮扶 Qingshan pairing community",
                "--description", "县实验小学与青山、石岭两所村小共享校本资源", json_out=True)
        print(f"community {c['community_id']}")

        step("4. It makes a one-time invite code for each village school")
        codes = [run(demo, "community", "invite", "--expires", "2d", json_out=True)["code"]
                 for _ in range(2)]
        print(f"code for Qingshan ({len(codes[0])} characters, copy-pastable):\n{codes[0]}")

        step("5. Both village schools join with their code (the seed checks it once)")
        run(village_a, "community", "join", codes[0])
        run(village_b, "community", "join", codes[1])
        print("a fourth school that got hold of Qingshan's (used) code tries it:")
        run(stranger, "init", "--name", "外校 Another School")
        daemons.start(stranger)
        res = run(stranger, "community", "join", codes[0], ok=False)
        print(res.stderr.strip())
        assert res.returncode != 0 and "used" in res.stderr, "a used invite was accepted"
        daemons.stop(stranger.name)

        step("6. Village A publishes the sample lessons (and a worksheet adapted from one)")
        frac = run(village_a, "publish", str(SAMPLES / "分数的初步认识"),
                   "--title", "分数的初步认识（第一课时）", "--subject", "数学",
                   "--level", "lower-primary", "--type", "lesson-plan", "--creator", "李老师",
                   "--keyword", "分数", "--keyword", "折纸", "--time-required", "PT40M",
                   "--description", "三年级上册：用折纸认识几分之一，含课堂练习。",
                   json_out=True)
        water = run(village_a, "publish", str(SAMPLES / "water-cycle"),
                    "--title", "The Water Cycle", "--subject", "science",
                    "--level", "upper-primary", "--language", "en", "--type", "lesson-plan",
                    "--license", "CC-BY-SA-4.0", json_out=True)
        adapted = run(village_a, "publish", str(SAMPLES / "分数的初步认识" / "练习题.txt"),
                      "--title", "分数练习（复式班改编）", "--subject", "数学",
                      "--level", "lower-primary", "--type", "worksheet",
                      "--based-on", frac["resource_id"], json_out=True)
        published = {r["resource_id"] for r in (frac, water, adapted)}
        print(f"published {len(published)} resources: {', '.join(sorted(published))}")

        step("7. The demonstration school replicates Qingshan's catalog and seeds its content")

        def seeded() -> set[str]:
            pins = run(demo, "pins", json_out=True)["pins"]
            return {p["resource_id"] for p in pins if p["reason"] == "community"}
        took = wait_until(lambda: published <= seeded(), "seeding at the demonstration school")
        run(demo, "pins")
        print(f"all {len(published)} resources pinned by the demonstration school "
              f"{took:.1f} s after publishing")

        step("8. Village A goes offline (its node stops)")
        daemons.stop(village_a.name)
        print("Qingshan's node is stopped: its resources can now come only from the seed")

        step("9. Village B finds them in its catalog, in Chinese and in English")
        wait_until(lambda: len(run(village_b, "search", json_out=True)) >= len(published),
                   "Qingshan's catalog reaching Shiling")
        run(village_b, "community", "members")
        run(village_b, "search", "分数")
        run(village_b, "search", "cycles", "--language", "en")
        run(village_b, "show", adapted["resource_id"])

        step("10. Village B gets them from the demonstration school, verified block by block")
        out = work / "download"
        run(village_b, "get", water["resource_id"], "-o", str(out / "water"))
        run(village_b, "get", frac["resource_id"], "-o", str(out / "frac"))
        for got, src in ((out / "water", SAMPLES / "water-cycle"),
                         (out / "frac", SAMPLES / "分数的初步认识")):
            cmp = filecmp.dircmp(got, src)
            assert not (cmp.diff_files or cmp.left_only or cmp.right_only), "files differ"
            assert all(filecmp.cmp(got / n, src / n, shallow=False) for n in cmp.common_files)
        print("byte-identical to samples/ although the publisher is offline")
        run(village_b, "verify")

        step("11. A course: the demonstration school publishes a two-unit course using these "
             "lessons; Shiling adopts it for a class, with a timetable starting today")
        outline = work / "course.txt"
        outline.write_text(
            "title: 三年级数学与科学（上册）示范课程\nsubject: 数学\ngrade: 3\nvolume: 上册\n"
            "edition: 人教版\ndescription: 县实验小学为村小准备的专递课堂课程\n\n"
            f"# 1 分数的初步认识\n- 1 认识几分之一 (2 课时): {frac['resource_id']}\n"
            f"- 2 分数练习: {adapted['resource_id']}\n\n"
            f"# 2 水的循环\n- 1 The Water Cycle: {water['resource_id']}\n", "utf-8")
        course = run(demo, "course", "create", str(outline), json_out=True)
        kid = course["course_id"]
        print(f"course {kid}: {course['lessons']} lessons in 2 units")
        wait_until(lambda: any(c["course_id"] == kid for c in
                               run(village_b, "course", "list", json_out=True)),
                   "the course reaching Shiling")
        run(village_b, "course", "show", kid)
        run(village_b, "course", "adopt", kid, "--class", "三年级（1）班", "--timetable",
            "mon:2 tue:2 wed:2 thu:2 fri:2", "--days", "14")

        def lessons_ready() -> bool:
            st = run(village_b, "course", "status", json_out=True)
            return bool(st[0]["lessons"]) and all(le["status"] == "ready"
                                                  for le in st[0]["lessons"])
        took = wait_until(lessons_ready, "the coming lessons' resources reaching Shiling")
        run(village_b, "course", "status")
        kept = {(p["resource_id"], p["reason"]) for p in
                run(village_b, "pins", json_out=True)["pins"]}
        assert (adapted["resource_id"], "course") in kept, "the course did not fetch the worksheet"
        print(f"the lessons of the next two weeks are on Shiling's node ({took:.1f} s after "
              "adopting; the worksheet came from the demonstration school's seed)")

        step("12. Tampering is caught: one byte of a block stored at Shiling is changed on disk")
        daemons.stop(village_b.name)
        _flip_one_bit(village_b, water["files"][0]["cid"])
        res = run(village_b, "verify", ok=False)
        print(res.stdout.rstrip())
        assert res.returncode == 1, "verify did not catch a corrupted block"
        print(f"verify exited {res.returncode}: the damaged block is reported")

        step("13. The community report, computed by the demonstration school from signed entries")
        run(demo, "report", "announce", "--force")
        text = run(demo, "report")
        assert "computed from 3 feeds" in str(text), "the report does not cover the 3 schools"
        rep = json.loads(run(demo, "report", "--format", "json", json_out=False, quiet=True))
        print(f"JSON report: {len(rep['heads'])} feed heads, "
              f"{sum(p['published'] + p['adapted'] for p in rep['publications'])} resources "
              f"published or adapted, {len(rep['audit']['rare'])} held by fewer than 2 schools "
              "(any school holding the same feeds computes the same bytes)")
        print("\nDemo finished: joined by invite, seeded by the demonstration school, fetched "
              "while the publisher was offline. All steps passed.")
        ok = True
    finally:
        daemons.stop_all()
        if not ok:
            for name in ("county-demonstration-school", "qingshan-village-school",
                         "shiling-village-school"):
                print(f"--- last lines of {name}'s node log", file=sys.stderr)
                daemons.tail(name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
