"""Generate specs/vectors/curriculum.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_curriculum.py > specs/vectors/curriculum.json

Textbook fields of resource records (specs/records.md §5.3): a record written before them, a
record with all of them, an adaptation recording the original's licence, and records that each
break exactly one rule (validly signed, so the decoder must catch the rule itself).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import CID_DAG_PB, CID_RAW, SchoolKey, make_cid  # noqa: E402
from protocol import codec, records  # noqa: E402

SEED = bytes(range(32))
T0 = 1_764_000_000_000


def resign(key: SchoolKey, m: dict) -> bytes:
    unsigned = {k: v for k, v in m.items() if k != "sig"}
    sig = key.sign(records.ENTRY_DOMAIN, codec.encode(unsigned))
    return msgpack.packb(codec._canonical({**unsigned, "sig": sig}), use_bin_type=True)


def main() -> None:
    a = SchoolKey.from_seed(SEED)
    content = make_cid(CID_DAG_PB, b"directory node")
    f1 = make_cid(CID_RAW, b"lesson")
    files = [{"path": "认识钟表.pptx", "cid": f1, "size": 6}]
    old_meta = {"title": "认识钟表", "inLanguage": "zh-CN", "license": "CC-BY-NC-ND-4.0",
                "about": ["数学"], "educationalLevel": ["lower-primary"]}
    meta = dict(old_meta, grade=3, volume="first", edition="人教版",
                unit={"number": 5, "title": "时、分、秒"}, lesson={"number": 1, "title": "认识钟表"})
    e1 = records.sign_entry(a, seq=1, prev=None, time=T0, kind="profile",
                            body={"name": "县实验小学", "role": "demonstration"})
    e2 = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 1, kind="resource.publish",
                            body={"version": 1, "content": content, "files": files,
                                  "meta": old_meta})
    rid = records.resource_id_of(e2)
    e3 = records.sign_entry(a, seq=3, prev=e2.hash, time=T0 + 2, kind="resource.update",
                            body={"resource": rid, "version": 2, "content": content,
                                  "files": files, "meta": meta})
    adapted = {"title": "认识钟表（拼音版）", "inLanguage": "zh-CN", "license": "CC-BY-4.0",
               "grade": 3, "volume": "first", "edition": "人教版", "lesson": {"title": "认识钟表"},
               "isBasedOn": [rid], "basedOnLicense": ["CC-BY-NC-ND-4.0"]}
    e4 = records.sign_entry(a, seq=4, prev=e3.hash, time=T0 + 3, kind="resource.publish",
                            body={"version": 1, "content": content, "files": files,
                                  "meta": adapted})
    out: dict = {"generator": "specs/vectors/gen_curriculum.py", "spec": "specs/records.md §5.3",
                 "school_seed": SEED.hex()}
    out["entries"] = [{"raw": e.raw.hex(), "hash": e.hash.hex(), "seq": e.seq, "kind": e.kind,
                       "meta": e.body.get("meta")} for e in (e1, e2, e3, e4)]
    base = codec.decode(e3.raw)

    def with_meta(**changes: object) -> dict:
        m = dict(meta)
        for k, v in changes.items():
            if v is None:
                m.pop(k, None)
            else:
                m[k] = v
        return dict(base, body=dict(base["body"], meta=m))

    cases = [
        ("grade 13", with_meta(grade=13)),
        ("grade -1", with_meta(grade=-1)),
        ("grade as text", with_meta(grade="3")),
        ("grade true", with_meta(grade=True)),
        ("volume in Chinese instead of its identifier", with_meta(volume="上册")),
        ("empty edition", with_meta(edition=" ")),
        ("edition longer than 100 characters", with_meta(edition="版" * 101)),
        ("unit is an empty map", with_meta(unit={})),
        ("unit number 0", with_meta(unit={"number": 0, "title": "x"})),
        ("unit number 1000", with_meta(unit={"number": 1000})),
        ("unit with an unknown key", with_meta(unit={"number": 5, "page": 3})),
        ("lesson is text", with_meta(lesson="1 认识钟表")),
        ("lesson title longer than 200 characters", with_meta(lesson={"title": "课" * 201})),
        ("basedOnLicense without isBasedOn", with_meta(basedOnLicense=["CC-BY-4.0"])),
        ("basedOnLicense with an unknown licence",
         with_meta(isBasedOn=[rid], basedOnLicense=["WTFPL"])),
        ("basedOnLicense of another length than isBasedOn",
         with_meta(isBasedOn=[rid], basedOnLicense=["CC-BY-4.0", "CC-BY-4.0"])),
    ]
    out["bad"] = [{"why": why, "raw": resign(a, m).hex()} for why, m in cases]
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
