"""`make demo`: the main job on embedded defaults, narrated step by step.

Runs the real `schoolmesh` command in a throwaway home (SQLite + files, no servers): a village
school publishes the sample lessons shipped in samples/, adapts one, searches in Chinese and
English, shows, gets and verifies them. Exits non-zero if any step does not do what it says.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
EXE = Path(sys.executable).parent / "schoolmesh"


def step(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(home: Path, *args: str, json_out: bool = False) -> object:
    cmd = [str(EXE), "--home", str(home), *args] + (["--json"] if json_out else [])
    print("$ schoolmesh " + " ".join(a if " " not in a else repr(a) for a in args), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        print(res.stdout + res.stderr, file=sys.stderr)
        raise SystemExit(f"demo step failed: schoolmesh {' '.join(args)}")
    if json_out:
        return json.loads(res.stdout)
    print(res.stdout.rstrip())
    return res.stdout


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
    home = work / "qingshan-village-school"
    try:
        step("1. A village school creates its node (a new signed identity)")
        run(home, "init", "--name", "青山村小学 Qingshan Village School")
        run(home, "id")

        step("2. Teacher Li publishes a Chinese maths lesson plan with its worksheet")
        frac = run(home, "publish", str(SAMPLES / "分数的初步认识"),
                   "--title", "分数的初步认识（第一课时）", "--subject", "数学",
                   "--level", "lower-primary", "--type", "lesson-plan", "--creator", "李老师",
                   "--keyword", "分数", "--keyword", "折纸", "--time-required", "PT40M",
                   "--description", "三年级上册：用折纸认识几分之一，含课堂练习。",
                   "--supply", "school", json_out=True)
        print(json.dumps(frac, ensure_ascii=False, indent=2))

        step("3. Teacher Wang publishes an English science lesson (plan, worksheet, diagram)")
        water = run(home, "publish", str(SAMPLES / "water-cycle"), "--title", "The Water Cycle",
                    "--subject", "science", "--level", "upper-primary", "--language", "en",
                    "--type", "lesson-plan", "--license", "CC-BY-SA-4.0", json_out=True)
        print(f"{water['resource_id']}: {len(water['files'])} files, "
              f"content {water['content_cid']}")

        step("4. Adapting: a worksheet-only version for the mixed-age class, based on step 2")
        adapted = run(home, "publish", str(SAMPLES / "分数的初步认识" / "练习题.txt"),
                      "--title", "分数练习（复式班改编）", "--subject", "数学",
                      "--level", "lower-primary", "--type", "worksheet",
                      "--based-on", frac["resource_id"], json_out=True)

        step("5. Searching the library in Chinese (two-character word, single character) and English")
        run(home, "search", "分数")
        run(home, "search", "诗")  # nothing: no poetry published yet
        run(home, "search", "cycles", "--language", "en")
        run(home, "search", "--level", "lower-primary", "--type", "worksheet")

        step("6. Showing a resource: metadata, versions, lineage, signature status")
        run(home, "show", frac["resource_id"])

        step("7. A new version: the description changes, the files keep their CIDs")
        v2 = run(home, "update", frac["resource_id"], "--description",
                 "三年级上册：折纸认识几分之一（修订：增加复式班提示）。", json_out=True)
        assert v2["version"] == 2 and v2["files"] == frac["files"], "update changed the files"
        print(f"version {v2['version']}, same files: yes")

        step("8. Getting the files back, verified block by block, and comparing with the originals")
        out = work / "download"
        run(home, "get", water["resource_id"], "-o", str(out))
        cmp = filecmp.dircmp(out, SAMPLES / "water-cycle")
        assert not (cmp.diff_files or cmp.left_only or cmp.right_only), "files differ"
        assert all(filecmp.cmp(out / n, SAMPLES / "water-cycle" / n, shallow=False)
                   for n in cmp.common_files)
        print("byte-identical to samples/water-cycle")

        step("9. The school's signed feed, then a full verification of signatures, chain and blocks")
        run(home, "feed")
        run(home, "verify")

        step("10. Tampering is caught: one byte of a stored block is changed on disk")
        _flip_one_bit(home, water["files"][0]["cid"])
        res = subprocess.run([str(EXE), "--home", str(home), "verify"], capture_output=True,
                             text=True, timeout=120)
        print(res.stdout.rstrip())
        assert res.returncode == 1, "verify did not catch a corrupted block"
        print(f"verify exited {res.returncode}: the damaged block is reported")
        print(f"\nDemo finished. Adapted resource: {adapted['resource_id']}. All steps passed.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
