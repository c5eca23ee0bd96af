"""Paired-assistance communities (specs/communities.md). Sans-IO: no clock, no randomness.

* Four feed entry kinds (their bodies are validated by :mod:`.decisions`): a charter (a
  demonstration school founds a community), certificates and revocations (a demonstration school
  admits or removes a school) and links (federation with another community).
* Invite codes: ``sm1-`` + grouped base32 of a canonical msgpack map and a checksum. The code
  carries a one-time secret; the issuer keeps only the invite id and a *verifier* (an Ed25519
  public key derived from the secret), so a leaked database holds no usable invite.
* The redeem messages of ``/schoolmesh/community/1.0.0``: the joining school signs its school id
  and the community id with the invite key (the secret itself never leaves the school).
* :func:`resolve` computes the member set of a community from its entries, deterministically.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Iterable

from crypto import BadSignature, PublicKey, SchoolKey, sha256

from . import codec, records
from .decisions import (  # noqa: F401  (part of this module's interface)
    _B32, CERT_ROLES, INVITE_ID_SIZE, MAX_TIME, ROLE_DEMONSTRATION, ROLE_MEMBER,
    _check_community, _check_school_id, _check_time, is_community_id, validate_body,
)
from .errors import LocalProtocolError, RemoteProtocolError

PROTOCOL_ID = "/schoolmesh/community/1.0.0"
VERSION = 1

ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"

MAX_CLOCK_SKEW = 10 * 60_000  # ms; decisions dated further ahead of `now` wait until then
SECRET_SIZE = 16              # bytes of the one-time invite secret
MAX_SEEDS = 4                 # seed multiaddrs in one invite
MAX_SEED_LEN = 200            # bytes of one seed multiaddr (text form)
CODE_PREFIX = "sm1-"
CODE_GROUP = 5                # base32 characters between dashes, for reading aloud / typing
CHECKSUM_SIZE = 4             # bytes of sha256 appended to the payload: catches typos
MAX_CODE_CHARS = 2048         # a code with 4 seeds of 200 bytes is about 1,800 characters
MAX_REDEEM_MESSAGE = 64 * 1024  # a redeem request or response (a certificate is < 1 KiB)

INVITE_KEY_DOMAIN = b"schoolmesh/v1/invite-key\0"   # seed of the invite key = sha256(this||secret)
CHECKSUM_DOMAIN = b"schoolmesh/v1/invite-code\0"
PROOF_DOMAIN = "invite-proof"                      # signature domain of the redeem proof

REDEEM_ERRORS = ("unknown-invite", "used", "expired", "bad-proof", "not-issuer",
                 "wrong-community", "busy", "revoked", "unknown-community")



# -- ids ---------------------------------------------------------------------------------------

def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    pad = "=" * (-len(text) % 8)
    return base64.b32decode(text.upper() + pad)


def community_id_of(entry: records.FeedEntry) -> str:
    """A community's id: "c" + base32 of the first 16 bytes of its charter entry's hash."""
    if entry.kind != records.KIND_CHARTER:
        raise LocalProtocolError("only a community.charter entry defines a community id")
    return "c" + _b32(entry.hash[:16])


def invite_id(secret: bytes) -> bytes:
    """The invite id: sha256(secret)[:16]. Safe to store and to send in clear."""
    _check_secret(secret, LocalProtocolError)
    return sha256(secret)[:INVITE_ID_SIZE]


def invite_key(secret: bytes) -> SchoolKey:
    """The Ed25519 key derived from an invite secret; the joining school signs with it."""
    _check_secret(secret, LocalProtocolError)
    return SchoolKey.from_seed(sha256(INVITE_KEY_DOMAIN + secret))


def invite_verifier(secret: bytes) -> bytes:
    """What the issuer stores instead of the secret: the invite key's 32-byte public key."""
    return invite_key(secret).public.raw


def _check_secret(secret: Any, err: type[Exception]) -> None:
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        raise err(f"an invite secret is exactly {SECRET_SIZE} bytes")



