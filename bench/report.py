"""The community report over a large community, and the size of holdings summaries.

    .venv/bin/python bench/report.py [--quick] [--schools N] [--resources N] [--feedback N] [--keep]

Builds the home of a demonstration school directly through the library layer: a real
community (``community.create``), certificates for N-1 village schools signed by it, and for
every school a signed feed (records.sign_entry + feeds.append in db.write transactions of 1,000
entries, as library._append_own does one at a time) with its share of the resources (a tenth
of them adaptations), of the feedback (on random resources of other schools) and of requests,
and one holdings summary listing the resources it keeps (its own and a random 2 % of the rest).
Then runs ``schoolmesh report --format json`` as a subprocess: wall time and peak RSS
(/usr/bin/time -v), against the CLI's fixed cost (``search`` on the same home), and checks that
a second run prints the same bytes.  Also prints the size of a holdings summary (its body and
the whole signed entry) per 10,000 pinned resources.
Defaults: 50 schools, 50,000 resources, 200,000 feedback entries (the issue's figures).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from publish_large import peak_rss  # noqa: E402

from crypto import CID_DAG_PB, CID_RAW, SchoolKey, make_cid  # noqa: E402
from node import community, db, feeds, library  # noqa: E402
from node.home import init_home  # noqa: E402
from protocol import records, vocab  # noqa: E402
from protocol import report as pr  # noqa: E402

SEED = 171717
BATCH = 1000
SUBJECTS = ["数学", "语文", "英语", "科学", "道德与法治", "音乐", "美术", "体育", "信息技术",
            "劳动"]
LEVELS = ["lower-primary", "upper-primary", "lower-secondary"]
T0 = 1_788_000_000_000
YEAR = 365 * 86_400_000


class Feed:
    def __init__(self, key: SchoolKey) -> None:
        self.key, self.seq, self.prev = key, 0, None

    def entry(self, kind: str, body: dict, t: int) -> records.FeedEntry:
        e = records.sign_entry(self.key, seq=self.seq + 1, prev=self.prev, time=t, kind=kind,
                               body=body)
        self.seq, self.prev = e.seq, e.hash
        return e


def build(home, n_schools: int, n_res: int, n_fb: int, rng: random.Random) -> dict:
    t_build = time.perf_counter()
    cid = community.create(home, "基准片区")["community_id"]
    keys = [SchoolKey.from_seed(rng.randbytes(32)) for _ in range(n_schools - 1)]
    for k in keys:
        library.append_entry(home, records.KIND_CERTIFICATE, {
            "community": cid, "school": k.school_id, "role": "member", "issued": T0})
    fds = [Feed(k) for k in keys]
    # resources: round-robin over the village schools (the demonstration school's own share
    # is published in its feed through the library layer, one entry at a time, as in real use)
    pending: list[list[records.FeedEntry]] = [[] for _ in fds]
    for i, f in enumerate(fds):
        pending[i].append(f.entry(records.KIND_PROFILE, {"name": f"村小 {i}", "role": "school"},
                                  T0))
    rids: list[str] = []
    contents: list[bytes] = []
    owner: list[int] = []
    demo_share = n_res // n_schools
    for i in range(n_res):
        who = -1 if i < demo_share else (i - demo_share) % len(fds)
        content = make_cid(CID_DAG_PB, b"report-bench-dir-%d" % i)
        meta = {"title": f"资源 {i}", "inLanguage": "zh-CN", "license": "CC-BY-4.0",
                "about": [rng.choice(SUBJECTS)], "educationalLevel": [rng.choice(LEVELS)]}
        if rids and rng.random() < 0.1:
            meta["isBasedOn"] = [rng.choice(rids)]
        body = {"version": 1, "content": content, "meta": meta,
                "files": [{"path": "lesson.txt", "cid": make_cid(CID_RAW, b"f%d" % i),
                           "size": 1000}]}
        t = T0 + rng.randrange(YEAR)
        if who < 0:
            e = library.append_entry(home, records.KIND_PUBLISH, body)
        else:
            e = fds[who].entry(records.KIND_PUBLISH, body, t)
            pending[who].append(e)
        rids.append(records.resource_id_of(e))
        contents.append(content)
        owner.append(who)
    for j in range(n_fb):
        who = j % len(fds)
        r = rng.randrange(n_res)
        pending[who].append(fds[who].entry(records.KIND_FEEDBACK, {
            "resource": rids[r], "used": rng.random() < 0.7, "rating": rng.randint(1, 5)},
            T0 + rng.randrange(YEAR)))
    for who, f in enumerate(fds):
        for _ in range(5):
            pending[who].append(f.entry(records.KIND_REQUEST, {
                "subject": rng.choice(SUBJECTS), "level": rng.choice(LEVELS),
                "description": "需要课堂练习"}, T0 + rng.randrange(YEAR)))
        held = [c for c, o in zip(contents, owner) if o == who or rng.random() < 0.02]
        pending[who].append(f.entry(records.KIND_HOLDINGS, {"roots": pr.encode_holdings(held)},
                                    T0 + YEAR))
    signed = time.perf_counter() - t_build
    t_append = time.perf_counter()
    for batch in pending:
        for i in range(0, len(batch), BATCH):
            with db.write(home.conn) as conn:
                for e in batch[i:i + BATCH]:
                    feeds.append(conn, e)
    # the demonstration school keeps everything it seeds: pinned roots and its own summary
    with db.write(home.conn) as conn:
        for c in contents:
            db.pin(conn, c, "community", cid, T0)
    from node import oversight
    ann = oversight.announce(home, force=True)
    return {"community": cid, "entries": sum(len(b) for b in pending) + n_res // n_schools,
            "sign_s": signed, "append_s": time.perf_counter() - t_append, "announce": ann}


def holdings_size(n: int) -> tuple[int, int]:
    roots = [make_cid(CID_DAG_PB, b"size-%d" % i) for i in range(n)]
    body = {"roots": pr.encode_holdings(roots)}
    e = records.sign_entry(SchoolKey.from_seed(bytes(32)), seq=2, prev=bytes(32), time=T0,
                           kind=records.KIND_HOLDINGS, body=body)
    return len(body["roots"]), len(e.raw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 schools, 2,000 resources, 8,000 "
                    "feedback entries")
    ap.add_argument("--schools", type=int, default=50)
    ap.add_argument("--resources", type=int, default=50_000)
    ap.add_argument("--feedback", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.schools, a.resources, a.feedback = 10, 2_000, 8_000
    C.header("community report and holdings summaries", a.quick)
    tmp = C.make_tmpdir("report")
    try:
        home = init_home(tmp / "demo", "示范校", "demonstration")
        built = build(home, a.schools, a.resources, a.feedback, random.Random(SEED))
        home.close()
        print(f"built {a.schools} schools, {a.resources:,} resources, {a.feedback:,} feedback "
              f"entries ({built['entries']:,} entries): signing {built['sign_s']:.1f} s, "
              f"append + index {built['append_s']:.1f} s")
        C.settle()
        fixed = C.cli_fixed_cost(tmp / "demo")
        rss, wall, how = peak_rss(tmp / "demo", "report", "--format", "json")
        _, first = C.run_cli(tmp / "demo", "report", "--format", "json")
        _, second = C.run_cli(tmp / "demo", "report", "--format", "json")
        rep = json.loads(first.stdout)
        same = first.stdout == second.stdout
        t_html, _ = C.run_cli(tmp / "demo", "report", "--format", "html")
        sizes = {n: holdings_size(n) for n in (10_000, 100_000)}
        print(C.fmt_table(["step", "wall s", "peak RSS MB"], [
            ["report --format json", wall, rss / 1e6],
            ["report --format html (charts)", t_html, ""],
            ["CLI fixed cost (search)", fixed, ""]]))
        print(f"report: {len(rep['heads'])} feed heads, {rep['feedback']['total']:,} feedback, "
              f"{rep['audit']['resources']:,} resources audited, {len(rep['audit']['rare']):,} "
              f"rare; JSON {len(first.stdout) / 1e6:.1f} MB; two runs identical: {C.yesno(same)}"
              f" (RSS by {how})")
        for n, (body, entry) in sizes.items():
            print(f"holdings summary of {n:,} resources: roots {body:,} bytes, signed entry "
                  f"{entry:,} bytes ({entry / n * 10_000:,.0f} bytes per 10,000 resources)")
        C.summary("report", {"schools": a.schools, "resources": a.resources,
                             "feedback": a.feedback, "report_s": wall,
                             "report_rss_mb": rss / 1e6, "html_s": t_html, "cli_fixed_s": fixed,
                             "identical": same,
                             "holdings_bytes_per_10k": sizes[10_000][1],
                             "levels": len(vocab.LEVELS)})
    finally:
        C.done_with(tmp, a.keep)


if __name__ == "__main__":
    main()
