"""Catalog search latency on a library of 100,000 resources.

    .venv/bin/python bench/search.py [--quick] [--resources N] [--queries N] [--profile] [--keep]

Builds a home directly through the library layer (records.sign_entry + feeds.append inside
db.write transactions of 1,000 entries, exactly as library._append_own does one at a time),
with synthetic resources whose titles, descriptions, subjects and keywords mix Chinese and
English words drawn with a Zipf-like skew (a few words are very common, as in a real library).
Then runs ~500 queries through node.catalog.search on a freshly opened home and reports
p50/p95/p99 latency overall and per query kind (target: p95 < 20 ms), against the baseline of a
trivial ``SELECT 1`` round trip on the same connection.  --profile runs the query mix again
under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from crypto import CID_DAG_PB, CID_RAW, make_cid  # noqa: E402
from node import catalog, db, feeds  # noqa: E402
from node.home import init_home, open_home  # noqa: E402
from protocol import records, vocab  # noqa: E402

SEED = 424242
BATCH = 1000
P95_TARGET_MS = 20.0

# Chinese topic words (2-4 characters), most common first.
ZH_TOPICS = """
数学 语文 分数 加法 古诗 英语 科学 地理 历史 音乐 美术 体育 植物 动物 天气 水循环
减法 乘法 除法 小数 面积 周长 三角形 长方形 拼音 汉字 识字 阅读 作文 唐诗 宋词 成语
寓言 童话 地球 太阳 月亮 四季 细胞 电路 磁铁 声音 光合作用 食物链 生态系统 火山 地震
河流 山脉 节气 春节 中秋 书法 剪纸 民歌 舞蹈 篮球 足球 跳绳 乒乓球 安全 卫生 环保
垃圾分类 方程 函数 几何 统计 概率 比例 百分数 乘法口诀 认识时间 人民币 长度单位 重量
诗歌朗诵 课文 生字 标点符号 修辞 说明文 记叙文 议论文 文言文 口语交际 昆虫 鸟类 鱼类
森林 草原 沙漠 海洋 气候 地图 指南针 中国 长城 黄河 长江 丝绸之路 农业 种子 发芽
""".split()
# Four-character phrases that occur inside titles (two topics run together) or as words.
ZH_FOUR = ["光合作用", "垃圾分类", "生态系统", "乘法口诀", "认识时间", "长度单位", "诗歌朗诵",
           "标点符号", "口语交际", "丝绸之路", "分数加法", "古诗阅读", "天气四季", "植物种子",
           "动物昆虫", "三角面积", "汉字书法", "地球太阳", "小数乘法", "森林动物"]
ZH_SUBJECTS = ["数学", "语文", "英语", "科学", "地理", "历史", "音乐", "美术", "体育", "道德与法治",
               "信息技术", "劳动"]
ZH_GRADES = ["一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级"]
ZH_KINDS = ["教案", "课件", "练习", "微课", "学习单", "测验", "实验", "活动", "导学案", "复习"]
ZH_FILLER = ["的", "和", "与", "认识", "学习", "探究", "理解", "初步", "简单", "有趣"]
ZH_SINGLE = list("数学语文诗水天花鸟山河春秋日月人口手心火土木金书画歌舞球")

EN_TOPICS = """
fractions addition poetry english science geography history music art sports plants animals
weather water cycle subtraction multiplication division decimals area perimeter triangle
rectangle phonics reading writing grammar spelling vocabulary story fable fairy earth sun moon
seasons cells circuits magnets sound photosynthesis food chain ecosystem volcano earthquake
river mountain festival calligraphy papercut songs dance basketball football safety hygiene
recycling equations functions geometry statistics probability ratio percent time money length
weight punctuation essay narrative insects birds fish forest grassland desert ocean climate map
compass china wall yellow agriculture seeds germination energy electricity light shadow rocks
""".split()
EN_SUBJECTS = ["mathematics", "chinese", "english", "science", "geography", "history", "music",
               "art", "physical education", "ethics", "computing", "labour"]
EN_KINDS = ["worksheet", "lesson plan", "slides", "quiz", "activity", "micro-lecture", "exercises",
            "guide", "review", "experiment"]

LEVELS = list(vocab.LEVELS)
LEVEL_WEIGHTS = [3, 10, 10, 8, 5, 1, 1, 1, 2]


def zipf(n: int, s: float = 0.9) -> list[float]:
    return [1 / (i + 1) ** s for i in range(n)]


W_ZH, W_EN = zipf(len(ZH_TOPICS)), zipf(len(EN_TOPICS))


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def zh(self, k: int = 1) -> list[str]:
        return self.r.choices(ZH_TOPICS, W_ZH, k=k)

    def en(self, k: int = 1) -> list[str]:
        return self.r.choices(EN_TOPICS, W_EN, k=k)

    def meta(self) -> dict:
        r = self.r
        chinese = r.random() < 0.6
        if chinese:
            topics = list(dict.fromkeys(self.zh(r.randint(1, 3))))
            title = (r.choice(ZH_GRADES) if r.random() < 0.7 else "") + r.choice(ZH_SUBJECTS) \
                + "：" + "".join(topics) + r.choice(ZH_KINDS)
            desc_words = self.zh(r.randint(4, 12)) + r.choices(ZH_FILLER, k=4)
            r.shuffle(desc_words)
            desc = "".join(desc_words) + "。" + " ".join(self.en(r.randint(0, 2)))
            subjects = r.sample(ZH_SUBJECTS, r.randint(1, 2))
            if r.random() < 0.2:
                subjects.append(r.choice(EN_SUBJECTS))
            kw_pool = self.zh(r.randint(0, 5)) + self.en(r.randint(0, 1))
            lang = "zh-CN"
        else:
            topics = list(dict.fromkeys(self.en(r.randint(1, 3))))
            title = " ".join(t.capitalize() for t in topics) + " " + r.choice(EN_KINDS) \
                + f" for grade {r.randint(1, 9)}"
            desc_words = self.en(r.randint(6, 20))
            desc = " ".join(desc_words) + ". " + "".join(self.zh(r.randint(0, 2)))
            subjects = r.sample(EN_SUBJECTS, r.randint(1, 2))
            if r.random() < 0.2:
                subjects.append(r.choice(ZH_SUBJECTS))
            kw_pool = self.en(r.randint(0, 5)) + self.zh(r.randint(0, 1))
            lang = "en"
        meta = {"title": title[:200], "inLanguage": lang, "license": r.choice(vocab.LICENSES),
                "about": subjects,
                "educationalLevel": sorted(set(r.choices(LEVELS, LEVEL_WEIGHTS,
                                                         k=r.randint(1, 2))))}
        if r.random() < 0.6:
            meta["description"] = desc.strip()[:5000] or "x"
        keywords = list(dict.fromkeys(kw_pool))
        if keywords:
            meta["keywords"] = keywords
        if r.random() < 0.8:
            meta["learningResourceType"] = r.choice(vocab.RESOURCE_TYPES)
        return meta


def body_for(i: int, meta: dict) -> dict:
    content = make_cid(CID_DAG_PB, b"bench-dir-%d" % i)
    name = f"resource-{i}.pdf"
    return {"version": 1, "content": content,
            "files": [{"path": name, "cid": make_cid(CID_RAW, b"bench-file-%d" % i),
                       "size": 1000 + i % 50_000}],
            "meta": meta}


def build(home_path: Path, n: int) -> dict:
    home = init_home(home_path, "Search Bench School", "school")
    key = home.key()
    conn = home.conn
    g = Gen(SEED)
    t_sign = t_append = t_commit = 0.0
    t0 = time.perf_counter()
    seq, prev = feeds.head(conn, key.public.raw)
    t_ms = 1_700_000_000_000
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for j in range(k):
                i = done + j
                a = time.perf_counter()
                entry = records.sign_entry(key, seq=seq + 1, prev=prev, time=t_ms + i * 1000,
                                           kind=records.KIND_PUBLISH, body=body_for(i, g.meta()))
                b = time.perf_counter()
                feeds.append(conn, entry)
                t_append += time.perf_counter() - b
                t_sign += b - a
                seq, prev = entry.seq, entry.hash
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        a = time.perf_counter()
        conn.execute("COMMIT")
        t_commit += time.perf_counter() - a
        done += k
        if done % 20_000 == 0 or done == n:
            print(f"   built {done:,}/{n:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
    total = time.perf_counter() - t0
    home.close()
    db_bytes = sum(p.stat().st_size for p in home_path.glob("schoolmesh.db*"))
    return {"total": total, "sign": t_sign, "append": t_append, "commit": t_commit,
            "db_bytes": db_bytes}


# -- queries ---------------------------------------------------------------------------------

KINDS = ["en-1word", "en-2words", "zh-2char", "zh-4char", "zh-1char", "query+level",
         "filter-only"]


def make_queries(n_per_kind: int) -> list[tuple[str, str | None, dict]]:
    r = random.Random(SEED + 1)
    g = Gen(SEED + 2)
    two_char = [w for w in ZH_TOPICS if len(w) == 2]
    w2 = zipf(len(two_char))

    def text_query(kind: str) -> str:
        if kind == "en-1word":
            return g.en()[0]
        if kind == "en-2words":
            first = g.en()[0]
            while (second := g.en()[0]) == first:
                pass
            return f"{first} {second}"
        if kind == "zh-2char":
            return r.choices(two_char, w2)[0]
        if kind == "zh-4char":
            return r.choice(ZH_FOUR)
        if kind == "zh-1char":
            return r.choice(ZH_SINGLE)
        raise ValueError(kind)

    out = []
    for kind in KINDS:
        for _ in range(n_per_kind):
            if kind == "query+level":
                q = text_query(r.choice(KINDS[:5]))
                out.append((kind, q, {"level": [r.choices(LEVELS, LEVEL_WEIGHTS)[0]]}))
            elif kind == "filter-only":
                f: dict = {}
                x = r.random()
                if x < 0.4:
                    f["subject"] = [r.choice(ZH_SUBJECTS + EN_SUBJECTS)]
                elif x < 0.7:
                    f["level"] = [r.choices(LEVELS, LEVEL_WEIGHTS)[0]]
                else:
                    f["subject"] = [r.choice(ZH_SUBJECTS + EN_SUBJECTS)]
                    f["level"] = [r.choices(LEVELS, LEVEL_WEIGHTS)[0]]
                out.append((kind, None, f))
            else:
                out.append((kind, text_query(kind), {}))
    r.shuffle(out)
    return out


def describe(q: str | None, f: dict) -> str:
    parts = [repr(q)] if q else []
    parts += [f"{k}={v[0]}" for k, v in f.items()]
    return " ".join(parts)


def match_count(conn, q: str | None, f: dict) -> int:
    """How many live resources a query matches (plain SQL COUNT, not timed)."""
    where, args = ["retracted = 0"], []
    for s in f.get("subject", []):
        where.append("id IN (SELECT res FROM facets WHERE facet = 'about' AND value = ?)")
        args.append(s.casefold())
    for lv in f.get("level", []):
        where.append("id IN (SELECT res FROM facets WHERE facet = 'level' AND value = ?)")
        args.append(lv)
    if q:
        where.append("id IN (SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH ?)")
        args.append(catalog.fts_query(q))
    return conn.execute("SELECT count(*) FROM resources WHERE " + " AND ".join(where),
                        args).fetchone()[0]


class TimingConn:
    """Stands in for the connection given to catalog.search: runs each statement to completion
    (execute + fetchall) and adds up the time spent inside SQLite, so the rest of a search's
    time is its Python post-processing of the rows."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.sql_s = 0.0
        self.last_sql: tuple[str, tuple] | None = None

    def execute(self, sql: str, args: tuple = ()) -> "_Rows":
        a = time.perf_counter()
        rows = self.conn.execute(sql, args).fetchall()
        self.sql_s += time.perf_counter() - a
        self.last_sql = (sql, tuple(args))
        return _Rows(rows)


