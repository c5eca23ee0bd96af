"""Generate specs/vectors/communities.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_communities.py > specs/vectors/communities.json

Fixed seeds and a fixed invite secret (randomness is the caller's; here it is constant), so the
output is stable. The story: demonstration school D founds a community, admits village schools
V1 (by invite) and V2, and a second demonstration school E; then D and E race on V2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import SchoolKey  # noqa: E402
from protocol import codec, records  # noqa: E402
from protocol import membership as community  # noqa: E402

T0 = 1_763_900_000_000
DAY = 86_400_000
SEEDS = {"D": bytes([0xD0] * 32), "E": bytes([0xE0] * 32), "V1": bytes([0x01] * 32),
         "V2": bytes([0x02] * 32), "X": bytes([0x0F] * 32)}
SECRET = bytes(range(0x40, 0x50))


class Feed:
    def __init__(self, key: SchoolKey) -> None:
        self.key, self.entries = key, []

    def add(self, time: int, kind: str, body: dict) -> records.FeedEntry:
        prev = self.entries[-1].hash if self.entries else None
        e = records.sign_entry(self.key, seq=len(self.entries) + 1, prev=prev, time=time,
                               kind=kind, body=body)
        self.entries.append(e)
        return e


def resign(key: SchoolKey, m: dict) -> bytes:
    unsigned = {k: v for k, v in m.items() if k != "sig"}
    return codec.encode({**unsigned, "sig": key.sign(records.ENTRY_DOMAIN,
                                                     codec.encode(unsigned))})


def ej(e: records.FeedEntry) -> dict:
    return {"raw": e.raw.hex(), "hash": e.hash.hex(), "school_id": e.school_id, "kind": e.kind}


def main() -> None:
    k = {n: SchoolKey.from_seed(s) for n, s in SEEDS.items()}
    ids = {n: key.school_id for n, key in k.items()}
    d, e_, v1, x = Feed(k["D"]), Feed(k["E"]), Feed(k["V1"]), Feed(k["X"])
    charter = d.add(T0, records.KIND_CHARTER,
                    {"name": "青山示范校共同体", "description": "一所示范校与村小结对"})
    cid = community.community_id_of(charter)
    inv = community.Invite(community=cid, issuer=ids["D"],
                           seeds=("/ip4/192.0.2.10/tcp/4001", "/dns4/qingshan.example/tcp/4001"),
                           secret=SECRET, role="member", expires=T0 + 7 * DAY)
    code = community.encode_invite(inv)
    req = community.RedeemRequest.build(inv, ids["V1"])
    c_v1 = d.add(T0 + 1000, records.KIND_CERTIFICATE,
                 {"community": cid, "school": ids["V1"], "role": "member", "issued": T0 + 1000,
                  "expires": T0 + 365 * DAY, "invite": inv.invite_id})
    c_e = d.add(T0 + 2000, records.KIND_CERTIFICATE,
                {"community": cid, "school": ids["E"], "role": "demonstration",
                 "issued": T0 + 2000})
    c_v2 = e_.add(T0 + 3000, records.KIND_CERTIFICATE,
                  {"community": cid, "school": ids["V2"], "role": "member",
                   "issued": T0 + 3000, "expires": T0 + 30 * DAY})
    link = d.add(T0 + 4000, records.KIND_LINK,
                 {"community": cid, "other": "c" + "a" * 26, "time": T0 + 4000})
    # The race: D revokes V2 while E re-admits it, both at T0 + 10 s.
    rv = d.add(T0 + 10_000, records.KIND_REVOCATION,
               {"community": cid, "school": ids["V2"], "reason": "不再参加", "time": T0 + 10_000})
    re_ = e_.add(T0 + 10_000, records.KIND_CERTIFICATE,
                 {"community": cid, "school": ids["V2"], "role": "member",
                  "issued": T0 + 10_000, "expires": T0 + 60 * DAY})
    winner = max((rv, re_), key=lambda e: e.hash)
    # Negative decisions.
    xc = x.add(T0, records.KIND_CHARTER, {"name": "another community"})
    forged = x.add(T0 + 5000, records.KIND_CERTIFICATE,
                   {"community": cid, "school": ids["X"], "role": "demonstration",
                    "issued": T0 + 5000})
    replay = e_.add(T0 + 6000, records.KIND_CERTIFICATE,
                    {"community": cid, "school": ids["X"], "role": "member",
                     "issued": T0 + 6000, "invite": inv.invite_id})
    founder_rv = e_.add(T0 + 7000, records.KIND_REVOCATION,
                        {"community": cid, "school": ids["D"], "time": T0 + 7000})
    now = T0 + 40 * DAY
    m = community.resolve(cid, [charter, c_v1, c_e, c_v2, link, rv, re_, xc, forged, replay,
                                founder_rv], now)
    out: dict = {"generator": "specs/vectors/gen_communities.py", "spec": "specs/communities.md",
                 "schools": {n: {"seed": s.hex(), "school_id": ids[n]} for n, s in SEEDS.items()},
                 "community_id": cid}
    out["invite"] = {
        "code": code, "community": cid, "issuer": ids["D"], "seeds": list(inv.seeds),
        "secret": SECRET.hex(), "role": inv.role, "expires": inv.expires,
        "invite_id": inv.invite_id.hex(), "verifier": community.invite_verifier(SECRET).hex(),
        "redeem_request": {"school": ids["V1"], "proof": req.proof.hex(),
                           "bytes": req.encode().hex()},
        "redeem_response": community.RedeemResponse(certificate=c_v1.raw).encode().hex(),
        "redeem_error": community.RedeemResponse(error="used",
                                                 message="invite already redeemed").encode().hex(),
        "charter_request": community.CharterRequest(community=cid).encode().hex(),
        "charter_response": community.RedeemResponse(charter=charter.raw).encode().hex(),
    }
    out["entries"] = {n: ej(e) for n, e in (
        ("charter", charter), ("cert_v1", c_v1), ("cert_e", c_e), ("cert_v2", c_v2),
        ("link", link), ("revoke_v2", rv), ("readmit_v2", re_), ("other_charter", xc),
        ("forged_cert", forged), ("replayed_invite_cert", replay),
        ("revoke_founder", founder_rv))}
    out["resolution"] = {
        "now": now,
        "members": {sid: {"role": mm.role, "status": mm.status, "revoked_at": mm.revoked_at,
                          "decision": mm.decision.hex()} for sid, mm in m.members.items()},
        "issuers": sorted(m.issuers), "links": sorted(m.links),
        "rejected": {r.entry.hex(): r.reason for r in m.rejected},
        "race_winner": winner.hash.hex(),
    }
    # Expired: V2's first certificate (30 days) seen without the later decisions.
    out["expired"] = {"entries": ["charter", "cert_e", "cert_v2"], "now": T0 + 31 * DAY,
                      "school": ids["V2"], "status": "expired"}
    # Bad entry bodies, signed by D so only the body rule can reject them.
    cbase = codec.decode(c_v1.raw)
    bad = []
    for why, body in (
            ("certificate role owner", dict(cbase["body"], role="owner")),
            ("certificate expires before issued", dict(cbase["body"], expires=T0)),
            ("certificate school is not a school id", dict(cbase["body"], school="V1")),
            ("certificate invite id of 8 bytes", dict(cbase["body"], invite=bytes(8))),
            ("certificate without community",
             {kk: v for kk, v in cbase["body"].items() if kk != "community"}),
            ("certificate with an extra field", dict(cbase["body"], note="x")),
            ("link to itself", {"community": cid, "other": cid, "time": T0}),
            ("revocation time is negative",
             {"community": cid, "school": ids["V2"], "time": -1}),
            ("charter name empty", {"name": ""}),
    ):
        kind = {"link to itself": records.KIND_LINK}.get(why, cbase["kind"])
        if why.startswith("revocation"):
            kind = records.KIND_REVOCATION
        if why.startswith("charter"):
            kind = records.KIND_CHARTER
        bad.append({"why": why, "raw": resign(k["D"], dict(cbase, kind=kind, body=body)).hex()})
    out["bad_entries"] = bad
    # Bad invite codes.
    body = code[len(community.CODE_PREFIX):]
    flip = body[:10] + ("b" if body[10] == "a" else "a") + body[11:]
    out["bad_codes"] = [
        {"why": "one character changed (checksum)", "code": community.CODE_PREFIX + flip},
        {"why": "truncated", "code": code[:-7]},
        {"why": "wrong prefix", "code": "sm2-" + body},
        {"why": "character outside base32", "code": community.CODE_PREFIX + "1" + body[1:]},
        {"why": "empty", "code": community.CODE_PREFIX},
        {"why": "too long", "code": community.CODE_PREFIX + "a" * community.MAX_CODE_CHARS},
    ]
    wrong = community.RedeemRequest(community=cid, school=ids["X"], invite=inv.invite_id,
                                    proof=req.proof)
    other_secret = community.redeem_proof(bytes(16), cid, ids["V1"])
    out["bad_proofs"] = [
        {"why": "proof of V1 replayed by X", "bytes": wrong.encode().hex()},
        {"why": "proof made with another secret",
         "bytes": community.RedeemRequest(community=cid, school=ids["V1"], invite=inv.invite_id,
                                          proof=other_secret).encode().hex()},
    ]
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
