"""Text inside files: extraction throughput, and search over a library with extracted text.

    .venv/bin/python bench/extract_search.py [--quick] [--files N] [--resources N] [--keep]

1. Extraction. Generates a mixed folder of real files with the same libraries teachers' tools
   produce them with (python-docx, python-pptx, openpyxl, fpdf2; plus .txt/.md), Chinese and
   English text of varying length, then
   a. reads their text with ``node.textindex.extract_text`` in a fresh child process: MiB/s and
      files/s per format and overall, and the child's peak RSS (ru_maxrss) over its RSS after
      importing the libraries;
   b. publishes the folder as resources of 10 files and lets the indexer
      (``textindex.index_pass``, what the node's TextIndexer service runs) read them from the
      block store into the search index: MiB/s and files/s end to end.
2. Search. Builds a library of 100,000 resources through the library layer (as
   bench/search.py), each with ~600 characters of extracted file text in ``file_texts``,
   a creator, and for half of them textbook fields (grade, volume, edition, unit, lesson);
   then ~500 queries through ``catalog.search``: words of titles, words found only in file
   text, creators, textbook filters alone (sorted by unit and lesson) and with words. Reports
   p50/p95/p99 per kind (target: p95 < 50 ms).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import search as S  # noqa: E402

from node import catalog, feeds, library, textindex  # noqa: E402
from node.home import init_home, open_home  # noqa: E402
from protocol import records  # noqa: E402

SEED = 151515
P95_TARGET_MS = 50.0
FORMATS = ("docx", "pptx", "xlsx", "pdf", "txt", "md")
# words that appear only inside files (never in titles, descriptions or keywords)
BODY_ONLY = ["蚕豆发芽", "温度计", "量角器", "放大镜", "竖式计算", "课后反思", "板书设计",
             "小组合作", "教学目标", "学情分析", "thermometer", "protractor", "magnifier"]
TEACHERS = [f"{s}老师" for s in "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"]
EDITIONS = ["人教版", "北师大版", "统编版", "苏教版", "外研版", "沪教版", "湘教版", "部编版"]


def body_text(g: S.Gen, n_words: int) -> str:
    r = g.r
    words = g.zh(n_words // 2) + g.en(n_words // 4) + r.choices(S.ZH_FILLER, k=n_words // 4)
    if r.random() < 0.3:
        words.append(r.choice(BODY_ONLY))
    r.shuffle(words)
    return "".join(w if '\u4e00' <= w[0] <= '\u9fff' else f" {w} " for w in words)


# -- 1. extraction ---------------------------------------------------------------------------

def make_file(fmt: str, text: str, r: random.Random) -> bytes:
    paras = [text[i:i + 200] for i in range(0, len(text), 200)] or [text]
    out = io.BytesIO()
    if fmt == "docx":
        import docx
        d = docx.Document()
        for p in paras:
            d.add_paragraph(p)
        d.save(out)
    elif fmt == "pptx":
        import pptx
        pres = pptx.Presentation()
        for i in range(0, len(paras), 2):
            slide = pres.slides.add_slide(pres.slide_layouts[1])
            slide.shapes.title.text = paras[i][:30]
            slide.placeholders[1].text_frame.text = " ".join(paras[i:i + 2])
        pres.save(out)
    elif fmt == "xlsx":
        import openpyxl
        wb = openpyxl.Workbook()
        ws = wb.active
        for i, p in enumerate(paras, 1):
            ws.cell(row=i, column=1, value=p[:100])
            ws.cell(row=i, column=2, value=r.randint(0, 100))
        wb.save(out)
    elif fmt == "pdf":   # core fonts are Latin-1: the PDFs carry the English words
        from fpdf import FPDF
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        latin = " ".join(w for w in text.split() if w.isascii()) or "lesson"
        pdf.multi_cell(0, 5, text=latin * 3)
        return bytes(pdf.output())
    else:
        return text.encode("utf-8")
    return out.getvalue()


def make_folder(folder: Path, n: int) -> dict[str, int]:
    g = S.Gen(SEED)
    r = random.Random(SEED)
    sizes: dict[str, int] = defaultdict(int)
    for i in range(n):
        fmt = FORMATS[i % len(FORMATS)]
        text = body_text(g, r.choice([200, 800, 3000, 12000]))
        data = make_file(fmt, text, r)
        sub = folder / f"r{i // 10:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.{fmt}").write_bytes(data)
        sizes[fmt] += len(data)
    return dict(sizes)


def extract_child(folder: Path) -> None:
    """--extract-only: read every file's text here; print JSON figures."""
    import docx  # noqa: F401  (import the libraries before the RSS baseline)
    import openpyxl  # noqa: F401
    import pptx  # noqa: F401
    import pypdf  # noqa: F401
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    per: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])  # files, bytes, s, chars
    errors = 0
    for p in sorted(folder.rglob("*.*")):
        data = p.read_bytes()
        a = time.perf_counter()
        try:
            text = textindex.extract_text(data, p.name)
        except textindex.ExtractError:
            errors += 1
            text = ""
        dt = time.perf_counter() - a
        row = per[p.suffix[1:]]
        row[0] += 1
        row[1] += len(data)
        row[2] += dt
        row[3] += len(text)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"per": per, "errors": errors, "base_rss_mib": base_kib / 1024,
                      "peak_rss_mib": peak_kib / 1024}))


