"""Generate specs/vectors/backup.json (specs/backup.md). Kept, not run by the tests:
    .venv/bin/python specs/vectors/gen_backup.py > specs/vectors/backup.json
"""

import json

from crypto import SchoolKey, seal
from protocol import backup as pb
from protocol import codec, records

PASS = "山高水长 backup 2026"
SALT = bytes(range(0x10, 0x20))
NONCE = bytes(range(0x40, 0x4C))
T = 1_767_225_600_000  # 2026-01-01

key = SchoolKey.from_seed(bytes(range(32)))
e1 = records.sign_entry(key, seq=1, prev=None, time=T, kind=records.KIND_PROFILE,
                        body={"name": "龙泉小学", "role": "school"})
e2 = records.sign_entry(key, seq=2, prev=e1.hash, time=T + 1, kind=records.KIND_REQUEST,
                        body={"subject": "数学", "level": "lower-primary",
                              "description": "分数的初步认识"})
settings = {"school_id": key.school_id, "name": "龙泉小学", "role": "school",
            "feed": key.public.raw.hex(), "language": "zh-CN"}
tables = {"teachers": [{"name": "王老师", "hash": "scrypt$example", "created": T}],
          "follows": [], "communities": [], "invites": [],
          "subscriptions": [{"id": 1, "subject": "数学", "level": None, "created": T}]}
b = pb.Backup(created=T + 2, key=key.to_pem(), settings=settings, tables=tables,
              feed=[e1.raw, e2.raw])
plain = pb.encode(b)
sealed = seal(PASS.encode(), plain, pb.MAGIC, salt=SALT, nonce=NONCE)


def sealed_plain(value: object) -> str:
    return seal(PASS.encode(), codec.encode(value, pb.MAX_PLAINTEXT), pb.MAGIC, salt=SALT,
                nonce=NONCE).hex()


good = codec.decode(plain, pb.MAX_PLAINTEXT)
other = SchoolKey.from_seed(bytes(range(1, 33)))
o1 = records.sign_entry(other, seq=1, prev=None, time=T, kind=records.KIND_PROFILE,
                        body={"name": "别校", "role": "school"})
bad = [
    {"why": "wrong passphrase", "error": "wrong passphrase", "passphrase": PASS + "!",
     "file": sealed.hex()},
    {"why": "not a backup (magic)", "error": "not a schoolmesh backup",
     "passphrase": PASS, "file": (b"SCHOOLMESH BACKUQ\n" + sealed[len(pb.MAGIC):]).hex()},
    {"why": "ciphertext changed", "error": "wrong passphrase", "passphrase": PASS,
     "file": (sealed[:-1] + bytes([sealed[-1] ^ 1])).hex()},
    {"why": "scrypt asks for 1 GiB", "error": "scrypt parameters out of range",
     "passphrase": PASS, "file": (sealed[:len(pb.MAGIC) + 1] + bytes([20])
                                  + sealed[len(pb.MAGIC) + 2:]).hex()},
    {"why": "unknown table", "error": "unknown tables", "passphrase": PASS,
     "file": sealed_plain({**good, "tables": {**tables, "pins": []}})},
    {"why": "column of the wrong type", "error": "wrong type", "passphrase": PASS,
     "file": sealed_plain({**good, "tables": {**tables, "teachers": [
         {"name": "王老师", "hash": "x", "created": "today"}]}})},
    {"why": "feed with a gap", "error": "gap", "passphrase": PASS,
     "file": sealed_plain({**good, "feed": [e2.raw]})},
    {"why": "feed of another school", "error": "not the school key's", "passphrase": PASS,
     "file": sealed_plain({**good, "feed": [o1.raw]})},
    {"why": "format 2 of the plaintext", "error": "not supported", "passphrase": PASS,
     "file": sealed_plain({**good, "v": 2})},
]
print(json.dumps({
    "generator": "specs/vectors/gen_backup.py", "spec": "specs/backup.md",
    "magic": pb.MAGIC.decode(), "passphrase": PASS, "salt": SALT.hex(), "nonce": NONCE.hex(),
    "seed": bytes(range(32)).hex(), "school_id": key.school_id,
    "plaintext": plain.hex(), "file": sealed.hex(), "entries": 2, "bad": bad,
}, ensure_ascii=False, indent=1))
