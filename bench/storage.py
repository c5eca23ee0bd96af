"""Storage: `schoolmesh gc` on a store of 100,000 blocks of which half are unpinned, and
`schoolmesh backup` / `init --restore` of a school with 1,000 own resources (issue 14).

gc: the store is built in-process (99,000 small blocks of 4 KiB in small.db and 1,000 file
blocks of 256 KiB, as directories of 1,000 entries; half of the directories pinned), then the
real CLI runs as a subprocess: `gc --dry-run`, `pins` (costs per reason) and `gc`, each with
wall time and peak RSS (/usr/bin/time -v).  Baseline: `search` on the same home (the CLI's
fixed cost).  Backup: 1,000 resources published in-process, then `backup -o` and
`init --restore` timed as subprocesses (each includes one scrypt derivation, ~0.6 s), with the
file size.  No targets are set; the figures go in the closing note.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import _common as C
from publish_large import peak_rss

PASS = "bench-backup-passphrase"


def build_store(home: Path, n_blocks: int, n_file_blocks: int) -> dict:
    from crypto import CID_RAW, make_cid
    from node import db
    from node.home import now_ms, open_home
    from protocol import unixfs
    rng = random.Random(14)
    h = open_home(home)
    t0 = time.perf_counter()
    dirs = []
    per_dir = unixfs.MAX_DIRECTORY_ENTRIES
    with h.blocks.batch() as batch:
        links: dict[str, unixfs.DagLink] = {}
        for i in range(n_blocks):
            size = 256 * 1024 if i < n_file_blocks else 4096
            data = rng.randbytes(size)
            cid = make_cid(CID_RAW, data)
            batch.put_trusted(cid, data)
            links[f"b{i:06d}.bin"] = unixfs.DagLink(cid, size, size)
            if len(links) == per_dir or i == n_blocks - 1:
                root, blocks = unixfs.directory_dag(links)
                for b in blocks:
                    batch.put_trusted(b.cid, b.data)
                dirs.append(root.cid)
                links = {}
    with db.write(h.conn) as conn:
        for n, root in enumerate(dirs):
            if n % 2 == 0:
                db.pin(conn, root, "user", f"bench {n}", now_ms())
    h.close()
    return {"dirs": len(dirs), "build_s": time.perf_counter() - t0}


def bench_gc(tmp: Path, n_blocks: int, n_file_blocks: int) -> dict:
    home = tmp / "gc-home"
    C.new_home(home)
    built = build_store(home, n_blocks, n_file_blocks)
    C.settle()
    base = C.cli_fixed_cost(home)
    out = {"blocks": n_blocks, "file_blocks": n_file_blocks, **built, "cli_fixed_s": base}
    for label, args in (("dry_run", ("gc", "--dry-run", "--json")),
                        ("pins", ("pins", "--json")), ("gc", ("gc", "--json"))):
        C.settle()
        rss, dt, how = peak_rss(home, *args)
        out[f"{label}_s"], out[f"{label}_rss_mb"] = dt, rss / 1e6
        out["rss_method"] = how
    _, cp = C.run_cli(home, "gc", "--json")
    out["second_gc_deleted"] = json.loads(cp.stdout)["blocks_deleted"]
    _, cp = C.run_cli(home, "verify", "--json")
    out["verify_ok_after"] = json.loads(cp.stdout)["ok"]
    return out


def bench_backup(tmp: Path, n_resources: int) -> dict:
    from node import library
    from node.home import init_home
    home = tmp / "school"
    h = init_home(home, "龙泉小学", "school")
    src = tmp / "src"
    src.mkdir()
    t0 = time.perf_counter()
    for i in range(n_resources):
        f = src / "lesson.md"
        f.write_text(f"# 第{i}课\n" + "练习。\n" * (i % 50), "utf-8")
        library.publish(h, [f], {"title": f"第{i}课 分数", "about": ["数学"],
                                 "educationalLevel": ["lower-primary"],
                                 "description": "分数的初步认识：" * 5})
    publish_s = time.perf_counter() - t0
    h.close()
    env = {**os.environ, "SCHOOLMESH_BACKUP_PASSPHRASE": PASS}
    os.environ.update(env)
    C.settle()
    out_file = tmp / "school.smb"
    backup_s, cp = C.run_cli(home, "backup", "-o", str(out_file), "--json")
    entries = json.loads(cp.stdout)["entries"]
    C.settle()
    restore_s, cp = C.run_cli(tmp / "restored", "init", "--restore", str(out_file), "--json")
    restored = json.loads(cp.stdout)
    db_bytes = (home / "schoolmesh.db").stat().st_size
    return {"resources": n_resources, "entries": entries, "publish_in_process_s": publish_s,
            "backup_s": backup_s, "restore_s": restore_s, "backup_bytes": out_file.stat().st_size,
            "db_bytes": db_bytes, "restored_feed_seq": restored["feed_seq"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    C.header("storage: gc and backup/restore", args.quick)
    tmp = C.make_tmpdir("storage")
    try:
        g = bench_gc(tmp, 10_000 if args.quick else 100_000, 100 if args.quick else 1_000)
        print(C.fmt_table(["step", "wall s", "peak RSS MB"], [
            ["search (CLI fixed cost)", g["cli_fixed_s"], ""],
            ["gc --dry-run", g["dry_run_s"], g["dry_run_rss_mb"]],
            ["pins (costs)", g["pins_s"], g["pins_rss_mb"]],
            ["gc", g["gc_s"], g["gc_rss_mb"]]]))
        print(f"   {g['blocks']} blocks ({g['file_blocks']} file blocks), {g['dirs']} directories, "
              f"half pinned; a second gc deleted {g['second_gc_deleted']}; verify after: "
              f"{g['verify_ok_after']} (RSS by {g['rss_method']})")
        b = bench_backup(tmp, 100 if args.quick else 1_000)
        print(C.fmt_table(["step", "wall s", "bytes"], [
            ["backup", b["backup_s"], b["backup_bytes"]],
            ["init --restore", b["restore_s"], b["db_bytes"]]]))
        print(f"   {b['resources']} resources ({b['entries']} entries), restored at entry "
              f"{b['restored_feed_seq']}; the school's database is {b['db_bytes']} bytes")
        C.summary("storage", {"gc": g, "backup": b})
    finally:
        C.done_with(tmp, args.keep)


if __name__ == "__main__":
    main()
