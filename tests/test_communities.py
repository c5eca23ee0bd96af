"""Communities (sans-IO) against specs/vectors/communities.json: entry bodies, invite codes,
redeem messages and membership resolution, including hostile and racing decisions."""

import json
import random
from pathlib import Path

import pytest

from crypto import SchoolKey
from protocol import codec, records
from protocol import membership as community
from protocol.errors import LocalProtocolError, RemoteProtocolError

V = json.loads((Path(__file__).parents[1] / "specs/vectors/communities.json").read_text("utf-8"))
CID = V["community_id"]
IDS = {n: s["school_id"] for n, s in V["schools"].items()}
KEYS = {n: SchoolKey.from_seed(bytes.fromhex(s["seed"])) for n, s in V["schools"].items()}
E = {n: records.decode_entry(bytes.fromhex(e["raw"])) for n, e in V["entries"].items()}
INV = V["invite"]


def test_entries_decode_and_community_id():
    for name, e in V["entries"].items():
        entry = E[name]
        assert entry.hash.hex() == e["hash"] and entry.school_id == e["school_id"]
    assert community.community_id_of(E["charter"]) == CID
    assert community.is_community_id(CID)
    with pytest.raises(LocalProtocolError):
        community.community_id_of(E["cert_v1"])


@pytest.mark.parametrize("b", V["bad_entries"], ids=lambda b: b["why"])
def test_bad_bodies_rejected(b):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(bytes.fromhex(b["raw"]))


def test_sign_entry_refuses_bad_community_bodies():
    with pytest.raises(LocalProtocolError, match="role"):
        records.sign_entry(KEYS["D"], seq=1, prev=None, time=0, kind=records.KIND_CERTIFICATE,
                           body={"community": CID, "school": IDS["V1"], "role": "king",
                                 "issued": 0})


# -- invite codes ------------------------------------------------------------------------------

def _invite() -> community.Invite:
    return community.Invite(community=INV["community"], issuer=INV["issuer"],
                            seeds=tuple(INV["seeds"]), secret=bytes.fromhex(INV["secret"]),
                            role=INV["role"], expires=INV["expires"])


def test_invite_code_vector_round_trip():
    inv = _invite()
    assert community.encode_invite(inv) == INV["code"]
    assert community.decode_invite(INV["code"]) == inv
    assert inv.invite_id.hex() == INV["invite_id"]
    assert community.invite_verifier(inv.secret).hex() == INV["verifier"]


def test_invite_code_forgives_case_spaces_and_grouping():
    code = INV["code"]
    assert community.decode_invite("  " + code.upper() + "\n") == _invite()
    body = code[len("sm1-"):].replace("-", "")
    assert community.decode_invite("sm1-" + body) == _invite()                 # no groups
    assert community.decode_invite("sm1-" + "-".join(body[i:i + 4]
                                                     for i in range(0, len(body), 4))) == _invite()
    spaced = code[:20] + " \n " + code[20:]
    assert community.decode_invite(spaced) == _invite()


@pytest.mark.parametrize("seeds,role", [
    ((), "member"), (("/ip4/1.2.3.4/tcp/1",) * 2, "member"),
    (tuple(f"/ip4/1.2.3.{i}/tcp/1" for i in range(5)), "member"),
    (("/ip4/" + "1" * 200,), "member"), (("ip4/1.2.3.4",), "member"),
    (("/ip4/1.2.3.4 /tcp/1",), "member"), (("/ip4/1.2.3.4/tcp/1",), "owner")])
def test_invite_refuses_bad_fields(seeds, role):
    with pytest.raises(LocalProtocolError):
        community.Invite(community=CID, issuer=IDS["D"], seeds=seeds, secret=bytes(16),
                         role=role, expires=1)


def test_largest_invite_fits_the_code_limit():
    seeds = tuple(f"/dns4/{i}" + "a" * (community.MAX_SEED_LEN - 7) for i in range(4))
    inv = community.Invite(community=CID, issuer=IDS["D"], seeds=seeds, secret=bytes(16),
                           role="demonstration", expires=2**63 - 1)
    code = community.encode_invite(inv)
    assert len(code) <= community.MAX_CODE_CHARS
    assert community.decode_invite(code) == inv


