"""Generate specs/vectors/oversight.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_oversight.py > specs/vectors/oversight.json

Fixed seeds and times, so the output is stable. The story: demonstration school D founds a
community and admits village school V; D publishes a lesson, V adapts it (answering D's
request), uses D's lesson in class, both sign holdings summaries; D hides V's adaptation and V
tries to hide D's lesson (rejected: V is not a demonstration school). The report over all of
it is given byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import SchoolKey, sha256  # noqa: E402
from protocol import codec, records  # noqa: E402
from protocol import membership as pc  # noqa: E402
from protocol import report as pr  # noqa: E402

T0 = 1_788_000_000_000          # 2026-08-29
DAY = 86_400_000
SEEDS = {"D": bytes([0xD1] * 32), "V": bytes([0x51] * 32)}


def dir_cid(tag: bytes) -> bytes:
    return b"\x01\x70\x12\x20" + sha256(tag)


def raw_cid(tag: bytes) -> bytes:
    return b"\x01\x55\x12\x20" + sha256(tag)


class Feed:
    def __init__(self, key: SchoolKey) -> None:
        self.key, self.entries = key, []

    def add(self, time: int, kind: str, body: dict) -> records.FeedEntry:
        prev = self.entries[-1].hash if self.entries else None
        e = records.sign_entry(self.key, seq=len(self.entries) + 1, prev=prev, time=time,
                               kind=kind, body=body)
        self.entries.append(e)
        return e


def signed_raw(key: SchoolKey, kind: str, body: dict) -> bytes:
    """An entry 1 whose body breaks a rule (sign_entry would refuse to build it)."""
    unsigned = {"v": 1, "feed": key.public.raw, "seq": 1, "prev": None, "time": T0,
                "kind": kind, "body": body}
    return codec.encode({**unsigned, "sig": key.sign(records.ENTRY_DOMAIN,
                                                     codec.encode(unsigned))})


def lesson(title: str, tag: bytes, **meta) -> dict:
    return {"version": 1, "content": dir_cid(tag),
            "files": [{"path": "lesson.txt", "cid": raw_cid(tag), "size": 100}],
            "meta": {"title": title, "inLanguage": "zh-CN", "license": "CC-BY-4.0",
                     "about": ["数学"], "educationalLevel": ["lower-primary"], **meta}}


def main() -> None:
    k = {n: SchoolKey.from_seed(s) for n, s in SEEDS.items()}
    d, v = Feed(k["D"]), Feed(k["V"])
    d.add(T0, records.KIND_PROFILE, {"name": "青山中心小学", "role": "demonstration"})
    v.add(T0, records.KIND_PROFILE, {"name": "龙泉村小", "role": "school"})
    charter = d.add(T0 + 1000, records.KIND_CHARTER, {"name": "青山片区"})
    cid = pc.community_id_of(charter)
    d.add(T0 + 2000, records.KIND_CERTIFICATE, {"community": cid, "school": k["V"].school_id,
                                                 "role": "member", "issued": T0 + 2000})
    base = d.add(T0 + 3000, records.KIND_PUBLISH, lesson("分数的初步认识", b"base"))
    base_id = records.resource_id_of(base)
    req = d.add(T0 + 4000, records.KIND_REQUEST, {"subject": "数学", "level": "lower-primary",
                                                 "description": "需要分数的课堂练习"})
    qid = records.request_id_of(req)
    adapted = v.add(T0 + DAY, records.KIND_PUBLISH, lesson(
        "分数练习（村小版）", b"adapted", isBasedOn=[base_id], fulfils=[qid]))
    adapted_id = records.resource_id_of(adapted)
    v.add(T0 + DAY + 1000, records.KIND_FEEDBACK, {"resource": base_id, "used": True,
                                                   "rating": 5, "comment": "学生很喜欢"})
    held = [base.body["content"], adapted.body["content"]]
    d.add(T0 + 2 * DAY, records.KIND_HOLDINGS, {"roots": pr.encode_holdings(held)})
    v.add(T0 + 2 * DAY, records.KIND_HOLDINGS,
          {"roots": pr.encode_holdings([adapted.body["content"]])})
    hide = d.add(T0 + 3 * DAY, records.KIND_MODERATION, {
        "community": cid, "resource": adapted_id, "action": "hide",
        "reason": "图片来源不明，请补充出处", "time": T0 + 3 * DAY})
    forged = v.add(T0 + 3 * DAY + 1000, records.KIND_MODERATION, {
        "community": cid, "resource": base_id, "action": "hide", "reason": "我不喜欢",
        "time": T0 + 3 * DAY + 1000})
    entries = d.entries + v.entries
    now = T0 + 4 * DAY
    hidden, rejected = pr.moderation(cid, entries, now)
    rep = pr.compute(cid, entries)
    rep_window = pr.compute(cid, entries, start=T0 + DAY, end=T0 + 2 * DAY)

    bad = [
        ("holdings roots not a multiple of 6", records.KIND_HOLDINGS, {"roots": b"\x00" * 7}),
        ("holdings roots not sorted", records.KIND_HOLDINGS,
         {"roots": b"\x02" * 6 + b"\x01" * 6}),
        ("holdings roots duplicated", records.KIND_HOLDINGS, {"roots": b"\x01" * 12}),
        ("holdings roots as text", records.KIND_HOLDINGS, {"roots": "00"}),
        ("holdings extra field", records.KIND_HOLDINGS, {"roots": b"", "count": 0}),
        ("moderation hide without reason", records.KIND_MODERATION,
         {"community": cid, "resource": base_id, "action": "hide", "time": T0}),
        ("moderation unknown action", records.KIND_MODERATION,
         {"community": cid, "resource": base_id, "action": "delete", "reason": "x",
          "time": T0}),
        ("moderation not a community id", records.KIND_MODERATION,
         {"community": "c" + "b" * 26, "resource": base_id, "action": "hide", "reason": "x",
          "time": T0}),
        ("moderation not a resource id", records.KIND_MODERATION,
         {"community": cid, "resource": qid, "action": "hide", "reason": "x", "time": T0}),
        ("moderation reason too long", records.KIND_MODERATION,
         {"community": cid, "resource": base_id, "action": "hide", "reason": "长" * 1001,
          "time": T0}),
        ("moderation time negative", records.KIND_MODERATION,
         {"community": cid, "resource": base_id, "action": "unhide", "time": -1}),
    ]
    out = {
        "generator": "specs/vectors/gen_oversight.py",
        "spec": "specs/oversight.md",
        "schools": {n: key.school_id for n, key in k.items()},
        "community_id": cid,
        "entries": [e.raw.hex() for e in entries],
        "holdings": {"roots": [c.hex() for c in held],
                     "encoded": pr.encode_holdings(held).hex(), "digest_bytes": 6},
        "moderation": {"now": now, "hidden": {rid: {"by": h.by, "reason": h.reason,
                                                    "entry": h.entry.hex()}
                                              for rid, h in hidden.items()},
                       "rejected": [h.hex() for h, _ in rejected],
                       "hide_entry": hide.hash.hex(), "forged_entry": forged.hash.hex()},
        "report": {"from": None, "to": None, "json": pr.to_json(rep)},
        "report_window": {"from": T0 + DAY, "to": T0 + 2 * DAY, "json": pr.to_json(rep_window)},
        "bad_entries": [{"why": why, "raw": signed_raw(k["D"], kind, body).hex()}
                        for why, kind, body in bad],
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