class _Rows:
    def __init__(self, rows: list) -> None:
        self.rows = rows

    def fetchall(self) -> list:
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


def per_call_costs(home) -> tuple[float, float]:
    """Microseconds per call of the two multiformats-based encoders on the hot paths."""
    from crypto import PublicKey, cid_to_str
    cid = make_cid(CID_DAG_PB, b"x")
    n = 500
    a = time.perf_counter()
    for _ in range(n):
        cid_to_str(cid)
    cid_us = (time.perf_counter() - a) / n * 1e6
    pk = PublicKey(home.feed)
    a = time.perf_counter()
    for _ in range(n):
        pk.school_id
    sid_us = (time.perf_counter() - a) / n * 1e6
    return cid_us, sid_us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5,000 resources, 140 queries")
    ap.add_argument("--resources", type=int)
    ap.add_argument("--queries", type=int, help="total queries (split evenly over the kinds)")
    ap.add_argument("--profile", action="store_true", help="run the queries again under cProfile")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (and home)")
    args = ap.parse_args()
    n = args.resources or (5_000 if args.quick else 100_000)
    nq = args.queries or (140 if args.quick else 504)
    per_kind = max(1, nq // len(KINDS))

    C.header(f"search: catalog.search on {n:,} resources", args.quick)
    tmp = C.make_tmpdir("search")
    home_path = tmp / "home"
    print(f"   scratch folder: {tmp}", flush=True)
    try:
        b = build(home_path, n)
        print(f"   build: {n:,} resources in {b['total']:.1f} s ({n / b['total']:,.0f}/s); "
              f"sign_entry {b['sign']:.1f} s, feeds.append (+catalog index) {b['append']:.1f} s, "
              f"COMMIT {b['commit']:.1f} s; database {b['db_bytes'] / C.MiB:.1f} MiB",
              flush=True)

        home = open_home(home_path)
        conn = home.conn
        # baseline: a trivial round trip on the same connection
        sel = []
        for _ in range(2000):
            a = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            sel.append((time.perf_counter() - a) * 1000)

        queries = make_queries(per_kind)
        a = time.perf_counter()
        catalog.search(conn, "数学")
        cold = (time.perf_counter() - a) * 1000
        lat: dict[str, list[float]] = defaultdict(list)
        sql_lat: dict[str, list[float]] = defaultdict(list)
        # (total ms, kind, query, filters, rows returned, ms inside SQLite, (sql, args))
        allq: list[tuple] = []
        tconn = TimingConn(conn)
        for kind, q, f in queries:
            tconn.sql_s = 0.0
            a = time.perf_counter()
            rows = catalog.search(tconn, q, **f)
            dt = (time.perf_counter() - a) * 1000
            lat[kind].append(dt)
            sql_lat[kind].append(tconn.sql_s * 1000)
            allq.append((dt, kind, q, f, len(rows), tconn.sql_s * 1000, tconn.last_sql))
        every = [x[0] for x in allq]
        every_sql = [x[5] for x in allq]

        def row(name: str, xs: list[float], hits: list[int] | None = None,
                sql: list[float] | None = None) -> list:
            nan = float("nan")
            return [name, len(xs), C.percentile(xs, 50), C.percentile(xs, 95),
                    C.percentile(xs, 99), max(xs),
                    C.percentile(sql, 50) if sql else nan, C.percentile(sql, 95) if sql else nan,
                    (sum(sql) / sum(xs) * 100) if sql else nan,
                    (sum(hits) / len(hits)) if hits else nan]

        rows = [row("SELECT 1 (baseline)", sel)]
        cid_us, sid_us = per_call_costs(home)
        for kind in KINDS:
            rows.append(row(kind, lat[kind], [x[4] for x in allq if x[1] == kind],
                            sql_lat[kind]))
        rows.append(row("ALL queries", every, [x[4] for x in allq], every_sql))
        p95 = C.percentile(every, 95)
        print()
        print(f"latency in ms, {len(every)} queries (limit 20) on {n:,} resources; "
              f"first query on the fresh connection {cold:.1f} ms (not counted)")
        print(C.fmt_table(["query kind", "n", "p50 ms", "p95 ms", "p99 ms", "max ms",
                           "SQL p50", "SQL p95", "SQL %", "mean rows"], rows))
        print("(SQL = time inside SQLite, execute + fetchall; the rest is catalog.search's "
              "Python work on the rows)")
        print(f"p95 overall / SELECT 1 p95 = {p95 / C.percentile(sel, 95):,.0f}x")
        mean_rows = sum(x[4] for x in allq) / len(allq)
        print(f"context: crypto.cid_to_str costs {cid_us:,.0f} us per call and search calls it once "
              f"per result row (mean {mean_rows:.1f} rows) = ~{cid_us * mean_rows / 1000:.1f} ms "
              f"of a mean query of {sum(every) / len(every):.1f} ms; PublicKey.school_id costs "
              f"{sid_us:,.0f} us per call (feeds.append/catalog index call it per entry)")
        print("slowest queries (all matches counted afterwards):")
        for dt, kind, q, f, _, sql_ms, _ in sorted(allq, key=lambda x: -x[0])[:8]:
            print(f"   {dt:7.1f} ms (SQL {sql_ms:6.1f})  {kind:<12} {describe(q, f):<36} "
                  f"{match_count(conn, q, f):>7,} matches")
        print("query plans of the slowest text query and the slowest filter-only query:")
        for want in (lambda x: x[2] is not None, lambda x: x[2] is None):
            cand = [x for x in allq if want(x)]
            if cand:
                x = max(cand, key=lambda x: x[0])
                sql, qargs = x[6]
                print(f"   {describe(x[2], x[3])}:")
                for r in conn.execute("EXPLAIN QUERY PLAN " + sql, qargs):
                    print(f"      {r[-1]}")
        ok = p95 < P95_TARGET_MS
        print(f"target met: {C.yesno(ok)}  (p95 {p95:.1f} ms < {P95_TARGET_MS:.0f} ms)")

        cli_t = [C.run_cli(home_path, "search", "数学")[0] for _ in range(3)]
        print(f"   context: `schoolmesh search 数学` end to end (CLI start-up included): "
              f"median {C.median(cli_t) * 1000:.0f} ms", flush=True)

        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for kind, q, f in queries:
                catalog.search(conn, q, **f)
            prof.disable()
            print("\ncProfile of the query mix (top 20 by cumulative time):")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(20)
        home.close()
        C.summary("search", {
            "quick": args.quick, "resources": n, "queries": len(every),
            "build_s": round(b["total"], 1), "select1_p50_ms": round(C.percentile(sel, 50), 4),
            "p50_ms": round(C.percentile(every, 50), 2), "p95_ms": round(p95, 2),
            "p99_ms": round(C.percentile(every, 99), 2),
            "sql_p95_ms": round(C.percentile(every_sql, 95), 2),
            "sql_share_pct": round(sum(every_sql) / sum(every) * 100, 1),
            "p95_by_kind_ms": {k: round(C.percentile(v, 95), 2) for k, v in lat.items()},
            "cid_to_str_us": round(cid_us), "school_id_us": round(sid_us),
            "targets": {"search p95 < 20 ms": ok},
        })
    finally:
        C.done_with(tmp, args.keep)


if __name__ == "__main__":
    main()