@pytest.mark.parametrize("b", V["bad_codes"], ids=lambda b: b["why"])
def test_bad_codes_rejected(b):
    with pytest.raises(RemoteProtocolError):
        community.decode_invite(b["code"])


def test_every_single_character_typo_is_caught():
    code = INV["code"]
    for i in range(len(community.CODE_PREFIX), len(code), 7):
        if code[i] == "-":
            continue
        typo = code[:i] + ("b" if code[i] != "b" else "c") + code[i + 1:]
        with pytest.raises(RemoteProtocolError):
            community.decode_invite(typo)


def test_code_with_valid_checksum_but_bad_payload():
    payload = codec.encode({"v": 2, "x": 1})
    data = payload + community.sha256(community.CHECKSUM_DOMAIN + payload)[:4]
    with pytest.raises(RemoteProtocolError, match="invite"):
        community.decode_invite("sm1-" + community._b32(data))


# -- redeem messages ---------------------------------------------------------------------------

def test_redeem_request_vector():
    inv = community.decode_invite(INV["code"])
    req = community.RedeemRequest.build(inv, INV["redeem_request"]["school"])
    assert req.encode().hex() == INV["redeem_request"]["bytes"]
    got = community.decode_redeem_request(bytes.fromhex(INV["redeem_request"]["bytes"]))
    assert got == req and got.invite.hex() == INV["invite_id"]
    got.verify(bytes.fromhex(INV["verifier"]))          # the issuer stores only the verifier
    assert bytes.fromhex(INV["secret"]) not in req.encode()   # the secret never travels


@pytest.mark.parametrize("b", V["bad_proofs"], ids=lambda b: b["why"])
def test_wrong_proofs_rejected(b):
    req = community.decode_redeem_request(bytes.fromhex(b["bytes"]))
    with pytest.raises(RemoteProtocolError, match="proof"):
        req.verify(bytes.fromhex(INV["verifier"]))


def test_redeem_responses():
    ok = community.decode_redeem_response(bytes.fromhex(INV["redeem_response"]))
    cert = community.check_certificate_for(ok.certificate, _invite(), IDS["V1"])
    assert cert.hash == E["cert_v1"].hash
    err = community.decode_redeem_response(bytes.fromhex(INV["redeem_error"]))
    assert (err.error, err.message) == ("used", "invite already redeemed")
    with pytest.raises(RemoteProtocolError):   # a certificate for someone else
        community.check_certificate_for(ok.certificate, _invite(), IDS["V2"])
    with pytest.raises(RemoteProtocolError):   # not a certificate at all
        community.check_certificate_for(E["charter"].raw, _invite(), IDS["V1"])


def test_charter_request_and_response_vectors():
    req = community.decode_request(bytes.fromhex(INV["charter_request"]))
    assert req == community.CharterRequest(community=CID)
    assert req.encode().hex() == INV["charter_request"]
    resp = community.decode_redeem_response(bytes.fromhex(INV["charter_response"]))
    assert community.check_charter_for(resp.charter, CID).hash == E["charter"].hash
    with pytest.raises(RemoteProtocolError):   # another community's charter
        community.check_charter_for(E["other_charter"].raw, CID)
    with pytest.raises(RemoteProtocolError):   # a charter request is not a redeem request
        community.decode_redeem_request(bytes.fromhex(INV["charter_request"]))
    with pytest.raises(RemoteProtocolError):
        community.decode_request(codec.encode({"v": 2, "community": CID}))


@pytest.mark.parametrize("m", [
    {"v": 1}, {"v": 2, "certificate": b"x"}, {"v": 1, "certificate": b"x", "charter": b"y"}, {"v": 1, "certificate": b"x", "error": "used",
                                              "message": ""},
    {"v": 1, "error": "nope", "message": ""}, {"v": 1, "error": "used", "message": "x" * 501},
    [1, 2]])
def test_bad_redeem_responses(m):
    with pytest.raises(RemoteProtocolError):
        community.decode_redeem_response(codec.encode(m))


