"""Community reports, the copy audit and moderation, as pure functions of verified entries
(specs/oversight.md).  Sans-IO: the caller passes every entry it holds and the period; the
result depends on nothing else, so two schools holding the same feeds compute the same report
(byte for byte once encoded with :func:`to_json`).
"""

from __future__ import annotations

import base64
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from crypto import PublicKey

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


_SLIM_KINDS = frozenset({records.KIND_PROFILE, records.KIND_PUBLISH, records.KIND_UPDATE,
                         records.KIND_RETRACT, records.KIND_REQUEST, records.KIND_FEEDBACK,
                         records.KIND_HOLDINGS})


@dataclass(frozen=True, slots=True)
class _Slim:
    """What the report keeps of an entry."""
    seq: int
    time: int
    kind: str
    data: Any


def _id(prefix: str, entry_hash: bytes) -> str:
    """A resource ("r") or request ("q") id from its entry's hash (records.md §6)."""
    return prefix + base64.b32encode(entry_hash[:16]).decode("ascii").rstrip("=").lower()


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
    # One pass, keeping of each entry only what the report reads (a community's feeds hold
    # hundreds of thousands of entries): decisions and moderation whole, the rest slim.
    seen: set[bytes] = set()
    decisions: list[FeedEntry] = []
    mods: list[FeedEntry] = []
    tips: dict[bytes, tuple[int, bytes]] = {}
    slim: dict[bytes, list[_Slim]] = defaultdict(list)
    newest = 0
    for e in entries:
        h = e.hash
        if h in seen:
            continue
        seen.add(h)
        tip = tips.get(e.feed)
        if tip is None or e.seq > tip[0]:
            tips[e.feed] = (e.seq, h)
        newest = max(newest, e.time)
        kind = e.kind
        if kind in _DECISIONS:
            decisions.append(e)
        elif kind == records.KIND_MODERATION:
            if e.body.get("community") == community:
                mods.append(e)
        elif kind in _SLIM_KINDS and (end is None or e.time < end):
            b = e.body
            if kind == records.KIND_FEEDBACK:
                data: Any = (b["resource"], b["used"], b["rating"])
            elif kind in (records.KIND_PUBLISH, records.KIND_UPDATE):
                meta = b["meta"]
                data = (b.get("resource") or _id("r", h), b["version"], b["content"],
                        meta["title"], meta.get("about", ()), meta.get("educationalLevel", ()),
                        meta.get("isBasedOn", ()), meta.get("fulfils", ()))
            elif kind == records.KIND_REQUEST:
                data = (_id("q", h), b["subject"], b["level"])
            else:
                data = b
            slim[e.feed].append(_Slim(e.seq, e.time, kind, data))
    now = end if end is not None else newest
    m = pc.resolve(community, decisions, now)
    cutoffs: dict[str, int | None] = {}
    for sid, mem in m.members.items():
        cutoffs[sid] = (mem.revoked_at if mem.status == pc.REVOKED
                        else mem.expires if mem.status == pc.EXPIRED else None)
    heads, names, used = {}, {}, {}
    for sid, cut in cutoffs.items():
        feed = PublicKey.from_school_id(sid).raw
        if feed not in tips:
            continue
        heads[sid] = {"seq": tips[feed][0], "hash": tips[feed][1].hex()}
        used[sid] = sorted((x for x in slim.get(feed, ()) if cut is None or x.time < cut),
                           key=lambda x: x.seq)
        for x in used[sid]:
            if x.kind == records.KIND_PROFILE:
                names[sid] = x.data["name"]
    del slim
    hidden, _ = moderation(community, decisions + mods, now)

    # resources, as of the end of the period
    res: dict[str, _Res] = {}
    for sid in sorted(used):
        for x in used[sid]:
            if x.kind == records.KIND_PUBLISH:
                rid, _, content, title, about, levels, based_on, _ = x.data
                res[rid] = _Res(rid, sid, title, x.time, sorted({s.casefold() for s in about}),
                                list(levels), list(based_on), content)
            elif x.kind == records.KIND_UPDATE:
                rid, version, content, title, about, levels, _, _ = x.data
                r = res.get(rid)
                if r and r.school == sid and not r.retracted and version == r.version + 1:
                    r.version, r.content, r.title = version, content, title
                    r.subjects = sorted({s.casefold() for s in about})
                    r.levels = list(levels)
            elif x.kind == records.KIND_RETRACT:
                r = res.get(x.data["resource"])
                if r and r.school == sid:
                    r.retracted = True
    live = {rid: r for rid, r in res.items() if not r.retracted}

    # holdings: each school's newest summary
    holds: dict[str, frozenset[bytes]] = {}
    for sid in sorted(used):
        last = None
        for x in used[sid]:
            if x.kind == records.KIND_HOLDINGS:
                last = x
        if last is not None:
            holds[sid] = holdings_set(last.data["roots"])

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
    requests: dict[str, tuple[str, _Slim]] = {}
    answers: dict[str, int] = {}
    for sid in sorted(used):
        for x in used[sid]:
            if x.kind == records.KIND_FEEDBACK:
                if not _in(x.time, start, end):
                    continue
                rid, was_used, rating = x.data
                row = fb_month[(sid, month_of(x.time))]
                row[0] += 1
                row[1] += int(was_used)
                row[2] += rating
                ratings[rating - records.RATING_MIN] += 1
                fb_total += 1
                fb_used += int(was_used)
                if was_used:
                    used_on[rid].add(sid)
            elif x.kind == records.KIND_REQUEST:
                requests[x.data[0]] = (sid, x)
            elif x.kind in (records.KIND_PUBLISH, records.KIND_UPDATE):
                for q in x.data[7]:
                    if q not in answers or x.time < answers[q]:
                        answers[q] = x.time
    opened = [(q, sid, x) for q, (sid, x) in requests.items() if _in(x.time, start, end)]
    waits = sorted((answers[q] - x.time) for q, _, x in opened
                   if q in answers and answers[q] >= x.time and (end is None or answers[q] < end))
    req_rows = [{"request": q, "school": sid, "subject": x.data[1], "level": x.data[2],
                 "opened": x.time,
                 "answered": answers.get(q) if (end is None or answers.get(q, end) < end)
                 else None}
                for q, sid, x in sorted(opened, key=lambda o: (o[2].time, o[0]))]

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
                      | {x.data[1].casefold() for _, x in requests.values()})
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

