"""Communities on a node (specs/communities.md): founding, invites, redeeming and joining,
membership, removal, federation links, what a demonstration school seeds, and the auto-fetch
subscriptions of member schools.

This module is the synchronous, SQLite side; the network side (the
``/schoolmesh/community/1.0.0`` stream handler, joining over the network, the community gossip
topics and the loop that queues seeding fetches) lives in node/community_service.py.

Membership is never stored: it is recomputed with ``protocol.membership.resolve`` from the
verified decision entries we hold (from any feed), plus the charter and certificate a seed
handed us when we joined (their authors' feeds may arrive later).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from crypto import PublicKey, cid_to_str
from protocol import membership as pc
from protocol import records, vocab
from protocol.errors import LocalProtocolError, ProtocolError

from . import db, feeds, library, studio
from .catalog import files_size  # noqa: F401  (part of this module's interface)
from .errors import NodeError
from .home import Home, now_ms

DAY_MS = 86_400_000
DEFAULT_INVITE_TTL_MS = 7 * DAY_MS     # an invite code is valid a week unless told otherwise
MAX_INVITE_TTL_MS = 365 * DAY_MS
DEFAULT_SEED_QUOTA = 50 * 2**30        # bytes a demonstration school keeps for its communities
SEED_QUOTA_SETTING = "seed_quota"
_DECISION_KINDS = tuple(sorted(records.COMMUNITY_KINDS))


def topic(community: str) -> str:
    """The gossipsub topic carrying the signed heads of a community's members."""
    return f"/schoolmesh/community/{community}/heads/1"


# -- reading ---------------------------------------------------------------------------------

def rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cols = ("community", "relation", "via", "charter", "certificate", "seeds", "joined")
    return [dict(zip(cols, r, strict=True)) | {"seeds": json.loads(r[5])} for r in conn.execute(
        f"SELECT {', '.join(cols)} FROM communities ORDER BY joined")]


def decision_entries(conn: sqlite3.Connection) -> list[records.FeedEntry]:
    """Every verified charter/certificate/revocation/link we hold: from stored feeds, and
    the charters and certificates seeds gave us (their feeds may not be here yet)."""
    raws = [r for (r,) in conn.execute(
        f"SELECT raw FROM entries WHERE kind IN ({', '.join('?' * len(_DECISION_KINDS))})",
        _DECISION_KINDS)]
    for charter, cert in conn.execute("SELECT charter, certificate FROM communities"):
        raws.append(charter)
        if cert is not None:
            raws.append(cert)
    out: dict[bytes, records.FeedEntry] = {}
    for raw in raws:
        e = _decode(raw)
        if e is not None:
            out[e.hash] = e
    return list(out.values())


@functools.lru_cache(maxsize=50_000)
def _decode(raw: bytes) -> records.FeedEntry | None:
    """Decode and verify once per process: membership is recomputed often (every decision
    entry's signature would otherwise be checked again each time)."""
    try:
        return records.decode_entry(raw)
    except ProtocolError:
        return None  # stored entries were verified on arrival; never trust a damaged one


def seeds_and_issuers(conn: sqlite3.Connection,
                      ms: dict[str, pc.Membership]) -> set[str]:
    """School ids that replicate every member's feed in one of our communities: the seeds
    our community rows name and the issuers of the memberships ``ms``."""
    seeds = {a.rsplit("/p2p/", 1)[-1] for r in rows(conn) for a in r["seeds"]}
    return seeds | {sid for m in ms.values() for sid in m.issuers}


