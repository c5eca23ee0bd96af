"""A teacher's record of contributions (specs/teachers.md §7), for professional evaluations.

Computed only from signed entries — resources, feedback and studio entries with their
``teacher.signature`` — by the pure :func:`record`: any node holding the same feeds counts the
same, and every counted entry is listed (school id, seq, hash) so anyone can check it.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any

from protocol import records
from protocol import studio as ps
from protocol.records import FeedEntry

from . import studio

CATEGORIES = ("published", "adapted", "used_in_class", "reviews_given", "tasks_on_time")
KINDS = (records.KIND_PUBLISH, records.KIND_FEEDBACK, *sorted(ps.STUDIO_KINDS))


def _item(category: str, e: FeedEntry, what: str) -> dict[str, Any]:
    return {"category": category, "school_id": e.school_id, "seq": e.seq,
            "hash": e.hash.hex(), "time": e.time, "kind": e.kind, "what": what}


def record(items: list[tuple[FeedEntry, bytes | None]], teacher: bytes) -> dict[str, Any]:
    """Counts and the entries counted for ``teacher`` from ``(entry, signer)`` pairs:
    published — resource.publish signed by the teacher without ``isBasedOn``; adapted — with
    it; used_in_class — feedback with ``used`` true on those resources from another school's
    feed; reviews_given — feedback and studio reviews signed by the teacher; tasks_on_time —
    studio tasks with a submission of the teacher dated by the due time (one per task)."""
    out: list[dict[str, Any]] = []
    mine: dict[str, FeedEntry] = {}
    for e, t in items:
        if e.kind == records.KIND_PUBLISH and t == teacher:
            rid = records.resource_id_of(e)
            mine[rid] = e
            based = e.body["meta"].get("isBasedOn")
            out.append(_item("adapted" if based else "published", e,
                             f"{rid} {e.body['meta']['title']}"))
    for e, t in items:
        if e.kind != records.KIND_FEEDBACK:
            continue
        if t == teacher:
            out.append(_item("reviews_given", e, f"feedback on {e.body['resource']}"))
        src = mine.get(e.body["resource"])
        if src is not None and e.body["used"] and e.feed != src.feed:
            out.append(_item("used_in_class", e, f"{e.body['resource']} used at {e.school_id}"))
    by_hash = {e.hash: e for e, _ in items}
    for s in studio.fold([(e, t) for e, t in items
                          if e.kind in ps.STUDIO_KINDS and t is not None]).values():
        for sub in s.submissions.values():
            r = sub["review"]
            if r is not None and r["teacher"] == teacher:
                out.append(_item("reviews_given", by_hash[bytes.fromhex(r["hash"])],
                                 f"review of {sub['resource']} in {s.name}"))
        done: dict[str, dict[str, Any]] = {}
        for sub in sorted(s.submissions.values(), key=lambda x: (x["time"], x["hash"])):
            if sub["teacher"] == teacher and sub["on_time"] and sub["task"] not in done:
                done[sub["task"]] = sub
        for task, sub in done.items():
            out.append(_item("tasks_on_time", by_hash[bytes.fromhex(sub["hash"])],
                             f"{s.tasks[task]['title']} ({s.name}): {sub['resource']}"))
    out.sort(key=lambda i: (CATEGORIES.index(i["category"]), i["time"], i["hash"]))
    return {"teacher": "t" + teacher.hex(),
            "counts": {c: sum(1 for i in out if i["category"] == c) for c in CATEGORIES},
            "entries": out}


def of(conn: sqlite3.Connection, teacher: bytes) -> dict[str, Any]:
    """The record from this node's stored feeds."""
    return record([(e, t) for e, t in studio.signed_entries(conn, KINDS)], teacher)


def to_csv(rec: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["teacher", "category", "school_id", "seq", "hash", "time_ms", "kind", "what"])
    for i in rec["entries"]:
        w.writerow([rec["teacher"], i["category"], i["school_id"], i["seq"], i["hash"],
                    i["time"], i["kind"], i["what"]])
    return buf.getvalue()