@pytest.mark.parametrize("m", [
    {"v": 1, "community": CID, "school": "x", "invite": bytes(16), "proof": bytes(64)},
    {"v": 1, "community": "c", "school": IDS["V1"], "invite": bytes(16), "proof": bytes(64)},
    {"v": 1, "community": CID, "school": IDS["V1"], "invite": bytes(15), "proof": bytes(64)},
    {"v": 1, "community": CID, "school": IDS["V1"], "invite": bytes(16), "proof": bytes(63)},
    {"v": 2, "community": CID, "school": IDS["V1"], "invite": bytes(16), "proof": bytes(64)},
    {"v": 1, "community": CID, "school": IDS["V1"], "invite": bytes(16)}])
def test_bad_redeem_requests(m):
    with pytest.raises(RemoteProtocolError):
        community.decode_redeem_request(codec.encode(m))


def test_oversize_redeem_message():
    with pytest.raises(RemoteProtocolError):
        community.decode_redeem_request(codec.encode({"v": 1, "x": bytes(70_000)}))


# -- membership resolution ---------------------------------------------------------------------

def _summary(m: community.Membership) -> dict:
    return {"members": {sid: {"role": x.role, "status": x.status, "revoked_at": x.revoked_at,
                              "decision": x.decision.hex()} for sid, x in m.members.items()},
            "issuers": sorted(m.issuers), "links": sorted(m.links),
            "rejected": {r.entry.hex(): r.reason for r in m.rejected}}


def test_resolution_vector_any_input_order():
    R = V["resolution"]
    want = {k: R[k] for k in ("members", "issuers", "links", "rejected")}
    entries = list(E.values())
    rng = random.Random(4)
    for _ in range(20):
        rng.shuffle(entries)
        doubled = entries + entries[:3]          # duplicates change nothing
        assert _summary(community.resolve(CID, doubled, R["now"])) == want


def test_resolution_story():
    m = community.resolve(CID, E.values(), V["resolution"]["now"])
    assert m.founder == IDS["D"] and m.name == "青山示范校共同体"
    assert m.is_active(IDS["V1"]) and m.members[IDS["E"]].role == "demonstration"
    assert m.issuers == {IDS["D"], IDS["E"]}
    reasons = {r.entry: r.reason for r in m.rejected}
    assert "not an active demonstration" in reasons[E["forged_cert"].hash]   # forged
    assert reasons[E["replayed_invite_cert"].hash] == "invite already redeemed"
    assert "founder" in reasons[E["revoke_founder"].hash]
    assert IDS["X"] not in m.members


def test_race_with_equal_times_larger_hash_wins():
    rv, re_ = E["revoke_v2"], E["readmit_v2"]
    assert community._decision_time(rv) == community._decision_time(re_)
    winner = V["resolution"]["race_winner"]
    assert max(rv.hash, re_.hash).hex() == winner
    v2 = community.resolve(CID, E.values(), V["resolution"]["now"]).members[IDS["V2"]]
    assert v2.decision.hex() == winner
    assert v2.status == ("revoked" if winner == rv.hash.hex() else "active")


def _sign(key, kind, body, time):
    return records.sign_entry(key, seq=1, prev=None, time=time, kind=kind, body=body)


def test_later_decision_wins_either_way():
    base = [E["charter"], E["cert_e"], E["cert_v2"]]
    t = E["revoke_v2"].body["time"]
    revoke = _sign(KEYS["D"], records.KIND_REVOCATION,
                   {"community": CID, "school": IDS["V2"], "time": t}, t)
    readmit = _sign(KEYS["E"], records.KIND_CERTIFICATE,
                    {"community": CID, "school": IDS["V2"], "role": "member", "issued": t + 1}, t)
    m = community.resolve(CID, base + [readmit, revoke], t + 10)
    assert m.members[IDS["V2"]].status == "active"
    revoke2 = _sign(KEYS["D"], records.KIND_REVOCATION,
                    {"community": CID, "school": IDS["V2"], "time": t + 2}, t)
    m = community.resolve(CID, base + [revoke2, readmit, revoke], t + 10)
    v2 = m.members[IDS["V2"]]
    assert (v2.status, v2.revoked_at) == ("revoked", t + 2)


def test_expired_certificate():
    X = V["expired"]
    m = community.resolve(CID, [E[n] for n in X["entries"]], X["now"])
    assert m.members[X["school"]].status == X["status"] == "expired"
    assert not m.is_active(X["school"])


