"""Oversight on a node (specs/oversight.md): community reports from the entries we hold, the
holdings summary we sign, the copy audit and seeding of rare resources, moderation (hiding a
resource for a community) and feedback that reaches its author.

What is computed (the report, who holds what, what is hidden) is in protocol/report.py; this
module only reads entries from the database, signs our own entries and pins or queues content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from crypto import PublicKey, cid_to_str
from protocol import decisions, records
from protocol import report as pr
from protocol.errors import LocalProtocolError
from protocol.records import FeedEntry

from . import community, db, library
from .errors import NodeError
from .home import Home, now_ms

HOUR_MS = 3_600_000
ANNOUNCE_INTERVAL_MS = 6 * HOUR_MS   # a changed holdings summary is re-signed at most this often
SEEN_SETTING = "feedback_seen:"      # + teacher name: ms of the newest feedback they have seen


def _stored(raw: bytes) -> FeedEntry:
    """An entry from our database. Every stored entry was verified (signature, chain, body)
    when it was appended (feeds.admit / feeds.append); re-checking 250,000 signatures for
    a report would cost seconds, so the stored bytes are decoded without it (nor the
    canonical-form check: they were canonical when admitted)."""
    m = msgpack.unpackb(raw, raw=False)
    return FeedEntry(feed=m["feed"], seq=m["seq"], prev=m["prev"], time=m["time"],
                     kind=m["kind"], body=m["body"], sig=m["sig"], raw=raw)


def community_entries(home: Home, c: str) -> Iterator[FeedEntry]:
    """Every decision entry, then every entry of the community's schools' feeds we hold, one
    at a time (a report reads hundreds of thousands: they are never all in memory)."""
    m = community.membership(home, c)
    sids = sorted(set(m.members) | ({m.founder} if m.founder else set()))
    yield from community.decision_entries(home.conn)
    for sid in sids:
        feed = PublicKey.from_school_id(sid).raw
        for (raw,) in home.conn.execute("SELECT raw FROM entries WHERE feed = ? ORDER BY seq",
                                        (feed,)):
            yield _stored(raw)


def report(home: Home, c: str | None = None, start: int | None = None,
           end: int | None = None) -> dict[str, Any]:
    c = community.pick(home, c)
    if start is not None and end is not None and start >= end:
        raise NodeError("the report's --from must be before --to")
    return pr.compute(c, community_entries(home, c), start=start, end=end)


# -- moderation ------------------------------------------------------------------------------

_hidden_cache: dict[str, tuple[Any, dict[str, pr.Hidden]]] = {}


def hidden(home: Home) -> dict[str, pr.Hidden]:
    """Resources hidden in a community this school is a member of: {resource id: decision}."""
    (n,) = home.conn.execute("SELECT count(*) FROM entries WHERE kind = ?",
                             (records.KIND_MODERATION,)).fetchone()
    if n == 0:
        return {}
    key = (n, community.policy_key(home.conn), now_ms() // 60_000)
    cached = _hidden_cache.get(str(home.path))
    if cached and cached[0] == key:
        return cached[1]
    mods = [community._decode(raw) for (raw,) in home.conn.execute(
        "SELECT raw FROM entries WHERE kind = ?", (records.KIND_MODERATION,))]
    entries = community.decision_entries(home.conn) + [e for e in mods if e is not None]
    now = now_ms()
    out: dict[str, pr.Hidden] = {}
    for r in community.rows(home.conn):
        if r["relation"] != "member":
            continue
        h, _ = pr.moderation(r["community"], entries, now)
        for rid, x in h.items():
            out.setdefault(rid, x)
    _hidden_cache[str(home.path)] = (key, out)
    return out


def hidden_from_me(home: Home) -> set[str]:
    """What this node hides from search, the web and seeding: hidden resources of other
    schools (the author's own node keeps its resources and shows it the reason)."""
    h = hidden(home)
    if not h:
        return set()
    own = {rid for (rid,) in home.conn.execute(
        "SELECT resource_id FROM resources WHERE school_id = ?", (home.school_id,))}
    return set(h) - own


def moderate(home: Home, rid: str, action: str, reason: str | None,
             c: str | None = None) -> dict[str, Any]:
    c = community.pick(home, c, issuer=True)
    community._require_issuer(home, c, "hide a resource")
    if not records.is_resource_id(rid):
        raise NodeError(f"not a resource id: {rid!r}")
    body: dict[str, Any] = {"community": c, "resource": rid, "action": action,
                            "time": now_ms()}
    if reason:
        body["reason"] = reason
    try:
        decisions.validate_body(records.KIND_MODERATION, body)
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None
    e = library.append_entry(home, records.KIND_MODERATION, body)
    return {"community_id": c, "resource_id": rid, "action": action, "reason": reason,
            "entry": e.hash.hex()}


# -- holdings and the copy audit -------------------------------------------------------------

def held_roots(home: Home) -> list[bytes]:
    """Content roots of resource versions this node pins (a pin is only taken once the whole
    DAG is stored: a verified copy)."""
    return [c for (c,) in home.conn.execute(
        "SELECT DISTINCT p.cid FROM pins p JOIN resource_versions v ON v.content = p.cid")]


def _last_holdings(home: Home) -> FeedEntry | None:
    row = home.conn.execute("SELECT raw FROM entries WHERE feed = ? AND kind = ? "
                            "ORDER BY seq DESC LIMIT 1",
                            (home.feed, records.KIND_HOLDINGS)).fetchone()
    return _stored(row[0]) if row else None


def announce(home: Home, *, force: bool = False, now: int | None = None) -> dict[str, Any]:
    """Sign a holdings summary if what we hold changed since the last one, at most once per
    ANNOUNCE_INTERVAL_MS unless ``force``."""
    now = now_ms() if now is None else now
    last = _last_holdings(home)
    if last is not None and not force and now - last.time < ANNOUNCE_INTERVAL_MS:
        # checked first: the running node calls this at every change of its database
        n = len(last.body["roots"])
        return {"signed": False, "roots": n // records.HOLDINGS_DIGEST, "bytes": n,
                "why": "too soon"}
    roots = pr.encode_holdings(held_roots(home))
    count = len(roots) // records.HOLDINGS_DIGEST
    if last is not None and last.body["roots"] == roots:
        return {"signed": False, "roots": count, "bytes": len(roots), "why": "unchanged"}
    if last is None and not roots and not force:
        return {"signed": False, "roots": 0, "bytes": 0, "why": "nothing held"}
    e = library.append_entry(home, records.KIND_HOLDINGS, {"roots": roots})
    return {"signed": True, "roots": count, "bytes": len(roots), "entry": e.hash.hex(),
            "entry_bytes": len(e.raw)}


def holders_of(home: Home, rid: str) -> list[str]:
    """Schools whose newest holdings summary lists the resource's current content."""
    row = home.conn.execute("SELECT content FROM resources WHERE resource_id = ?",
                            (rid,)).fetchone()
    if row is None:
        return []
    d = pr.root_digest(row[0])
    out = []
    for feed, in home.conn.execute("SELECT DISTINCT feed FROM entries WHERE kind = ?",
                                   (records.KIND_HOLDINGS,)):
        raw = home.conn.execute("SELECT raw FROM entries WHERE feed = ? AND kind = ? ORDER BY "
                                "seq DESC LIMIT 1", (feed, records.KIND_HOLDINGS)).fetchone()[0]
        if pr.holdings_contain(_stored(raw).body["roots"], d):
            out.append(PublicKey(feed).school_id)
    return sorted(out)


def seed_rare(home: Home, c: str | None = None) -> dict[str, Any]:
    """Keep every resource of the community held by fewer than two schools: pin what is
    stored here, queue a fetch (pinned when done) for the rest."""
    from .transfers import TransferQueue
    c = community.pick(home, c, issuer=True)
    community._require_issuer(home, c, "seed rare resources")
    rep = report(home, c)
    pinned, queued, already = [], [], []
    queue = TransferQueue(home.conn)
    now = now_ms()
    for rid in rep["audit"]["rare"]:
        row = home.conn.execute("SELECT content, files FROM resources WHERE resource_id = ?",
                                (rid,)).fetchone()
        content = row[0]
        if home.conn.execute("SELECT 1 FROM pins WHERE cid = ?", (content,)).fetchone():
            already.append(rid)
        elif library.first_missing(home, cid_to_str(content)) is None:
            with db.write(home.conn) as conn:
                db.pin(conn, content, "community", c, now)
            pinned.append(rid)
        elif queue.active_for(content) is None:
            queue.add(rid, content, priority="seeding",
                      bytes_total=community.files_size(row[1]),
                      pin_reason="community", pin_ref=c)
            queued.append(rid)
        else:
            already.append(rid)
    return {"community_id": c, "rare": len(rep["audit"]["rare"]), "pinned": pinned,
            "queued": queued, "already": already}


# -- feedback reaching its author ------------------------------------------------------------

def my_feedback(home: Home, limit: int = 200) -> list[dict[str, Any]]:
    """Feedback other schools gave on our resources, newest first, with when it arrived."""
    rows = home.conn.execute(
        "SELECT b.resource_id, r.title, b.school_id, f.name, b.used, b.rating, b.comment, "
        "b.time, e.received FROM feedback b JOIN resources r ON r.resource_id = b.resource_id "
        "JOIN entries e ON e.feed = b.feed AND e.seq = b.seq LEFT JOIN feeds f ON f.feed = b.feed "
        "WHERE r.school_id = ? AND b.feed != ? AND f.flagged IS NULL "
        "ORDER BY coalesce(e.received, b.time) DESC LIMIT ?",
        (home.school_id, home.feed, limit)).fetchall()
    return [{"resource_id": r[0], "title": r[1], "school_id": r[2], "school": r[3],
             "used": bool(r[4]), "rating": r[5], "comment": r[6], "time": r[7],
             "received": r[8] if r[8] is not None else r[7]} for r in rows]


def unread(home: Home, teacher: str) -> int:
    seen = int(db.get_setting(home.conn, SEEN_SETTING + teacher, "0") or 0)
    (n,) = home.conn.execute(
        "SELECT count(*) FROM feedback b JOIN resources r ON r.resource_id = b.resource_id "
        "JOIN entries e ON e.feed = b.feed AND e.seq = b.seq "
        "WHERE r.school_id = ? AND b.feed != ? AND coalesce(e.received, b.time) > ?",
        (home.school_id, home.feed, seen)).fetchone()
    return int(n)


def mark_read(home: Home, teacher: str) -> None:
    items = my_feedback(home, limit=1)
    if items:
        with db.write(home.conn) as conn:
            db.set_setting(conn, SEEN_SETTING + teacher, str(items[0]["received"]))


def moderation_notices(home: Home) -> list[dict[str, Any]]:
    """Our own resources a community has hidden, with the reason (shown to the author)."""
    own = {rid: t for rid, t in home.conn.execute(
        "SELECT resource_id, title FROM resources WHERE school_id = ?", (home.school_id,))}
    return [{"resource_id": rid, "title": own[rid], "community_id": h.community, "by": h.by,
             "reason": h.reason, "time": h.time}
            for rid, h in sorted(hidden(home).items()) if rid in own]