# -- invite codes ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """What an invite code carries. Only ``secret`` is a credential; the issuer never trusts
    the other fields from a request (it keeps its own record of the invite)."""

    community: str            # community id
    issuer: str               # school id of the demonstration school that holds the verifier
    seeds: tuple[str, ...]    # multiaddrs (text) of the issuer, 1 to MAX_SEEDS
    secret: bytes             # SECRET_SIZE random bytes, chosen by the caller
    role: str                 # member | demonstration
    expires: int              # ms since the epoch; redeeming after this fails

    def __post_init__(self) -> None:
        _check_community(self.community)
        _check_school_id(self.issuer, "issuer")
        if not isinstance(self.seeds, tuple) or not 1 <= len(self.seeds) <= MAX_SEEDS:
            raise LocalProtocolError(f"an invite carries 1 to {MAX_SEEDS} seed addresses")
        for s in self.seeds:
            _check_seed(s)
        if len(set(self.seeds)) != len(self.seeds):
            raise LocalProtocolError("seed addresses must be unique")
        _check_secret(self.secret, LocalProtocolError)
        if self.role not in CERT_ROLES:
            raise LocalProtocolError(f"role must be one of {', '.join(CERT_ROLES)}")
        _check_time(self.expires, "expires")

    @property
    def invite_id(self) -> bytes:
        return invite_id(self.secret)


def _check_seed(s: Any) -> None:
    if not isinstance(s, str) or not s.startswith("/"):
        raise LocalProtocolError("a seed address is a multiaddr text starting with '/'")
    if not s.isascii() or not s.isprintable() or " " in s:
        raise LocalProtocolError("a seed address is printable ASCII without spaces")
    if len(s) > MAX_SEED_LEN:
        raise LocalProtocolError(f"a seed address is at most {MAX_SEED_LEN} bytes")


def _invite_map(inv: Invite) -> dict[str, Any]:
    return {"v": VERSION, "c": _unb32(inv.community[1:]),
            "i": PublicKey.from_school_id(inv.issuer).raw, "s": list(inv.seeds),
            "k": inv.secret, "r": inv.role, "e": inv.expires}


def encode_invite(inv: Invite) -> str:
    """The copy-pastable code: ``sm1-`` + base32 (groups of 5) of payload || checksum."""
    payload = codec.encode(_invite_map(inv))
    data = payload + sha256(CHECKSUM_DOMAIN + payload)[:CHECKSUM_SIZE]
    text = _b32(data)
    return CODE_PREFIX + "-".join(text[i:i + CODE_GROUP] for i in range(0, len(text), CODE_GROUP))


def decode_invite(code: str) -> Invite:
    """Parse a code typed or pasted by a person. Case, spaces, line breaks and dashes between
    groups are forgiven; anything else wrong raises RemoteProtocolError with a plain reason."""
    if not isinstance(code, str):
        raise RemoteProtocolError("an invite code is text")
    if len(code) > MAX_CODE_CHARS:
        raise RemoteProtocolError(f"an invite code is at most {MAX_CODE_CHARS} characters")
    text = "".join(code.split()).lower()
    if not text.startswith(CODE_PREFIX):
        raise RemoteProtocolError(f"an invite code starts with {CODE_PREFIX!r}")
    body = text[len(CODE_PREFIX):].replace("-", "")
    if not body or any(c not in _B32 for c in body) or len(body) % 8 in (1, 3, 6):
        raise RemoteProtocolError("the invite code has characters that cannot be in a code "
                                  "(check for a missing or extra character)")
    try:
        data = _unb32(body)
    except (binascii.Error, ValueError):
        raise RemoteProtocolError("the invite code is not valid base32") from None
    if _b32(data) != body:
        raise RemoteProtocolError("the invite code is not valid base32 (trailing bits)")
    payload, check = data[:-CHECKSUM_SIZE], data[-CHECKSUM_SIZE:]
    if len(data) <= CHECKSUM_SIZE or sha256(CHECKSUM_DOMAIN + payload)[:CHECKSUM_SIZE] != check:
        raise RemoteProtocolError("the invite code is mistyped or incomplete (checksum fails)")
    m = codec.decode(payload, max_size=MAX_CODE_CHARS)
    if not isinstance(m, dict) or set(m) != {"v", "c", "i", "s", "k", "r", "e"}:
        raise RemoteProtocolError("the invite code does not hold an invite")
    if not codec.is_int(m["v"], VERSION):
        raise RemoteProtocolError(f"unknown invite version {m['v']!r} (upgrade schoolmesh)")
    c, i, s = m["c"], m["i"], m["s"]
    if not isinstance(c, bytes) or len(c) != 16 or not isinstance(i, bytes) or len(i) != 32:
        raise RemoteProtocolError("the invite code has a bad community id or issuer")
    if not isinstance(s, list):
        raise RemoteProtocolError("the invite code has bad seed addresses")
    try:
        return Invite(community="c" + _b32(c), issuer=PublicKey(i).school_id, seeds=tuple(s),
                      secret=m["k"], role=m["r"], expires=m["e"])
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"bad invite code: {exc}") from None


# -- redeem messages (/schoolmesh/community/1.0.0) ---------------------------------------------

def _proof_message(community: str, school_id: str) -> bytes:
    return codec.encode({"community": community, "school": school_id})


def redeem_proof(secret: bytes, community: str, school_id: str) -> bytes:
    """The joining school's proof: the invite key's signature over {community, school}.
    It is bound to the joining school, so a copy is useless to anybody else."""
    return invite_key(secret).sign(PROOF_DOMAIN, _proof_message(community, school_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class RedeemRequest:
    community: str
    school: str          # the joining school; MUST equal the Noise-authenticated peer id
    invite: bytes        # invite id
    proof: bytes         # redeem_proof(secret, community, school)

    def __post_init__(self) -> None:
        _check_community(self.community)
        _check_school_id(self.school, "school")
        if not isinstance(self.invite, bytes) or len(self.invite) != INVITE_ID_SIZE:
            raise LocalProtocolError(f"invite must be a {INVITE_ID_SIZE}-byte invite id")
        if not isinstance(self.proof, bytes) or len(self.proof) != 64:
            raise LocalProtocolError("proof must be a 64-byte signature")

    @classmethod
    def build(cls, inv: Invite, school_id: str) -> RedeemRequest:
        return cls(community=inv.community, school=school_id, invite=inv.invite_id,
                   proof=redeem_proof(inv.secret, inv.community, school_id))

    def encode(self) -> bytes:
        return codec.encode({"v": VERSION, "community": self.community, "school": self.school,
                             "invite": self.invite, "proof": self.proof})

    def verify(self, verifier: bytes) -> None:
        """Issuer side: raise RemoteProtocolError unless the proof matches the stored
        verifier of this invite."""
        try:
            PublicKey(verifier).verify(PROOF_DOMAIN, _proof_message(self.community, self.school),
                                       self.proof)
        except (BadSignature, ValueError):
            raise RemoteProtocolError("the invite proof does not verify") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class CharterRequest:
    """Ask a seed for a community's charter entry (to learn its founder before joining or
    linking). Anybody may ask: a charter is public."""

    community: str

    def __post_init__(self) -> None:
        _check_community(self.community)

    def encode(self) -> bytes:
        return codec.encode({"v": VERSION, "community": self.community})


def decode_redeem_request(data: bytes) -> RedeemRequest:
    req = decode_request(data)
    if not isinstance(req, RedeemRequest):
        raise RemoteProtocolError("a redeem request has exactly v, community, school, invite, "
                                  "proof")
    return req


def decode_request(data: bytes) -> RedeemRequest | CharterRequest:
    """Either request of /schoolmesh/community/1.0.0 (told apart by their keys)."""
    m = codec.decode(data, max_size=MAX_REDEEM_MESSAGE)
    if isinstance(m, dict) and set(m) == {"v", "community"}:
        if not codec.is_int(m["v"], VERSION):
            raise RemoteProtocolError(f"unknown charter request version {m['v']!r}")
        try:
            return CharterRequest(community=m["community"])
        except LocalProtocolError as exc:
            raise RemoteProtocolError(f"bad charter request: {exc}") from None
    if not isinstance(m, dict) or set(m) != {"v", "community", "school", "invite", "proof"}:
        raise RemoteProtocolError("a request has exactly v, community (a charter request) or "
                                  "v, community, school, invite, proof (a redeem request)")
    if not codec.is_int(m["v"], VERSION):
        raise RemoteProtocolError(f"unknown redeem request version {m['v']!r}")
    try:
        return RedeemRequest(community=m["community"], school=m["school"], invite=m["invite"],
                             proof=m["proof"])
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"bad redeem request: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedeemResponse:
    """Exactly one of ``certificate`` (the signed entry bytes, answering a redeem request),
    ``charter`` (the charter entry bytes, answering a charter request) or ``error`` (+ a
    message) is set."""

    certificate: bytes | None = None
    charter: bytes | None = None
    error: str | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.certificate, self.charter, self.error)) != 1:
            raise LocalProtocolError("a response has a certificate, a charter or an error")
        if self.error is not None and self.error not in REDEEM_ERRORS:
            raise LocalProtocolError(f"unknown redeem error {self.error!r}")
        for name in ("certificate", "charter"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bytes):
                raise LocalProtocolError(f"{name} must be entry bytes")
        if not isinstance(self.message, str) or len(self.message) > 500:
            raise LocalProtocolError("message is text of at most 500 characters")

    def encode(self) -> bytes:
        if self.certificate is not None:
            return codec.encode({"v": VERSION, "certificate": self.certificate})
        if self.charter is not None:
            return codec.encode({"v": VERSION, "charter": self.charter})
        return codec.encode({"v": VERSION, "error": self.error, "message": self.message})


def decode_redeem_response(data: bytes) -> RedeemResponse:
    m = codec.decode(data, max_size=MAX_REDEEM_MESSAGE)
    if not isinstance(m, dict) or not codec.is_int(m.get("v"), VERSION):
        raise RemoteProtocolError("a redeem response is a map with v = 1")
    if set(m) not in ({"v", "certificate"}, {"v", "charter"}, {"v", "error", "message"}):
        raise RemoteProtocolError("a response has certificate, charter, or error and message")
    try:
        return RedeemResponse(certificate=m.get("certificate"), charter=m.get("charter"),
                              error=m.get("error"), message=m.get("message", ""))
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"bad redeem response: {exc}") from None


def check_charter_for(raw: bytes, community: str) -> records.FeedEntry:
    """Decode a charter a seed returned and check it is the one of ``community``."""
    entry = records.decode_entry(raw)
    if entry.kind != records.KIND_CHARTER or community_id_of(entry) != community:
        raise RemoteProtocolError("the seed returned another community's charter")
    return entry


def check_certificate_for(raw: bytes, inv: Invite, school_id: str) -> records.FeedEntry:
    """Joining side: decode the certificate a seed returned and check it is the one asked
    for (this community, this school, this invite, signed by the invite's issuer)."""
    entry = records.decode_entry(raw)
    b = entry.body
    if entry.kind != records.KIND_CERTIFICATE or b["community"] != inv.community:
        raise RemoteProtocolError("the seed did not return a certificate for this community")
    if b["school"] != school_id or b.get("invite") != inv.invite_id:
        raise RemoteProtocolError("the certificate is for another school or invite")
    if entry.school_id != inv.issuer:
        raise RemoteProtocolError("the certificate is not signed by the invite's issuer")
    return entry


# -- membership resolution ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    school_id: str
    role: str                 # member | demonstration
    status: str               # active | expired | revoked
    since: int                # time of the decision giving the current role (founder: charter)
    expires: int | None       # the certificate's expiry; None: no expiry
    revoked_at: int | None    # the revocation's time when status is revoked
    issuer: str               # who signed the deciding entry
    decision: bytes           # hash of the deciding entry (charter, certificate or revocation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    entry: bytes              # entry hash
    school_id: str            # the entry's author
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    community: str
    name: str | None                      # from the charter; None when the charter is unknown
    founder: str | None
    members: dict[str, Member]            # every school ever admitted, with its status at `now`
    issuers: frozenset[str]               # active demonstration schools: may sign decisions now
    links: frozenset[str]                 # other communities linked by a valid decision
    rejected: tuple[Rejected, ...]        # decisions that did not count, with the reason

    def is_active(self, school_id: str) -> bool:
        m = self.members.get(school_id)
        return m is not None and m.status == ACTIVE


def _decision_time(e: records.FeedEntry) -> int:
    if e.kind == records.KIND_CERTIFICATE:
        return e.body["issued"]
    return e.body["time"]


# How a school's membership moves (specs/communities.md §5): decision kind -> {status before
# (None: never admitted) -> status after}.  A decision from a status it does not list is
# rejected; expiry is applied at ``now`` after every decision.  A revocation of a revoked
# school changes nothing (the earliest revocation stands); a certificate readmits.
MEMBERSHIP_TRANSITIONS: dict[str, dict[str | None, str]] = {
    records.KIND_CERTIFICATE: {None: ACTIVE, ACTIVE: ACTIVE, REVOKED: ACTIVE},
    records.KIND_REVOCATION: {ACTIVE: REVOKED, REVOKED: REVOKED},
}


def resolve(community: str, entries: Iterable[records.FeedEntry], now: int) -> Membership:
    """The members of ``community`` at ``now`` from verified entries of any feeds.

    Decisions (certificates, revocations, links) are applied in (time, entry hash) order;
    each counts only if its author is an active demonstration school at that time. The result
    does not depend on the order of ``entries``; duplicates and other communities' entries are
    ignored. See specs/communities.md §5.
    """
    _check_community(community)
    charter = None
    decisions: dict[bytes, records.FeedEntry] = {}
    for e in entries:
        if e.kind == records.KIND_CHARTER:
            if community_id_of(e) == community:
                charter = e
        elif e.kind in (records.KIND_CERTIFICATE, records.KIND_REVOCATION, records.KIND_LINK):
            if e.body.get("community") == community:
                decisions[e.hash] = e
    if charter is None:
        return Membership(community=community, name=None, founder=None, members={},
                          issuers=frozenset(), links=frozenset(),
                          rejected=tuple(Rejected(entry=h, school_id=e.school_id,
                                                  reason="charter unknown")
                                         for h, e in sorted(decisions.items())))
    founder = charter.school_id
    members = {founder: Member(school_id=founder, role=ROLE_DEMONSTRATION, status=ACTIVE,
                               since=charter.time, expires=None, revoked_at=None,
                               issuer=founder, decision=charter.hash)}
    used_invites: set[bytes] = set()
    links: set[str] = set()
    rejected: list[Rejected] = []

    def reject(e: records.FeedEntry, reason: str) -> None:
        rejected.append(Rejected(entry=e.hash, school_id=e.school_id, reason=reason))

    for e in sorted(decisions.values(), key=lambda e: (_decision_time(e), e.hash)):
        t, author, b = _decision_time(e), e.school_id, e.body
        if t > now + MAX_CLOCK_SKEW:
            reject(e, "dated in the future")
            continue
        if not _may_issue(members.get(author), t):
            reject(e, "author is not an active demonstration school at that time")
            continue
        if e.kind == records.KIND_LINK:
            links.add(b["other"])
            continue
        if b["school"] == founder:
            reject(e, "the founder's role cannot be changed")
            continue
        old = members.get(b["school"])
        moves = MEMBERSHIP_TRANSITIONS[e.kind]
        if (old.status if old else None) not in moves:
            reject(e, "school was never admitted")
            continue
        if e.kind == records.KIND_REVOCATION:
            if old.status == REVOKED:
                continue  # already revoked: the earliest revocation stands
            members[b["school"]] = Member(
                school_id=b["school"], role=old.role, status=moves[old.status], since=old.since,
                expires=old.expires, revoked_at=t, issuer=author, decision=e.hash)
            continue
        if "invite" in b:
            if b["invite"] in used_invites:
                reject(e, "invite already redeemed")
                continue
            used_invites.add(b["invite"])
        members[b["school"]] = Member(
            school_id=b["school"], role=b["role"], status=moves[old.status if old else None],
            since=t,
            expires=b.get("expires"), revoked_at=None, issuer=author, decision=e.hash)

    final = {sid: (m if m.status == REVOKED or m.expires is None or m.expires > now
                   else _with_status(m, EXPIRED))
             for sid, m in members.items()}
    issuers = frozenset(sid for sid, m in final.items()
                        if m.status == ACTIVE and m.role == ROLE_DEMONSTRATION)
    return Membership(community=community, name=charter.body["name"], founder=founder,
                      members=dict(sorted(final.items())), issuers=issuers,
                      links=frozenset(links), rejected=tuple(rejected))


def _may_issue(m: Member | None, t: int) -> bool:
    return (m is not None and m.role == ROLE_DEMONSTRATION and m.status == ACTIVE
            and (m.expires is None or m.expires > t))


def _with_status(m: Member, status: str) -> Member:
    return Member(school_id=m.school_id, role=m.role, status=status, since=m.since,
                  expires=m.expires, revoked_at=m.revoked_at, issuer=m.issuer,
                  decision=m.decision)


def may_redeem(membership: Membership, inv_issuer: str, inv_expires: int, now: int) -> str | None:
    """Issuer side, before signing a certificate: the redeem error code, or None if the
    invite can still be honoured (its issuer is an active demonstration school, not expired).
    One-time use is the issuer's own bookkeeping (it marks the invite id used)."""
    if inv_issuer not in membership.issuers:
        return "not-issuer"
    if now >= inv_expires:
        return "expired"
    return None
