"""Generate specs/vectors/courses.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_courses.py > specs/vectors/courses.json

A school's feed with a profile, a course.publish, a course.update and a course.retract (fixed
seed and times: Ed25519 is deterministic, so the output is stable), negative bodies each
breaking one rule (validly signed, so the decoder must catch the rule itself), a text outline
with the course it parses to, and a timetable with the date of every lesson.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import SchoolKey  # noqa: E402
from protocol import courses, records  # noqa: E402

SEED = bytes(range(32))
T0 = 1_764_000_000_000
R1 = "r" + "a" * 26
R2 = "r" + "b" * 26
R3 = "r" + "c" * 26

UNITS = [
    {"number": 1, "title": "欢乐的一天", "lessons": [
        {"number": 1, "title": "我们的学校", "periods": 2, "resources": [R1, R2]},
        {"number": 2, "title": "上学歌", "periods": 1, "resources": [R3]}]},
    {"number": 2, "title": "可爱的动物", "lessons": [
        {"number": 1, "title": "动物说话", "periods": 1, "resources": []}]},
]
META = {"title": "一年级音乐（上册）", "subject": "音乐", "grade": "1", "volume": "上册",
        "edition": "人音版", "description": "两个单元，每课附教案与伴奏。"}

OUTLINE = """title: 一年级音乐（上册）
subject: 音乐
grade: 一年级
volume: 上册
edition: 人音版
description: 两个单元，每课附教案与伴奏。

# 1 欢乐的一天
- 1 我们的学校 (2 课时): raaaaaaaaaaaaaaaaaaaaaaaaaa rbbbbbbbbbbbbbbbbbbbbbbbbbb
- 2 上学歌: rcccccccccccccccccccccccccc

# 2 可爱的动物
- 1 动物说话
"""


def main() -> None:
    key = SchoolKey.from_seed(SEED)
    out: dict = {"generator": "specs/vectors/gen_courses.py", "spec": "specs/courses.md",
                 "seed": SEED.hex(), "school_id": key.school_id}
    chain = []
    prev = None

    def add(kind: str, body: dict) -> records.FeedEntry:
        nonlocal prev
        e = records.sign_entry(key, seq=len(chain) + 1, prev=prev, time=T0 + len(chain),
                               kind=kind, body=body)
        prev = e.hash
        chain.append(e)
        return e

    add(records.KIND_PROFILE, {"name": "县实验小学", "role": "demonstration"})
    pub = add(courses.KIND_COURSE_PUBLISH, {"version": 1, "meta": META, "units": UNITS})
    cid = courses.course_id_of(pub)
    units2 = json.loads(json.dumps(UNITS))
    units2[1]["lessons"].append({"number": 2, "title": "小动物回家", "periods": 2,
                                 "resources": [R1]})
    add(courses.KIND_COURSE_UPDATE, {"course": cid, "version": 2, "meta": META,
                                     "units": units2})
    add(courses.KIND_COURSE_RETRACT, {"course": cid, "reason": "新版教材"})
    out["entries"] = [e.raw.hex() for e in chain]
    out["course_id"] = cid
    out["after_update"] = {"version": 2, "lessons": 4}

    def bad(why: str, kind: str, body: dict) -> dict:
        # a valid signature over an invalid body: built around sign_entry's own check
        unsigned = records._unsigned(key.public.raw, 1, None, T0, kind, body)
        from protocol import codec
        sig = key.sign(records.ENTRY_DOMAIN, codec.encode(unsigned))
        return {"why": why, "kind": kind, "hex": codec.encode({**unsigned, "sig": sig}).hex()}

    def with_units(f) -> dict:
        u = json.loads(json.dumps(UNITS))
        f(u)
        return {"version": 1, "meta": META, "units": u}
    P = courses.KIND_COURSE_PUBLISH
    out["bad_entries"] = [
        bad("grade outside 学前, 1-12", P, {"version": 1, "meta": {**META, "grade": "13"},
                                            "units": UNITS}),
        bad("volume not 上册/下册/全一册", P, {"version": 1, "meta": {**META, "volume": "中册"},
                                              "units": UNITS}),
        bad("title missing", P, {"version": 1, "meta": {k: v for k, v in META.items()
                                                         if k != "title"}, "units": UNITS}),
        bad("publish with version 2", P, {"version": 2, "meta": META, "units": UNITS}),
        bad("no units", P, {"version": 1, "meta": META, "units": []}),
        bad("lesson of 0 periods", P, with_units(
            lambda u: u[0]["lessons"][0].update(periods=0))),
        bad("resource that is not a resource id", P, with_units(
            lambda u: u[0]["lessons"][0].update(resources=["kaaaaaaaaaaaaaaaaaaaaaaaaaa"]))),
        bad("a resource twice in one lesson", P, with_units(
            lambda u: u[0]["lessons"][0].update(resources=[R1, R1]))),
        bad("lesson number twice in a unit", P, with_units(
            lambda u: u[0]["lessons"][1].update(number=1))),
        bad("unit without lessons", P, with_units(lambda u: u[1].update(lessons=[]))),
        bad("lesson with an extra field", P, with_units(
            lambda u: u[0]["lessons"][0].update(minutes=40))),
        bad("update without course id", courses.KIND_COURSE_UPDATE,
            {"version": 2, "meta": META, "units": UNITS}),
        bad("retract of a resource id", courses.KIND_COURSE_RETRACT, {"course": R1}),
    ]
    out["unknown_meta_field"] = bad("a newer school's meta field (accepted, ignored)", P,
                                    {"version": 1, "meta": {**META, "term": "秋季"},
                                     "units": UNITS})
    out["outline"] = {"text": OUTLINE, "meta": META, "units": UNITS}
    tt = courses.Timetable.parse("mon:1 wed:2,3")
    start = dt.date(2026, 9, 28)      # a Monday
    skipped = courses.parse_skipped("2026-10-01..2026-10-07")
    sched = courses.schedule(courses.lessons_of(units2), start, tt, skipped)
    out["timetable"] = {
        "units": units2, "timetable": "mon:1 wed:2,3", "start": start.isoformat(),
        "skipped": "2026-10-01..2026-10-07",
        "lessons": [{"unit": s.lesson.unit, "lesson": s.lesson.number,
                     "date": s.date.isoformat(),
                     "slots": [[d.isoformat(), p] for d, p in s.slots]} for s in sched]}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