def test_expired_or_revoked_demonstration_school_cannot_issue():
    t = E["cert_e"].body["issued"]
    short = _sign(KEYS["D"], records.KIND_CERTIFICATE,
                  {"community": CID, "school": IDS["E"], "role": "demonstration",
                   "issued": t, "expires": t + 100}, t)
    late = _sign(KEYS["E"], records.KIND_CERTIFICATE,
                 {"community": CID, "school": IDS["V2"], "role": "member", "issued": t + 100}, t)
    m = community.resolve(CID, [E["charter"], short, late], t + 1000)
    assert IDS["V2"] not in m.members and m.members[IDS["E"]].status == "expired"
    assert IDS["E"] not in m.issuers
    assert community.may_redeem(m, IDS["E"], t + 10**9, t + 1000) == "not-issuer"
    assert community.may_redeem(m, IDS["D"], t + 10**9, t + 1000) is None
    assert community.may_redeem(m, IDS["D"], t + 1000, t + 1000) == "expired"
    # removed: E's certificates from before its revocation stand, later ones do not count
    full = community.resolve(CID, list(E.values()) + [
        _sign(KEYS["D"], records.KIND_REVOCATION,
              {"community": CID, "school": IDS["E"], "time": t + 50_000}, t)],
        V["resolution"]["now"])
    assert full.members[IDS["E"]].status == "revoked" and IDS["E"] not in full.issuers
    assert full.members[IDS["V2"]].decision in (E["revoke_v2"].hash, E["readmit_v2"].hash)


def test_future_dated_decision_waits():
    t = E["charter"].time
    future = _sign(KEYS["D"], records.KIND_REVOCATION,
                   {"community": CID, "school": IDS["V1"], "time": t + 10**9}, t)
    m = community.resolve(CID, [E["charter"], E["cert_v1"], future], t + 10_000)
    assert m.is_active(IDS["V1"])
    assert [r.reason for r in m.rejected] == ["dated in the future"]
    later = community.resolve(CID, [E["charter"], E["cert_v1"], future], t + 10**9)
    assert later.members[IDS["V1"]].status == "revoked"


def test_unknown_charter_and_other_communities():
    m = community.resolve(CID, [E["cert_v1"], E["other_charter"]], 0)
    assert m.members == {} and m.founder is None
    assert [r.reason for r in m.rejected] == ["charter unknown"]
    other = community.community_id_of(E["other_charter"])
    assert community.resolve(other, E.values(), 0).members.keys() == {IDS["X"]}


def test_membership_moves_follow_the_table_and_illegal_ones_are_rejected():
    """protocol/community.MEMBERSHIP_TRANSITIONS is the whole state machine of one school:
    never admitted -> (certificate) active -> (revocation) revoked -> (certificate) active;
    a revocation of a school never admitted is rejected; a second revocation changes nothing."""
    T = community.MEMBERSHIP_TRANSITIONS
    assert T[records.KIND_CERTIFICATE] == {None: "active", "active": "active",
                                            "revoked": "active"}
    assert None not in T[records.KIND_REVOCATION]
    base = [E["charter"], E["cert_e"]]
    t = E["cert_e"].body["issued"] + 10

    def revoke(at):
        return _sign(KEYS["D"], records.KIND_REVOCATION,
                     {"community": CID, "school": IDS["V2"], "time": at}, at)

    def certify(at):
        return _sign(KEYS["D"], records.KIND_CERTIFICATE,
                     {"community": CID, "school": IDS["V2"], "role": "member", "issued": at}, at)
    # never admitted: a revocation is rejected and admits nobody
    m = community.resolve(CID, base + [revoke(t)], t + 100)
    assert IDS["V2"] not in m.members
    assert [r.reason for r in m.rejected] == ["school was never admitted"]
    # active -> revoked -> revoked again (the first revocation stands) -> readmitted
    m = community.resolve(CID, base + [certify(t), revoke(t + 1), revoke(t + 2)], t + 100)
    assert (m.members[IDS["V2"]].status, m.members[IDS["V2"]].revoked_at) == ("revoked", t + 1)
    m = community.resolve(CID, base + [certify(t), revoke(t + 1), certify(t + 3)], t + 100)
    assert m.members[IDS["V2"]].status == "active" and m.rejected == ()