def policy_key(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """Changes whenever something the replication policy depends on was stored: decision
    entries (append-only: their count), and the exact contents of the (small) communities and
    follows tables, so an unfollow plus a follow, or a changed relation, is seen too."""
    (n,) = conn.execute(f"SELECT count(*) FROM entries WHERE kind IN "
                        f"({', '.join('?' * len(_DECISION_KINDS))})", _DECISION_KINDS).fetchone()
    (c,) = conn.execute("SELECT group_concat(row, '|') FROM (SELECT community || ' ' || relation "
                        "|| ' ' || coalesce(via, '') || ' ' || coalesce(length(certificate), 0) "
                        "|| ' ' || seeds AS row FROM communities ORDER BY community)").fetchone()
    (f,) = conn.execute("SELECT group_concat(school_id, ' ') FROM "
                        "(SELECT school_id FROM follows ORDER BY school_id)").fetchone()
    (s,) = conn.execute("SELECT count(*) FROM teacher_signatures WHERE kind LIKE 'studio.%'"
                        ).fetchone()
    return (n, c or "", f or "", s)


def memberships(home: Home, now: int | None = None) -> dict[str, pc.Membership]:
    """The membership of every community we belong to or link, at ``now``."""
    now = now_ms() if now is None else now
    entries = decision_entries(home.conn)
    return {r["community"]: pc.resolve(r["community"], entries, now) for r in rows(home.conn)}


def membership(home: Home, community: str, now: int | None = None) -> pc.Membership:
    _row(home.conn, community)
    return pc.resolve(community, decision_entries(home.conn), now_ms() if now is None else now)


def _row(conn: sqlite3.Connection, community: str) -> dict[str, Any]:
    for r in rows(conn):
        if r["community"] == community:
            return r
    raise NodeError(f"this school is not in community {community} (see 'schoolmesh community "
                    "list')")


def pick(home: Home, community: str | None, *, issuer: bool = False) -> str:
    """The community a command is about: the one named, or the only candidate. With
    ``issuer`` only communities where this school may sign decisions are candidates."""
    if community is not None:
        if not pc.is_community_id(community):
            raise NodeError(f"not a community id: {community!r}")
        _row(home.conn, community)
        return community
    mine = [r["community"] for r in rows(home.conn) if r["relation"] == "member"]
    if issuer:
        ms = memberships(home)
        mine = [c for c in mine if home.school_id in ms[c].issuers]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise NodeError("this school is not a demonstration school of any community" if issuer
                        else "this school is in no community yet ('schoolmesh community create"
                        "' or 'schoolmesh community join CODE')")
    raise NodeError(f"this school is in {len(mine)} communities; name one with --community")


def _require_issuer(home: Home, community: str, what: str) -> pc.Membership:
    m = membership(home, community)
    if home.school_id not in m.issuers:
        raise NodeError(f"only an active demonstration school of the community can {what}")
    return m


def _member_json(m: pc.Member, names: dict[str, str], me: str) -> dict[str, Any]:
    return {"school_id": m.school_id, "name": names.get(m.school_id), "role": m.role,
            "status": m.status, "since": m.since, "expires": m.expires,
            "revoked_at": m.revoked_at, "admitted_by": m.issuer, "you": m.school_id == me}


def _names(conn: sqlite3.Connection) -> dict[str, str]:
    return {sid: name for sid, name in conn.execute(
        "SELECT school_id, name FROM feeds WHERE name IS NOT NULL")}


def list_communities(home: Home) -> list[dict[str, Any]]:
    ms = memberships(home)
    out = []
    for r in rows(home.conn):
        m = ms[r["community"]]
        me = m.members.get(home.school_id)
        out.append({"community_id": r["community"], "name": m.name, "relation": r["relation"],
                    "via": r["via"], "founder": m.founder,
                    "role": me.role if me else None, "status": me.status if me else None,
                    "members": sum(x.status == pc.ACTIVE for x in m.members.values()),
                    "links": sorted(m.links), "seeds": r["seeds"]})
    return out


def members(home: Home, community: str | None = None) -> dict[str, Any]:
    c = pick(home, community)
    m = membership(home, c)
    names = _names(home.conn)
    doubtful = suspects(home.conn, m)
    return {"community_id": c, "name": m.name,
            "members": [_member_json(x, names, home.school_id)
                        | {"suspect": doubtful.get(x.school_id)} for x in m.members.values()],
            "links": sorted(m.links),
            "rejected": [{"entry": x.entry.hex(), "author": x.school_id, "reason": x.reason}
                         for x in m.rejected]}


def member_feeds_held(home: Home, community: str) -> list[str]:
    """School ids of the community (its founder and every school ever admitted, so the
    decisions travel too) whose feed this node holds: what a USB bundle of it carries."""
    c = pick(home, community)
    m = membership(home, c)
    held = {sid for (sid,) in home.conn.execute("SELECT school_id FROM feeds WHERE head_seq > 0")}
    schools = ([m.founder] if m.founder else []) + list(m.members)
    return [s for s in dict.fromkeys(schools) if s in held]


# -- founding, inviting, removing, linking (our own decisions) -------------------------------

def _append_checked(home: Home, kind: str, body: dict[str, Any]) -> records.FeedEntry:
    """Sign one of our decisions after checking it as every receiver will (a bad name or
    reason is the operator's error, reported before anything is signed)."""
    try:
        pc.validate_body(kind, body)
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None
    return library.append_entry(home, kind, body)


def create(home: Home, name: str, description: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if description:
        body["description"] = description
    entry = _append_checked(home, records.KIND_CHARTER, body)
    cid = pc.community_id_of(entry)
    with db.write(home.conn) as conn:
        conn.execute("INSERT INTO communities VALUES (?, 'member', NULL, ?, NULL, '[]', ?)",
                     (cid, entry.raw, entry.time))
    return {"community_id": cid, "name": name}


def invite(home: Home, community: str | None, *, role: str = pc.ROLE_MEMBER,
           ttl_ms: int = DEFAULT_INVITE_TTL_MS, seeds: list[str]) -> dict[str, Any]:
    """Issue a one-time invite code. Only the invite id and verifier are stored."""
    c = pick(home, community, issuer=True)
    _require_issuer(home, c, "invite schools")
    if not 0 < ttl_ms <= MAX_INVITE_TTL_MS:
        raise NodeError("an invite expires after a positive duration of at most 365 days")
    if not seeds:
        raise NodeError("an invite needs this node's address: start the node ('schoolmesh "
                        "start') or give --seed MULTIADDR")
    seeds = list(dict.fromkeys(seeds))[:pc.MAX_SEEDS]
    now = now_ms()
    try:
        inv = pc.Invite(community=c, issuer=home.school_id, seeds=tuple(seeds),
                        secret=os.urandom(pc.SECRET_SIZE), role=role, expires=now + ttl_ms)
        code = pc.encode_invite(inv)
    except LocalProtocolError as exc:
        raise NodeError(f"cannot make the invite: {exc}") from None
    with db.write(home.conn) as conn:
        conn.execute("INSERT INTO invites VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                     (inv.invite_id, c, pc.invite_verifier(inv.secret), role, inv.expires, now))
    return {"code": code, "community_id": c, "role": role, "expires": inv.expires,
            "seeds": list(inv.seeds)}


def remove(home: Home, school_id: str, community: str | None = None,
           reason: str | None = None) -> dict[str, Any]:
    c = pick(home, community, issuer=True)
    m = _require_issuer(home, c, "remove schools")
    target = m.members.get(school_id)
    if target is None:
        raise NodeError(f"{school_id} is not a member of this community")
    if school_id == m.founder:
        raise NodeError("the founder of a community cannot be removed")
    if target.status == pc.REVOKED:
        raise NodeError(f"{school_id} was already removed")
    body: dict[str, Any] = {"community": c, "school": school_id, "time": now_ms()}
    if reason:
        body["reason"] = reason
    _append_checked(home, records.KIND_REVOCATION, body)
    return {"removed": school_id, "community_id": c}


def charter_of(home: Home, community: str) -> bytes | None:
    row = home.conn.execute("SELECT charter FROM communities WHERE community = ?",
                            (community,)).fetchone()
    return row[0] if row else None


def add_link(home: Home, community: str | None, charter_raw: bytes,
             seeds: list[str]) -> dict[str, Any]:
    """Federation: record the other community (its verified charter) and sign a link."""
    c = pick(home, community, issuer=True)
    _require_issuer(home, c, "link communities")
    charter = records.decode_entry(charter_raw)
    if charter.kind != records.KIND_CHARTER:
        raise NodeError("that is not a community charter")
    other = pc.community_id_of(charter)
    if other == c:
        raise NodeError("a community cannot link to itself")
    with db.write(home.conn) as conn:
        conn.execute("INSERT INTO communities VALUES (?, 'linked', ?, ?, NULL, ?, ?) "
                     "ON CONFLICT(community) DO UPDATE SET seeds = excluded.seeds",
                     (other, c, charter_raw, json.dumps(seeds), now_ms()))
    library.append_entry(home, records.KIND_LINK, {"community": c, "other": other,
                                                   "time": now_ms()})
    return {"community_id": c, "linked": other, "name": charter.body["name"]}


# -- redeeming (issuer side) and joining (joiner side) ---------------------------------------

class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def answer(home: Home, data: bytes, peer_school_id: str) -> pc.RedeemResponse:
    """Issuer side of /schoolmesh/community/1.0.0: one request's bytes in, the response out.
    Raises RemoteProtocolError for a request that does not decode."""
    req = pc.decode_request(data)
    if isinstance(req, pc.CharterRequest):
        raw = charter_of(home, req.community)
        if raw is None:
            return pc.RedeemResponse(error="unknown-community",
                                     message="this school does not know that community")
        return pc.RedeemResponse(charter=raw)
    try:
        return pc.RedeemResponse(certificate=_redeem(home, req, peer_school_id))
    except _Refused as exc:
        return pc.RedeemResponse(error=exc.code, message=str(exc)[:500])


def _redeem(home: Home, req: pc.RedeemRequest, peer_school_id: str) -> bytes:
    from protocol.errors import RemoteProtocolError
    if req.school != peer_school_id:
        raise RemoteProtocolError("the request names another school than the connected one")
    row = home.conn.execute("SELECT community, verifier, role, expires, created, used_by FROM "
                            "invites WHERE invite_id = ?", (req.invite,)).fetchone()
    if row is None:
        raise _Refused("unknown-invite", "this school issued no such invite")
    community, verifier, role, expires, created, used_by = row
    if community != req.community:
        raise _Refused("wrong-community", "the invite belongs to another community")
    if used_by is not None:
        raise _Refused("used", "the invite was already used")
    now = now_ms()
    if now >= expires:
        raise _Refused("expired", "the invite has expired; ask for a new one")
    try:
        req.verify(verifier)
    except ProtocolError:
        raise _Refused("bad-proof", "the invite proof does not verify") from None
    m = membership(home, community, now)
    if home.school_id not in m.issuers:
        raise _Refused("not-issuer", "the issuer is no longer a demonstration school here")
    old = m.members.get(req.school)
    if old is not None and old.status == pc.REVOKED and old.revoked_at is not None \
            and created <= old.revoked_at:
        raise _Refused("revoked", "this school was removed from the community; an invite "
                                  "issued before that cannot readmit it")
    body = {"community": community, "school": req.school, "role": role, "issued": now,
            "invite": req.invite}

    def mark_used(conn: sqlite3.Connection) -> dict[str, Any]:
        n = conn.execute("UPDATE invites SET used_by = ?, used_at = ? WHERE invite_id = ? AND "
                         "used_by IS NULL", (req.school, now, req.invite)).rowcount
        if n != 1:
            raise _Refused("used", "the invite was already used")
        return body
    entry, _ = library._append_own(home, records.KIND_CERTIFICATE, mark_used)
    return entry.raw


def accept_join(home: Home, inv: pc.Invite, charter_raw: bytes,
                cert_raw: bytes) -> dict[str, Any]:
    """Joiner side: verify what the seed returned and remember the community."""
    charter = pc.check_charter_for(charter_raw, inv.community)
    cert = pc.check_certificate_for(cert_raw, inv, home.school_id)
    m = pc.resolve(inv.community, [charter, cert, *decision_entries(home.conn)], now_ms())
    if not m.is_active(home.school_id):
        raise NodeError("the certificate the seed returned does not make this school a member"
                        f" (issuer {inv.issuer} is not an active demonstration school that "
                        "this school can verify yet)")
    with db.write(home.conn) as conn:
        conn.execute("INSERT INTO communities VALUES (?, 'member', NULL, ?, ?, ?, ?) "
                     "ON CONFLICT(community) DO UPDATE SET relation = 'member', via = NULL, "
                     "certificate = excluded.certificate, seeds = excluded.seeds",
                     (inv.community, charter_raw, cert_raw, json.dumps(list(inv.seeds)),
                      now_ms()))
    return {"community_id": inv.community, "name": charter.body["name"],
            "role": cert.body["role"], "issuer": inv.issuer, "founder": charter.school_id}


# -- replication and seeding policy ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Policy:
    """What the daemon does for communities, computed from the memberships at one time."""
    wanted: dict[bytes, int | None]     # feed -> replicate entries with time < this (None: all)
    topics: dict[str, frozenset[bytes]]  # community topic -> feeds whose heads it accepts
    issuer_of: frozenset[str]           # communities this school seeds (active demonstration)
    rejected: tuple[tuple[str, pc.Rejected], ...] = ()  # (community, decision that did not count)
    memberships: dict[str, pc.Membership] = field(default_factory=dict)  # what it derives from

    def gate(self, *, any_feed: bool = False) -> feeds.Gate:
        """The rule ``feeds.admit`` applies to entries from outside under this policy."""
        return feeds.Gate(wanted=self.wanted, any_feed=any_feed)


def policy(home: Home, now: int | None = None) -> Policy:
    now = now_ms() if now is None else now
    ms = memberships(home, now)
    wanted: dict[bytes, int | None] = {f: None for (f,) in home.conn.execute(
        "SELECT feed FROM follows")}

    def want(sid: str, cutoff: int | None) -> None:
        feed = PublicKey.from_school_id(sid).raw
        if feed not in wanted:
            wanted[feed] = cutoff
        else:
            old = wanted[feed]
            wanted[feed] = None if old is None or cutoff is None else max(old, cutoff)
    topics: dict[str, frozenset[bytes]] = {}
    issuer_of = set()
    relation = {r["community"]: r["relation"] for r in rows(home.conn)}
    for c, m in ms.items():
        if m.founder is not None:
            want(m.founder, None)
        for sid, mem in m.members.items():
            want(sid, cutoff_of(mem))
        if relation[c] == "member" and m.is_active(home.school_id):
            topics[topic(c)] = frozenset(PublicKey.from_school_id(s).raw
                                         for s, mem in m.members.items()
                                         if mem.status == pc.ACTIVE)
            if home.school_id in m.issuers:
                issuer_of.add(c)
    for feed in studio.wanted_feeds(home.conn, home.school_id):   # specs/teachers.md §6.4
        wanted.setdefault(feed, None)
    wanted.pop(home.feed, None)
    rejected = tuple((c, r) for c, m in ms.items() for r in m.rejected
                     if r.reason != "dated in the future")   # those are reconsidered later
    return Policy(wanted=wanted, topics=topics, issuer_of=frozenset(issuer_of),
                  rejected=rejected, memberships=ms)


def cutoff_of(m: pc.Member) -> int | None:
    """Entries of a school dated at or after this are not replicated or seeded for the
    community (revoked: the revocation time; expired: the expiry)."""
    if m.status == pc.REVOKED:
        return m.revoked_at
    if m.status == pc.EXPIRED:
        return m.expires
    return None


@dataclass(frozen=True, slots=True)
class Seed:
    resource_id: str
    content: bytes
    size: int
    community: str
    updated: int


def suspects(conn: sqlite3.Connection, m: pc.Membership) -> dict[str, str]:
    """Active schools admitted by a certificate this node received only after the removal of
    the school that signed it: possibly backdated (specs/communities.md §8). They resolve as
    members everywhere, but are not seeded here until a current demonstration school admits
    them again."""
    received = dict(conn.execute(
        "SELECT hash, received FROM entries WHERE kind IN (?, ?) AND received IS NOT NULL",
        (records.KIND_CERTIFICATE, records.KIND_REVOCATION)))
    out = {}
    for sid, mem in m.members.items():
        issuer = m.members.get(mem.issuer)
        if mem.status != pc.ACTIVE or issuer is None or issuer.status != pc.REVOKED:
            continue
        got_cert, got_removal = received.get(mem.decision), received.get(issuer.decision)
        if got_cert is not None and got_removal is not None and got_cert > got_removal:
            out[sid] = (f"admitted by {mem.issuer}, whose certificate for it arrived only "
                        "after that school's removal")
    return out


def seeding_plan(home: Home, ms: dict[str, pc.Membership] | None = None
                 ) -> tuple[list[Seed], list[Seed], int]:
    """What a demonstration school keeps for its communities, newest first within the quota:
    (kept, over quota, quota), from ``ms`` (default: the memberships now). A school's versions
    dated after its cutoff are left out (the newest earlier version is seeded instead)."""
    ms = memberships(home) if ms is None else ms
    quota = seed_quota(home)
    schools: dict[str, tuple[str, int | None]] = {}
    for c, m in ms.items():
        if home.school_id not in m.issuers:
            continue
        doubtful = suspects(home.conn, m)
        for sid, mem in m.members.items():
            if sid != home.school_id and sid not in schools and sid not in doubtful:
                schools[sid] = (c, cutoff_of(mem))
    candidates: list[Seed] = []
    for sid, (c, cutoff) in schools.items():
        for rid, content, files, updated, retracted in home.conn.execute(
                "SELECT resource_id, content, files, updated, retracted FROM resources "
                "WHERE school_id = ?", (sid,)):
            if retracted and (cutoff is None or updated < cutoff):
                continue
            size = files_size(files)
            if cutoff is not None and updated >= cutoff:
                row = home.conn.execute(
                    "SELECT content, time FROM resource_versions WHERE resource_id = ? AND "
                    "time < ? ORDER BY version DESC LIMIT 1", (rid, cutoff)).fetchone()
                if row is None:
                    continue
                if row[0] != content:
                    size = 0  # an older version: its size is not indexed; it counts as small
                content, updated = row
            candidates.append(Seed(rid, content, size, c, updated))
    candidates.sort(key=lambda s: (-s.updated, s.resource_id))
    kept, over, used = [], [], 0
    for s in candidates:
        if used + s.size <= quota:
            kept.append(s)
            used += s.size
        else:
            over.append(s)
    return kept, over, quota


def seed_quota(home: Home) -> int:
    return int(db.get_setting(home.conn, SEED_QUOTA_SETTING, str(DEFAULT_SEED_QUOTA)))


def set_seed_quota(home: Home, nbytes: int) -> dict[str, Any]:
    if nbytes < 0:
        raise NodeError("the quota cannot be negative")
    with db.write(home.conn) as conn:
        db.set_setting(conn, SEED_QUOTA_SETTING, str(nbytes))
    return {"seed_quota": nbytes}


# -- subscriptions (auto-fetch rules of member schools) --------------------------------------

def subscribe(home: Home, subject: str | None, level: str | None) -> dict[str, Any]:
    if not subject and not level:
        raise NodeError("a subscription needs --subject, --level or both")
    if level:
        vocab.check_choice("level", level, vocab.LEVELS)
    if subject is not None and not 1 <= len(subject.strip()) <= 200:
        raise NodeError("a subject is 1-200 characters")
    with db.write(home.conn) as conn:
        cur = conn.execute("INSERT INTO subscriptions(subject, level, created) VALUES (?, ?, ?)",
                           (subject.strip() if subject else None, level, now_ms()))
    return {"id": cur.lastrowid, "subject": subject, "level": level}


def unsubscribe(home: Home, sub_id: int) -> dict[str, Any]:
    with db.write(home.conn) as conn:
        n = conn.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,)).rowcount
    if not n:
        raise NodeError(f"no subscription {sub_id}")
    return {"unsubscribed": sub_id}


def subscriptions(home: Home) -> list[dict[str, Any]]:
    return [{"id": i, "subject": s, "level": lv, "created": t} for i, s, lv, t in
            home.conn.execute("SELECT id, subject, level, created FROM subscriptions "
                              "ORDER BY id")]


def subscription_matches(home: Home) -> list[tuple[str, bytes, int, int]]:
    """Other schools' live resources matching a subscription: (resource id, content root,
    size, subscription id)."""
    out: dict[str, tuple[str, bytes, int, int]] = {}
    for sub in subscriptions(home):
        where, args = ["r.feed != ?", "r.retracted = 0"], [home.feed]
        if sub["subject"]:
            where.append("EXISTS (SELECT 1 FROM facets f WHERE f.res = r.id AND "
                         "f.facet = 'about' AND f.value = ?)")
            args.append(sub["subject"].casefold())
        if sub["level"]:
            where.append("EXISTS (SELECT 1 FROM facets f WHERE f.res = r.id AND "
                         "f.facet = 'level' AND f.value = ?)")
            args.append(sub["level"])
        for rid, content, files in home.conn.execute(
                f"SELECT r.resource_id, r.content, r.files FROM resources r WHERE "
                f"{' AND '.join(where)} ORDER BY r.updated DESC", args):
            out.setdefault(rid, (rid, content, files_size(files), sub["id"]))
    return list(out.values())


# -- pins ------------------------------------------------------------------------------------

def pins(home: Home) -> dict[str, Any]:
    """What this node keeps and why (specs/communities.md §6)."""
    out = []
    for cid, reason, ref, created in home.conn.execute(
            "SELECT cid, reason, ref, created FROM pins ORDER BY created DESC"):
        row = home.conn.execute("SELECT resource_id, title, school_id, files FROM resources "
                                "WHERE content = ?", (cid,)).fetchone()
        item = {"cid": cid_to_str(cid), "reason": reason, "ref": ref, "created": created,
                "resource_id": None, "title": None, "school_id": None, "size": None}
        if row is not None:
            item.update(resource_id=row[0], title=row[1], school_id=row[2],
                        size=files_size(row[3]))
        out.append(item)
    totals: dict[str, dict[str, int]] = {}
    for p in out:
        t = totals.setdefault(p["reason"], {"pins": 0, "bytes": 0})
        t["pins"] += 1
        t["bytes"] += p["size"] or 0
    return {"pins": out, "totals": totals, "seed_quota": seed_quota(home)}
