"""Generate specs/vectors/teachers.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_teachers.py > specs/vectors/teachers.json

Fixed seeds, secrets, salts and times, so the output is stable. The story: demonstration
school A certifies master teacher M; M publishes a lesson, founds a studio, invites school B and
sets a task; B certifies village teacher V, who joins, adapts the lesson and submits it; M
reviews it and V reports the original used in class; A revokes M and posts an unsigned
request. Then forged entries that
each break one feed rule, a sealed key, an export file and an invite code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgpack  # noqa: E402

from crypto import SchoolKey, cid_to_str, seal  # noqa: E402
from protocol import records, unixfs  # noqa: E402
from protocol import studio as ps  # noqa: E402
from protocol import teachers as tp  # noqa: E402

T0 = 1_764_000_000_000
DAY = 86_400_000
SEEDS = {"A": bytes([0xA0] * 32), "B": bytes([0xB0] * 32), "M": bytes([0x4D] * 32),
         "V": bytes([0x56] * 32), "X": bytes([0x58] * 32)}
SECRET = bytes(range(0x60, 0x70))
PASSWORD = "粉笔和黑板-2026"
SALT = bytes(range(0x10, 0x20))
NONCE = bytes(range(0x40, 0x4C))
KEY_MAGIC = b"SCHOOLMESH TEACHER KEY 1\n"
EXPORT_MAGIC = b"SCHOOLMESH TEACHER IDENTITY 1\n"


class Feed:
    def __init__(self, key: SchoolKey) -> None:
        self.key, self.entries = key, []

    def sign(self, time: int, kind: str, body: dict) -> records.FeedEntry:
        prev = self.entries[-1].hash if self.entries else None
        return records.sign_entry(self.key, seq=len(self.entries) + 1, prev=prev, time=time,
                                  kind=kind, body=body)

    def add(self, time: int, kind: str, body: dict, teacher: SchoolKey | None = None
            ) -> records.FeedEntry:
        e = self.sign(time, kind, body)
        self.entries.append(e)
        if teacher is not None:
            self.entries.append(self.sign(time, tp.KIND_TEACHER_SIGNATURE,
                                          tp.signature_body(teacher, e.hash)))
        return e


def resource(text: str, title: str, based_on: str | None = None) -> dict:
    root, _ = unixfs.file_dag(text.encode("utf-8"))
    d, _ = unixfs.directory_dag({"教案.txt": root})
    meta = {"title": title, "inLanguage": "zh-CN", "license": "CC-BY-4.0"}
    if based_on:
        meta["isBasedOn"] = [based_on]
    return {"version": 1, "content": d.cid,
            "files": [{"path": "教案.txt", "cid": root.cid, "size": root.content_size}],
            "meta": meta}


def main() -> None:
    k = {n: SchoolKey.from_seed(s) for n, s in SEEDS.items()}
    a, b = Feed(k["A"]), Feed(k["B"])
    a.add(T0, records.KIND_PROFILE, {"name": "城关示范小学", "role": "demonstration"})
    b.add(T0, records.KIND_PROFILE, {"name": "山村小学", "role": "school"})
    a.add(T0 + 1, tp.KIND_TEACHER_CERTIFICATE, {"teacher": k["M"].public.raw, "name": "刘老师",
                                                "subjects": ["数学"], "school": "城关示范小学"})
    lesson = a.add(T0 + 2, records.KIND_PUBLISH, resource("分数", "分数的初步认识"), k["M"])
    lesson_id = records.resource_id_of(lesson)
    found = a.add(T0 + 3, ps.KIND_STUDIO_FOUND, {"name": "刘老师数学名师工作室"}, k["M"])
    sid = ps.studio_id_of(found.hash)
    a.add(T0 + 4, ps.KIND_STUDIO_INVITE,
          {"studio": sid, "school": k["B"].school_id,
           "verifier": ps.invite_key(SECRET).public.raw, "expires": T0 + 14 * DAY}, k["M"])
    task = a.add(T0 + 5, ps.KIND_STUDIO_TASK,
                 {"studio": sid, "title": "把《分数》改编为复式班教案", "due": T0 + 7 * DAY,
                  "resource": lesson_id}, k["M"])
    b.add(T0 + 10, tp.KIND_TEACHER_CERTIFICATE, {"teacher": k["V"].public.raw, "name": "王老师",
                                                 "subjects": ["数学", "科学"],
                                                 "school": "山村小学"})
    b.add(T0 + DAY, ps.KIND_STUDIO_JOIN,
          {"studio": sid, "teacher": k["V"].public.raw,
           "proof": ps.join_proof(SECRET, sid, k["V"].public.raw)}, k["V"])
    adapted = b.add(T0 + 2 * DAY, records.KIND_PUBLISH,
                    resource("分数 复式班", "分数(复式班)", lesson_id), k["V"])
    sub = b.add(T0 + 3 * DAY, ps.KIND_STUDIO_SUBMIT,
                {"studio": sid, "task": ps.task_id_of(task.hash),
                 "resource": records.resource_id_of(adapted)}, k["V"])
    b.add(T0 + 3 * DAY + 1, ps.KIND_STUDIO_COMMENT,
          {"studio": sid, "resource": lesson_id, "text": "第二环节时间偏长"}, k["V"])
    b.add(T0 + 3 * DAY + 2, records.KIND_FEEDBACK,
          {"resource": lesson_id, "used": True, "rating": 4}, k["V"])
    a.add(T0 + 4 * DAY, ps.KIND_STUDIO_REVIEW,
          {"studio": sid, "submission": sub.hash, "rating": 5, "comment": "很好"}, k["M"])
    a.add(T0 + 5 * DAY, tp.KIND_TEACHER_REVOCATION, {"teacher": k["M"].public.raw,
                                                     "reason": "调往县教研室"})
    a.add(T0 + 5 * DAY + 1, records.KIND_REQUEST,   # no teacher signs it: still a valid entry
          {"subject": "数学", "level": "lower-primary", "description": "需要复式班分数教案"})

    def sig_of(feed: Feed) -> list[dict]:
        return [{"seq": e.seq - 1, "teacher": e.body["teacher"].hex()} for e in feed.entries
                if e.kind == tp.KIND_TEACHER_SIGNATURE]

    # forged entries after A's chain, each breaking one feed rule of §4
    head = a.entries[-1]

    def after(kind: str, body: dict) -> str:
        return records.sign_entry(k["A"], seq=head.seq + 1, prev=head.hash, time=T0 + 6 * DAY,
                                  kind=kind, body=body).raw.hex()
    bad_feed = [
        {"why": "the teacher's certificate is revoked", "error": "no unrevoked certificate",
         "raw": after(tp.KIND_TEACHER_SIGNATURE, tp.signature_body(k["M"], head.hash))},
        {"why": "the teacher was never certified by this school",
         "error": "no unrevoked certificate",
         "raw": after(tp.KIND_TEACHER_SIGNATURE, tp.signature_body(k["V"], head.hash))},
        {"why": "the signed entry is not in this feed", "error": "not an earlier entry",
         "raw": after(tp.KIND_TEACHER_SIGNATURE, tp.signature_body(k["X"], adapted.hash))},
        {"why": "a second signature of the same entry", "error": "already has",
         "raw": after(tp.KIND_TEACHER_SIGNATURE, tp.signature_body(k["M"], lesson.hash))},
        {"why": "revoking a teacher the school does not vouch for",
         "error": "does not vouch for",
         "raw": after(tp.KIND_TEACHER_REVOCATION, {"teacher": k["X"].public.raw})},
    ]
    good_sig = tp.signature_body(k["M"], lesson.hash)

    def unchecked(kind: str, body: dict) -> str:
        """Signed by the school but never validated: the body breaks a rule of §3."""
        from protocol import codec
        unsigned = {"v": 1, "feed": k["A"].public.raw, "seq": 1, "prev": None, "time": T0,
                    "kind": kind, "body": body}
        sig = k["A"].sign(records.ENTRY_DOMAIN, codec.encode(unsigned))
        return codec.encode({**unsigned, "sig": sig}).hex()
    bad_bodies = [
        {"why": "the teacher's signature is over another entry",
         "raw": unchecked(tp.KIND_TEACHER_SIGNATURE, {**good_sig, "entry": bytes(32)})},
        {"why": "teacher is not 32 bytes",
         "raw": unchecked(tp.KIND_TEACHER_SIGNATURE, {**good_sig, "teacher": b"\x01" * 31})},
        {"why": "a certificate without subjects",
         "raw": unchecked(tp.KIND_TEACHER_CERTIFICATE, {"teacher": k["M"].public.raw,
                                                        "name": "刘老师", "school": "x"})},
        {"why": "21 subjects", "raw": unchecked(tp.KIND_TEACHER_CERTIFICATE, {
            "teacher": k["M"].public.raw, "name": "刘老师", "school": "x",
            "subjects": [f"科目{i}" for i in range(21)]})},
        {"why": "an unknown field", "raw": unchecked(tp.KIND_TEACHER_REVOCATION, {
            "teacher": k["M"].public.raw, "by": "me"})},
        {"why": "a review rating of 6", "raw": unchecked(ps.KIND_STUDIO_REVIEW, {
            "studio": sid, "submission": sub.hash, "rating": 6})},
        {"why": "a task without a due time", "raw": unchecked(ps.KIND_STUDIO_TASK, {
            "studio": sid, "title": "x"})},
        {"why": "a studio id with a bad last character", "raw": unchecked(
            ps.KIND_STUDIO_COMMENT, {"studio": sid[:-1] + "b", "resource": lesson_id,
                                     "text": "x"})},
    ]
    sealed = seal(PASSWORD.encode("utf-8"), SEEDS["V"], KEY_MAGIC, salt=SALT, nonce=NONCE)
    export = seal(PASSWORD.encode("utf-8"),
                  msgpack.packb({"seed": SEEDS["V"], "name": "王老师",
                                 "subjects": ["数学", "科学"]}),
                  EXPORT_MAGIC, salt=SALT, nonce=NONCE)
    out = {
        "keys": {n: {"seed": s.hex(), "public": k[n].public.raw.hex(),
                     "school_id": k[n].school_id} for n, s in SEEDS.items()},
        "feeds": {"A": [e.raw.hex() for e in a.entries], "B": [e.raw.hex() for e in b.entries]},
        "signatures": {"A": sig_of(a), "B": sig_of(b)},
        "studio": {"id": sid, "task": ps.task_id_of(task.hash), "master": "M",
                   "members": ["M", "V"], "submission": sub.hash.hex(), "on_time": True,
                   "review": 5, "comments": 1},
        "contributions": {
            "V": {"published": 0, "adapted": 1, "used_in_class": 0, "reviews_given": 1,
                  "tasks_on_time": 1},
            "M": {"published": 1, "adapted": 0, "used_in_class": 1, "reviews_given": 1,
                  "tasks_on_time": 0}},
        "bad_feed_entries": bad_feed,
        "bad_bodies": bad_bodies,
        "sealed_key": {"password": PASSWORD, "magic": KEY_MAGIC.decode(), "hex": sealed.hex(),
                       "seed": SEEDS["V"].hex()},
        "export_file": {"password": PASSWORD, "hex": export.hex(), "name": "王老师",
                        "subjects": ["数学", "科学"], "public": k["V"].public.raw.hex()},
        "invite_code": {"code": ps.encode_code(sid, k["A"].school_id, SECRET,
                                               ["/ip4/192.0.2.10/tcp/4001"]),
                        "studio": sid, "school": k["A"].school_id, "secret": SECRET.hex(),
                        "seeds": ["/ip4/192.0.2.10/tcp/4001"]},
        "lesson": {"resource_id": lesson_id, "content": cid_to_str(lesson.body["content"])},
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