def bench_extract(tmp: Path, n: int) -> dict:
    folder = tmp / "files"
    a = time.perf_counter()
    sizes = make_folder(folder, n)
    total = sum(sizes.values())
    print(f"   generated {n} files, {total / C.MiB:.1f} MiB in {time.perf_counter() - a:.1f} s: "
          + ", ".join(f"{k} {v / C.MiB:.1f} MiB" for k, v in sizes.items()), flush=True)
    out = subprocess.run([sys.executable, __file__, "--extract-only", str(folder)],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    rows = []
    tf = tb = ts = tc = 0
    for fmt in FORMATS:
        f, b, s, ch = res["per"].get(fmt, [0, 0, 0.0, 0])
        tf, tb, ts, tc = tf + f, tb + b, ts + s, tc + ch
        rows.append([fmt, int(f), b / C.MiB, (b / C.MiB) / s if s else 0, f / s if s else 0,
                     int(ch)])
    rows.append(["ALL", int(tf), tb / C.MiB, (tb / C.MiB) / ts, tf / ts, int(tc)])
    print()
    print("a. extract_text in a child process (one core)")
    print(C.fmt_table(["format", "files", "MiB", "MiB/s", "files/s", "chars"], rows))
    print(f"   peak RSS {res['peak_rss_mib']:.0f} MiB (after importing the libraries: "
          f"{res['base_rss_mib']:.0f} MiB); errors {res['errors']}", flush=True)
    # b. end to end through the indexer
    home = init_home(tmp / "home-x", "Extract Bench School", "school")
    for sub in sorted(folder.iterdir()):
        library.publish(home, [sub], {"title": sub.name})
    a = time.perf_counter()
    skip: set[int] = set()
    while textindex.index_pass(home, skip, seconds=60):
        pass
    e2e = time.perf_counter() - a
    done = home.conn.execute("SELECT count(*), sum(length(text)) FROM file_texts").fetchone()
    home.close()
    print(f"b. indexer end to end (block store -> text -> FTS row): {done[0]} files in "
          f"{e2e:.1f} s = {tb / C.MiB / e2e:.2f} MiB/s, {done[0] / e2e:.1f} files/s", flush=True)
    return {"files": int(tf), "mib": round(tb / C.MiB, 1),
            "extract_mib_s": round(tb / C.MiB / ts, 2), "extract_files_s": round(tf / ts, 1),
            "indexer_mib_s": round(tb / C.MiB / e2e, 2), "indexer_files_s": round(done[0] / e2e, 1),
            "peak_rss_mib": round(res["peak_rss_mib"]), "base_rss_mib": round(res["base_rss_mib"])}


# -- 2. search -------------------------------------------------------------------------------

def curriculum(r: random.Random) -> dict:
    if r.random() < 0.5:
        return {}
    return {"grade": r.randint(1, 9), "volume": r.choice(["first", "second"]),
            "edition": r.choice(EDITIONS),
            "unit": {"number": r.randint(1, 8), "title": "".join(S.ZH_TOPICS[r.randint(0, 40)])},
            "lesson": {"number": r.randint(1, 6)}}


def build(home_path: Path, n: int) -> dict:
    home = init_home(home_path, "Search Bench School", "school")
    key = home.key()
    conn = home.conn
    g, r = S.Gen(SEED), random.Random(SEED + 7)
    t0 = time.perf_counter()
    seq, prev = feeds.head(conn, key.public.raw)
    done = 0
    while done < n:
        k = min(S.BATCH, n - done)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for j in range(k):
                i = done + j
                meta = g.meta()
                meta["creator"] = r.choice(TEACHERS)
                meta.update(curriculum(r))
                body = S.body_for(i, meta)
                f = body["files"][0]
                conn.execute("INSERT OR IGNORE INTO file_texts VALUES (?,?,NULL,0)",
                             (f["cid"], body_text(g, r.randint(100, 300))))
                entry = records.sign_entry(key, seq=seq + 1, prev=prev,
                                           time=1_700_000_000_000 + i, kind=records.KIND_PUBLISH,
                                           body=body)
                feeds.append(conn, entry)
                seq, prev = entry.seq, entry.hash
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        done += k
        if done % 20_000 == 0 or done == n:
            print(f"   built {done:,}/{n:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
    total = time.perf_counter() - t0
    home.close()
    db_bytes = sum(p.stat().st_size for p in home_path.glob("schoolmesh.db*"))
    return {"total": total, "db_bytes": db_bytes}


KINDS = ["title-word", "file-text word", "creator", "textbook filter", "textbook+word",
         "zh-1char", "en-2words"]


def make_queries(per_kind: int) -> list[tuple[str, str | None, dict]]:
    r = random.Random(SEED + 1)
    g = S.Gen(SEED + 2)
    out = []
    for _ in range(per_kind):
        out.append(("title-word", r.choice(S.ZH_TOPICS[:60]), {}))
        out.append(("file-text word", r.choice(BODY_ONLY), {}))
        out.append(("creator", r.choice(TEACHERS), {}))
        f: dict = {"grade": r.randint(1, 9), "edition": r.choice(EDITIONS)}
        if r.random() < 0.5:
            f["volume"] = r.choice(["first", "second"])
        out.append(("textbook filter", None, f))
        out.append(("textbook+word", g.zh()[0], {"grade": r.randint(1, 9),
                                                 "edition": r.choice(EDITIONS)}))
        out.append(("zh-1char", r.choice(S.ZH_SINGLE), {}))
        out.append(("en-2words", " ".join(g.en(2)), {}))
    r.shuffle(out)
    return out


def bench_search(tmp: Path, n: int, nq: int) -> dict:
    home_path = tmp / "home-s"
    b = build(home_path, n)
    print(f"   build: {n:,} resources with file text in {b['total']:.0f} s; database "
          f"{b['db_bytes'] / C.MiB:.0f} MiB", flush=True)
    home = open_home(home_path)
    conn = home.conn
    catalog.search(conn, "数学")
    lat: dict[str, list[float]] = defaultdict(list)
    hits: dict[str, list[int]] = defaultdict(list)
    ordered = True
    for kind, q, f in make_queries(max(1, nq // len(KINDS))):
        a = time.perf_counter()
        rows = catalog.search(conn, q, **f)
        lat[kind].append((time.perf_counter() - a) * 1000)
        hits[kind].append(len(rows))
        if kind == "textbook filter":
            keys = [(x.get("unit", {}).get("number", 999), x.get("lesson", {}).get("number", 999))
                    for x in rows]
            ordered &= keys == sorted(keys)
    every = [x for v in lat.values() for x in v]
    rows = [[k, len(v), C.percentile(v, 50), C.percentile(v, 95), C.percentile(v, 99), max(v),
             sum(hits[k]) / len(hits[k])] for k, v in lat.items()]
    rows.append(["ALL", len(every), C.percentile(every, 50), C.percentile(every, 95),
                 C.percentile(every, 99), max(every), float("nan")])
    print()
    print(f"search latency in ms on {n:,} resources with file text (limit 20)")
    print(C.fmt_table(["query kind", "n", "p50", "p95", "p99", "max", "mean rows"], rows))
    p95 = C.percentile(every, 95)
    print(f"textbook-filter results in unit, lesson order: {C.yesno(ordered)}")
    print(f"target met: {C.yesno(p95 < P95_TARGET_MS)}  (p95 {p95:.1f} ms < "
          f"{P95_TARGET_MS:.0f} ms); peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
    home.close()
    return {"resources": n, "queries": len(every), "build_s": round(b["total"]),
            "db_mib": round(b["db_bytes"] / C.MiB), "p50_ms": round(C.percentile(every, 50), 2),
            "p95_ms": round(p95, 2), "p99_ms": round(C.percentile(every, 99), 2),
            "p95_by_kind_ms": {k: round(C.percentile(v, 95), 2) for k, v in lat.items()},
            "textbook_order": ordered, "target_met": p95 < P95_TARGET_MS}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--extract-only":
        extract_child(Path(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 files, 5,000 resources")
    ap.add_argument("--files", type=int)
    ap.add_argument("--resources", type=int)
    ap.add_argument("--queries", type=int, default=504)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    nf = args.files or (60 if args.quick else 300)
    n = args.resources or (5_000 if args.quick else 100_000)
    C.header(f"extract_search: text of {nf} files; search over {n:,} resources", args.quick)
    tmp = C.make_tmpdir("extract")
    print(f"   scratch folder: {tmp}", flush=True)
    try:
        ex = bench_extract(tmp, nf)
        se = bench_search(tmp, n, args.queries)
        C.summary("extract_search", {"quick": args.quick, "extract": ex, "search": se,
                                     "targets": {"search p95 < 50 ms": se["target_met"]}})
    finally:
        C.done_with(tmp, args.keep)


if __name__ == "__main__":
    main()
