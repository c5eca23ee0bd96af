"""Generate specs/vectors/records.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_records.py > specs/vectors/records.json

Ed25519 signatures are deterministic, so the output is stable for the fixed seeds below.
Negative cases are built by hand so each breaks exactly one rule (and, where the rule is not
about the signature, carry a valid signature so the decoder must catch the rule itself).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import CID_DAG_PB, CID_RAW, SchoolKey, cid_to_str, make_cid  # noqa: E402
from protocol import codec, records  # noqa: E402

SEED_A = bytes(range(32))
SEED_B = bytes([0xA5] * 32)
T0 = 1_763_900_000_000


def resign(key: SchoolKey, m: dict) -> bytes:
    """Sign an arbitrary (possibly invalid) unsigned map and encode it canonically."""
    unsigned = {k: v for k, v in m.items() if k != "sig"}
    sig = key.sign(records.ENTRY_DOMAIN, codec.encode(unsigned))
    return msgpack.packb(codec._canonical({**unsigned, "sig": sig}), use_bin_type=True)


def main() -> None:
    a = SchoolKey.from_seed(SEED_A)
    b = SchoolKey.from_seed(SEED_B)
    out: dict = {"generator": "specs/vectors/gen_records.py", "spec": "specs/records.md"}
    out["keys"] = [{"seed": k.seed.hex(), "public": k.public.raw.hex(), "school_id": k.school_id}
                   for k in (a, b)]
    msg = b"hello schools"
    out["signatures"] = [
        {"seed": a.seed.hex(), "record_type": rt, "message": msg.hex(),
         "signed_bytes": (b"schoolmesh/v1/" + rt.encode() + b"\0" + msg).hex(),
         "signature": a.sign(rt, msg).hex()}
        for rt in ("feed-entry", "wants")]
    out["canonical"] = [
        {"value_json": v, "hex": codec.encode(v).hex()}
        for v in ({"b": 1, "a": [1, 2], "é": "文"}, {"n": 2**32, "m": -1, "z": 127, "y": 128},
                  {"empty": {}, "t": True, "nil": None})]
    out["non_canonical"] = [
        {"why": "keys not sorted", "hex": (b"\x82\xa1b\x01\xa1a\x02").hex()},
        {"why": "duplicate key", "hex": (b"\x82\xa1a\x01\xa1a\x02").hex()},
        {"why": "integer not minimal (uint8 for 1)", "hex": (b"\x81\xa1a\xcc\x01").hex()},
        {"why": "str8 where fixstr fits", "hex": (b"\x81\xd9\x01a\x01").hex()},
        {"why": "float", "hex": msgpack.packb({"a": 1.5}).hex()},
        {"why": "trailing bytes", "hex": (codec.encode({"a": 1}) + b"\x00").hex()},
        {"why": "extension type", "hex": (b"\x81\xa1a\xd4\x01\x00").hex()},
    ]
    # A valid chain: profile, publish, update, retract.
    content = make_cid(CID_DAG_PB, b"directory node")
    f1 = make_cid(CID_RAW, b"lesson")
    meta = {"title": "分数的初步认识", "inLanguage": "zh-CN", "license": "CC-BY-4.0",
            "about": ["数学"], "educationalLevel": ["lower-primary"],
            "learningResourceType": "lesson-plan", "timeRequired": "PT40M"}
    e1 = records.sign_entry(a, seq=1, prev=None, time=T0, kind="profile",
                            body={"name": "青山小学", "role": "school"})
    e2 = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 1000, kind="resource.publish",
                            body={"version": 1, "content": content,
                                  "files": [{"path": "教案.md", "cid": f1, "size": 6}],
                                  "meta": meta})
    rid = records.resource_id_of(e2)
    e3 = records.sign_entry(a, seq=3, prev=e2.hash, time=T0 + 2000, kind="resource.update",
                            body={"resource": rid, "version": 2, "content": content,
                                  "files": [{"path": "教案.md", "cid": f1, "size": 6}],
                                  "meta": {**meta, "title": "分数（修订）"}})
    e4 = records.sign_entry(a, seq=4, prev=e3.hash, time=T0 + 3000, kind="resource.retract",
                            body={"resource": rid, "reason": "replaced"})
    out["entries"] = [{"raw": e.raw.hex(), "hash": e.hash.hex(), "seq": e.seq, "kind": e.kind,
                       "school_id": e.school_id} for e in (e1, e2, e3, e4)]
    out["resource_id"] = {"entry_seq": 2, "resource_id": rid}
    out["content_cid"] = cid_to_str(content)

    base = codec.decode(e2.raw)
    bad = []

    def add(why: str, raw: bytes, rule: str) -> None:
        bad.append({"why": why, "rule": rule, "raw": raw.hex()})

    flipped = dict(base, sig=bytes([base["sig"][0] ^ 1]) + base["sig"][1:])
    add("signature does not verify (one bit flipped)", codec.encode(flipped), "signature")
    add("signed by another key than feed", resign(b, base), "signature")
    tampered = dict(base, body=dict(base["body"], meta=dict(meta, title="changed")))
    add("body changed after signing", codec.encode(tampered), "signature")
    add("unknown version 2", resign(a, dict(base, v=2)), "version")
    # the signature is over v = 1; accepting true (== 1 in Python) would give one signed entry
    # a second encoding, hence a second hash (another prev, another resource id)
    add("version true instead of 1, original signature", codec.encode(dict(base, v=True)),
        "version")
    add("missing field time", resign(a, {k: v for k, v in base.items() if k != "time"}),
        "fields")
    add("extra field", resign(a, dict(base, extra=1)), "fields")
    add("prev on entry 1", resign(a, dict(base, seq=1)), "chain-field")
    add("prev missing on entry 2", resign(a, dict(base, prev=None)), "chain-field")
    add("unknown license", resign(a, dict(base, body=dict(base["body"],
        meta=dict(meta, license="WTFPL")))), "body")
    add("file path escapes", resign(a, dict(base, body=dict(base["body"], files=[
        {"path": "../etc/passwd", "cid": f1, "size": 6}]))), "body")
    add("publish with version 2", resign(a, dict(base, body=dict(base["body"], version=2))),
        "body")
    raw_unsorted = msgpack.packb({**{k: base[k] for k in reversed(sorted(base))}},
                                 use_bin_type=True)
    add("keys not sorted", raw_unsorted, "canonical")
    add("oversize record", b"\xc6" + (2 * 1024 * 1024).to_bytes(4, "big") + b"\0" * 16,
        "size")
    out["bad_entries"] = bad
    # Chain-level failures: individually valid entries that do not follow each other.
    e2_wrong_prev = records.sign_entry(a, seq=2, prev=bytes(32), time=T0, kind="profile",
                                       body={"name": "x", "role": "school"})
    e3_gap = records.sign_entry(a, seq=3, prev=e1.hash, time=T0, kind="profile",
                                body={"name": "x", "role": "school"})
    e2_fork = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 5, kind="profile",
                                 body={"name": "other", "role": "school"})
    out["bad_chains"] = [
        {"why": "prev does not match entry 1", "entries": [e1.raw.hex(), e2_wrong_prev.raw.hex()]},
        {"why": "gap: entry 3 after entry 1", "entries": [e1.raw.hex(), e3_gap.raw.hex()]},
    ]
    out["equivocation"] = {"why": "two different valid entries 2 of one feed",
                           "entries": [e1.raw.hex(), e2.raw.hex(), e2_fork.raw.hex()]}
    # Requests and feedback (web library): school B asks, then rates A's resource.
    p1 = records.sign_entry(b, seq=1, prev=None, time=T0, kind="profile",
                            body={"name": "龙泉小学", "role": "school"})
    q2 = records.sign_entry(b, seq=2, prev=p1.hash, time=T0 + 1000, kind="request",
                            body={"subject": "科学", "level": "lower-secondary",
                                  "description": "需要电路实验的微课"})
    f3 = records.sign_entry(b, seq=3, prev=q2.hash, time=T0 + 2000, kind="feedback",
                            body={"resource": rid, "used": True, "rating": 4,
                                  "comment": "学生很喜欢"})
    out["community"] = {
        "entries": [{"raw": e.raw.hex(), "hash": e.hash.hex(), "seq": e.seq, "kind": e.kind,
                     "school_id": e.school_id} for e in (p1, q2, f3)],
        "request_id": records.request_id_of(q2)}
    qbase, fbase = codec.decode(q2.raw), codec.decode(f3.raw)
    out["bad_community_entries"] = [
        {"why": why, "rule": "body", "raw": resign(b, m).hex()} for why, m in (
            ("request with an unknown level",
             dict(qbase, body=dict(qbase["body"], level="grade-7"))),
            ("request without a description",
             dict(qbase, body={k: v for k, v in qbase["body"].items() if k != "description"})),
            ("feedback rating 6", dict(fbase, body=dict(fbase["body"], rating=6))),
            ("feedback rating 0", dict(fbase, body=dict(fbase["body"], rating=0))),
            ("feedback used is not a boolean", dict(fbase, body=dict(fbase["body"], used=1))),
            ("feedback about something that is not a resource id",
             dict(fbase, body=dict(fbase["body"], resource="../x"))),
            ("feedback comment longer than 500 characters",
             dict(fbase, body=dict(fbase["body"], comment="x" * 501))),
        )]
    # meta.tool (§5.2): an adaptation made with a text tool, and broken tool records.
    tool = {"name": "OpenCC", "version": "1.4.2", "model": "s2t",
            "instructionsHash": hashlib.sha256("schoolmesh tools convert: simplified to "
                                               "traditional Chinese characters, phrase-aware"
                                               .encode("utf-8")).hexdigest()}
    adapted = dict(meta, title="分數的初步認識", inLanguage="zh-TW", isBasedOn=[rid], tool=tool)
    t5 = records.sign_entry(a, seq=5, prev=e4.hash, time=T0 + 4000, kind="resource.publish",
                            body={"version": 1, "content": content,
                                  "files": [{"path": "教案.md", "cid": f1, "size": 6}],
                                  "meta": adapted})
    tbase = codec.decode(t5.raw)

    def with_tool(value: object) -> dict:
        return dict(tbase, body=dict(tbase["body"], meta=dict(adapted, tool=value)))

    out["tool"] = {
        "entry": {"raw": t5.raw.hex(), "hash": t5.hash.hex(), "seq": t5.seq, "kind": t5.kind,
                  "school_id": t5.school_id, "after": "entries"},
        "tool": tool,
        "bad": [{"why": why, "rule": "body", "raw": resign(a, with_tool(v)).hex()}
                for why, v in (
                    ("tool is not a map", "OpenCC"),
                    ("tool without version", {k: v for k, v in tool.items() if k != "version"}),
                    ("tool with an unknown key", dict(tool, prompt="be nice")),
                    ("instructionsHash in upper case",
                     dict(tool, instructionsHash=tool["instructionsHash"].upper())),
                    ("instructionsHash of 31 bytes",
                     dict(tool, instructionsHash=tool["instructionsHash"][:62])),
                    ("empty name", dict(tool, name=" ")),
                    ("version longer than 64 characters", dict(tool, version="1" * 65)),
                )]}
    # The AI assistant (§5.2, §5.3): an adaptation it drafted, and a model file as a resource.
    instructions = (
        "你是一位帮助中国乡村小学教师改编教学资源的助手。回答用简体中文，内容准确、适合儿童，"
        "不编造事实。你写的是草稿，教师会审阅和修改。\n"
        "把下面的教学资源改写得更简单，适合2年级学生阅读：用常用字、短句子，保留主要内容。")
    ai_tool = {"name": "schoolmesh-ai", "version": "0.1.0",
               "model": "qwen2.5-1.5b-instruct-q4_k_m",
               "instructionsHash": hashlib.sha256(instructions.encode("utf-8")).hexdigest()}
    ai_meta = dict(meta, title="分数的初步认识（简化到 2 年级）", creator="李老师",
                   isBasedOn=[rid], tool=ai_tool)
    t6 = records.sign_entry(a, seq=6, prev=t5.hash, time=T0 + 5000, kind="resource.publish",
                            body={"version": 1, "content": content,
                                  "files": [{"path": "ai-simplify.md", "cid": f1, "size": 6}],
                                  "meta": ai_meta})
    model_meta = {"title": "Qwen2.5 1.5B Instruct (Q4_K_M)", "inLanguage": "zh-CN",
                  "license": "Apache-2.0", "learningResourceType": "ai-model"}
    t7 = records.sign_entry(a, seq=7, prev=t6.hash, time=T0 + 6000, kind="resource.publish",
                            body={"version": 1, "content": content,
                                  "files": [{"path": "qwen2.5-1.5b-instruct-q4_k_m.gguf",
                                             "cid": f1, "size": 6}],
                                  "meta": model_meta})
    out["ai"] = {
        "instructions": instructions, "tool": ai_tool,
        "entries": [{"raw": e.raw.hex(), "hash": e.hash.hex(), "seq": e.seq, "kind": e.kind,
                     "school_id": e.school_id, "after": "tool"} for e in (t6, t7)]}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
