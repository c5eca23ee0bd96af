"""Community reports, the copy audit and moderation, as pure functions of verified entries
(specs/oversight.md).  Sans-IO: the caller passes every entry it holds and the period; the
result depends on nothing else, so two schools holding the same feeds compute the same report
(byte for byte once encoded with :func:`to_json`).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from . import membership as pc
from . import records, vocab
from .records import FeedEntry

REPORT_VERSION = 1
RARE_BELOW = 2          # a resource held by fewer schools than this is flagged
_DECISIONS = (records.KIND_CHARTER, records.KIND_CERTIFICATE, records.KIND_REVOCATION,
              records.KIND_LINK)


# -- holdings summaries (§2) -------------------------------------------------------------------

def root_digest(cid: bytes) -> bytes:
    """The first HOLDINGS_DIGEST bytes of the SHA-256 digest a content root's CID carries."""
    return cid[-32:][:records.HOLDINGS_DIGEST]


def encode_holdings(roots: Iterable[bytes]) -> bytes:
    """The ``roots`` field of a holdings entry for these content root CIDs (sorted, unique,
    the HOLDINGS_MAX smallest digests if there are more)."""
    digests = sorted({root_digest(c) for c in roots})[:records.HOLDINGS_MAX]
    return b"".join(digests)


def holdings_contain(roots: bytes, digest: bytes) -> bool:
    """Whether a summary's sorted ``roots`` list ``digest`` (binary search, no set built)."""
    d = records.HOLDINGS_DIGEST
    lo, hi = 0, len(roots) // d
    while lo < hi:
        mid = (lo + hi) // 2
        if roots[mid * d:mid * d + d] < digest:
            lo = mid + 1
        else:
            hi = mid
    return roots[lo * d:lo * d + d] == digest


def holdings_set(roots: bytes) -> frozenset[bytes]:
    d = records.HOLDINGS_DIGEST
    return frozenset(roots[i:i + d] for i in range(0, len(roots), d))


# -- moderation (§3) ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Hidden:
    resource: str
    community: str
    by: str          # school id of the demonstration school that hid it
    reason: str
    time: int
    entry: bytes     # hash of the deciding moderation entry


def moderation(community: str, entries: Iterable[FeedEntry], now: int
               ) -> tuple[dict[str, Hidden], list[tuple[bytes, str]]]:
    """(resources hidden in ``community`` at ``now``, rejected moderation entries as
    (entry hash, reason)).  Moderation entries are applied in (time, entry hash) order; each
    counts only if its author is an active demonstration school of the community at its time
    (membership resolved from the decisions dated up to then); the last counted one wins."""
    decisions, mods = [], []
    for e in entries:
        if e.kind in _DECISIONS:
            decisions.append(e)
        elif e.kind == records.KIND_MODERATION and e.body.get("community") == community:
            mods.append(e)
    hidden: dict[str, Hidden] = {}
    rejected: list[tuple[bytes, str]] = []
    issuers_at: dict[int, frozenset[str]] = {}
    for e in sorted({e.hash: e for e in mods}.values(), key=lambda e: (e.body["time"], e.hash)):
        t = e.body["time"]
        if t > now + pc.MAX_CLOCK_SKEW:
            continue     # reconsidered later, like membership decisions
        if t not in issuers_at:
            issuers_at[t] = pc.resolve(community, [d for d in decisions
                                                   if _decided_by(d, t)], t).issuers
        if e.school_id not in issuers_at[t]:
            rejected.append((e.hash, "author is not an active demonstration school at that time"))
            continue
        rid = e.body["resource"]
        if e.body["action"] == "hide":
            hidden[rid] = Hidden(rid, community, e.school_id, e.body["reason"], t, e.hash)
        else:
            hidden.pop(rid, None)
    return hidden, rejected


def _decided_by(e: FeedEntry, t: int) -> bool:
    if e.kind == records.KIND_CHARTER:
        return True
    return (e.body["issued"] if e.kind == records.KIND_CERTIFICATE else e.body["time"]) <= t


# -- the report (§4) ---------------------------------------------------------------------------

_DAY_MS = 86_400_000
_months: dict[int, str] = {}


def month_of(ms: int) -> str:
    """The UTC month ("2026-09") of a time in ms (cached per day)."""
    day = ms // _DAY_MS
    m = _months.get(day)
    if m is None:
        d = datetime.fromtimestamp(day * 86_400, tz=timezone.utc)
        m = _months[day] = f"{d.year:04d}-{d.month:02d}"
    return m


def _in(t: int, start: int | None, end: int | None) -> bool:
    return (start is None or t >= start) and (end is None or t < end)


@dataclass(slots=True)
class _Res:
    rid: str
    school: str
    title: str
    created: int
    subjects: list[str]
    levels: list[str]
    based_on: list[str]
    content: bytes
    version: int = 1
    retracted: bool = False


def compute(community: str, entries: Iterable[FeedEntry], *, start: int | None = None,
            end: int | None = None) -> dict[str, Any]:
    """The report of ``community`` over [start, end) (ms; None: unbounded) from verified
    entries of any feeds.  Membership, holdings and moderation are taken at ``end`` (or, when
    open-ended, at the newest entry's time), never at the reader's clock."""
    all_entries = list({e.hash: e for e in entries}.values())
    now = end if end is not None else max((e.time for e in all_entries), default=0)
    decisions = [e for e in all_entries if e.kind in _DECISIONS]
    m = pc.resolve(community, decisions, now)
    cutoffs: dict[str, int | None] = {}
    for sid, mem in m.members.items():
        cutoffs[sid] = (mem.revoked_at if mem.status == pc.REVOKED
                        else mem.expires if mem.status == pc.EXPIRED else None)
    by_feed: dict[str, list[FeedEntry]] = defaultdict(list)
    sid_of: dict[bytes, str] = {}
    for e in all_entries:
        sid = sid_of.get(e.feed)
        if sid is None:
            sid = sid_of[e.feed] = e.school_id
        if sid in cutoffs:
            by_feed[sid].append(e)
    heads, names, used = {}, {}, {}
    for sid, es in by_feed.items():
        es.sort(key=lambda e: e.seq)
        heads[sid] = {"seq": es[-1].seq, "hash": es[-1].hash.hex()}
        cut = cutoffs[sid]
        used[sid] = [e for e in es
                     if (cut is None or e.time < cut) and (end is None or e.time < end)]
        for e in used[sid]:
            if e.kind == records.KIND_PROFILE:
                names[sid] = e.body["name"]
    hidden, _ = moderation(community, all_entries, now)

    # resources, as of the end of the period
    res: dict[str, _Res] = {}
    for sid in sorted(used):
        for e in used[sid]:
            b = e.body
            if e.kind == records.KIND_PUBLISH:
                meta = b["meta"]
                rid = records.resource_id_of(e)
                res[rid] = _Res(
                    rid, sid, meta["title"], e.time,
                    sorted({s.casefold() for s in meta.get("about", [])}),
                    list(meta.get("educationalLevel", [])), list(meta.get("isBasedOn", [])),
                    b["content"])
            elif e.kind == records.KIND_UPDATE:
                r = res.get(b["resource"])
                if r and r.school == sid and not r.retracted and b["version"] == r.version + 1:
                    r.version, r.content, r.title = b["version"], b["content"], b["meta"]["title"]
                    r.subjects = sorted({s.casefold() for s in b["meta"].get("about", [])})
                    r.levels = list(b["meta"].get("educationalLevel", []))
            elif e.kind == records.KIND_RETRACT:
                r = res.get(b["resource"])
                if r and r.school == sid:
                    r.retracted = True
    live = {rid: r for rid, r in res.items() if not r.retracted}

    # holdings: each school's newest summary
    holds: dict[str, frozenset[bytes]] = {}
    for sid in sorted(used):
        last = None
        for e in used[sid]:
            if e.kind == records.KIND_HOLDINGS:
                last = e
        if last is not None:
            holds[sid] = holdings_set(last.body["roots"])

    def holders(r: _Res) -> list[str]:
        d = root_digest(r.content)
        return sorted(s for s, h in holds.items() if d in h)

    # publications per school and month
    pubs: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in res.values():
        if _in(r.created, start, end):
            pubs[(r.school, month_of(r.created))][1 if r.based_on else 0] += 1
    # feedback
    fb_month: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    ratings = [0] * (records.RATING_MAX - records.RATING_MIN + 1)
    used_on: dict[str, set[str]] = defaultdict(set)
    fb_total = fb_used = 0
    requests: dict[str, FeedEntry] = {}
    answers: dict[str, int] = {}
    for sid in sorted(used):
        for e in used[sid]:
            if e.kind == records.KIND_FEEDBACK and _in(e.time, start, end):
                b = e.body
                row = fb_month[(sid, month_of(e.time))]
                row[0] += 1
                row[1] += int(b["used"])
                row[2] += b["rating"]
                ratings[b["rating"] - records.RATING_MIN] += 1
                fb_total += 1
                fb_used += int(b["used"])
                if b["used"]:
                    used_on[b["resource"]].add(sid)
            elif e.kind == records.KIND_REQUEST:
                requests[records.request_id_of(e)] = e
            elif e.kind in (records.KIND_PUBLISH, records.KIND_UPDATE):
                for q in e.body["meta"].get("fulfils", []):
                    if q not in answers or e.time < answers[q]:
                        answers[q] = e.time
    opened = [(q, e) for q, e in requests.items() if _in(e.time, start, end)]
    waits = sorted((answers[q] - e.time) for q, e in opened
                   if q in answers and answers[q] >= e.time and (end is None or answers[q] < end))
    req_rows = [{"request": q, "school": e.school_id, "subject": e.body["subject"],
                 "level": e.body["level"], "opened": e.time,
                 "answered": answers.get(q) if (end is None or answers.get(q, end) < end)
                 else None}
                for q, e in sorted(opened, key=lambda x: (x[1].time, x[0]))]

    # what each demonstration school's material reached
    demo = sorted(sid for sid, mem in m.members.items() if mem.role == pc.ROLE_DEMONSTRATION)
    adapted_from: dict[str, set[str]] = defaultdict(set)
    for r in res.values():
        for b in r.based_on:
            adapted_from[b].add(r.school)
    reach = []
    for sid in demo:
        mine = [r for r in live.values() if r.school == sid]
        held, adapted, used_by = set(), set(), set()
        for r in mine:
            held.update(holders(r))
            adapted.update(adapted_from.get(r.rid, ()))
            used_by.update(used_on.get(r.rid, ()))
        reach.append({"school": sid, "resources": len(mine),
                      "held_by": sorted(held - {sid}), "adapted_by": sorted(adapted - {sid}),
                      "used_by": sorted(used_by - {sid}),
                      "reached": len((held | adapted | used_by) - {sid})})

    # coverage by subject x grade
    subjects = sorted({s for r in live.values() for s in r.subjects}
                      | {e.body["subject"].casefold() for e in requests.values()})
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for r in live.values():
        for s in r.subjects:
            for lv in r.levels:
                cells[(s, lv)] += 1
    coverage = {s: {lv: cells.get((s, lv), 0) for lv in vocab.LEVELS} for s in subjects}
    empty_subjects = [s for s in subjects if not any(coverage[s].values())]
    empty_levels = [lv for lv in vocab.LEVELS if not any(coverage[s][lv] for s in subjects)]

    # the copy audit
    audit = []
    for rid in sorted(live):
        if rid in hidden:
            continue
        h = holders(live[rid])
        audit.append({"resource": rid, "school": live[rid].school, "title": live[rid].title,
                      "holders": h, "count": len(h)})
    rare = [a["resource"] for a in audit if a["count"] < RARE_BELOW]

    schools = sorted(cutoffs)
    months = sorted({k[1] for k in pubs} | {k[1] for k in fb_month})
    return {
        "report": REPORT_VERSION,
        "community": community, "name": m.name,
        "period": {"from": start, "to": end, "as_of": now},
        "heads": {sid: heads[sid] for sid in sorted(heads)},
        "schools": [{"school": sid, "name": names.get(sid), "role": m.members[sid].role,
                     "status": m.members[sid].status} for sid in schools],
        "months": months,
        "publications": [{"school": s, "month": mo, "published": v[0], "adapted": v[1]}
                         for (s, mo), v in sorted(pubs.items())],
        "feedback": {
            "total": fb_total, "used_in_class": fb_used,
            "ratings": {str(i + records.RATING_MIN): n for i, n in enumerate(ratings)},
            "average": round(sum((i + 1) * n for i, n in enumerate(ratings)) / fb_total, 2)
            if fb_total else None,
            "by_month": [{"school": s, "month": mo, "reports": v[0], "used_in_class": v[1],
                          "average": round(v[2] / v[0], 2)}
                         for (s, mo), v in sorted(fb_month.items())]},
        "requests": {"opened": len(opened), "answered": len(waits),
                     "median_hours": round(statistics.median(waits) / 3_600_000, 2)
                     if waits else None,
                     "mean_hours": round(sum(waits) / len(waits) / 3_600_000, 2)
                     if waits else None,
                     "items": req_rows},
        "reach": reach,
        "coverage": {"subjects": subjects, "levels": list(vocab.LEVELS), "counts": coverage,
                     "empty_subjects": empty_subjects, "empty_levels": empty_levels},
        "audit": {"resources": len(audit), "rare": rare, "items": audit,
                  "summaries": {sid: len(holds[sid]) for sid in sorted(holds)}},
        "hidden": [{"resource": h.resource, "by": h.by, "reason": h.reason, "time": h.time}
                   for h in sorted(hidden.values(), key=lambda h: h.resource)],
    }


def to_json(report: dict[str, Any]) -> str:
    """The report's one JSON text: sorted keys, no whitespace, UTF-8 text unescaped."""
    return json.dumps(report, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"

