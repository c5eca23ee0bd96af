"""Master-teacher studios on a node (specs/teachers.md §6): the pure fold, actions, listings.

Studio entries are ordinary entries of the members' school feeds, each signed by the teacher
who acts (``teacher.signature``).  :func:`fold` turns all of them into studios — members,
lesson-study threads, tasks, submissions, reviews, mentoring pairs — with one deterministic rule,
so every node holding the same feeds shows the same studio.  A studio invite names the school
it invites; the inviting node follows that school's feed, and a node whose school is invited or
a member follows the studio's other schools (:func:`wanted_feeds`, part of the replication
policy).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from crypto import PublicKey
from protocol import records
from protocol import studio as ps
from protocol.errors import LocalProtocolError
from protocol.records import FeedEntry

from . import db, library
from .errors import NodeError
from .home import Home, now_ms
from .teachers import signing_as

DAY_MS = 86_400_000
INVITE_DAYS = 14
# Kinds in the order the fold applies them: what an entry needs comes in an earlier phase, so
# authors' clocks (entry times are informational) never change the outcome.
PHASES = ((ps.KIND_STUDIO_FOUND,), (ps.KIND_STUDIO_INVITE,), (ps.KIND_STUDIO_JOIN,),
          (ps.KIND_STUDIO_TASK, ps.KIND_STUDIO_PAIR),
          (ps.KIND_STUDIO_SUBMIT, ps.KIND_STUDIO_COMMENT),
          (ps.KIND_STUDIO_REVIEW, ps.KIND_STUDIO_LOG))


@dataclass
class Studio:
    id: str
    name: str
    about: str | None
    master: bytes
    school: str                                       # the founding school's id
    time: int
    members: dict[bytes, dict[str, Any]] = field(default_factory=dict)   # key -> school, time
    invites: dict[bytes, dict[str, Any]] = field(default_factory=dict)   # verifier -> ...
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: dict[bytes, dict[str, Any]] = field(default_factory=dict)  # entry hash -> ...
    comments: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    pairs: dict[bytes, dict[str, Any]] = field(default_factory=dict)


def _ref(e: FeedEntry) -> dict[str, Any]:
    return {"school_id": e.school_id, "seq": e.seq, "hash": e.hash.hex(), "time": e.time}


def fold(items: list[tuple[FeedEntry, bytes]]) -> dict[str, Studio]:
    """Studios from ``(entry, signing teacher)`` pairs of studio kinds (specs/teachers.md
    §6.3): phases in order, within a phase by (time, entry hash); an entry breaking a rule is
    ignored.  Pure: the same entries give the same studios."""
    studios: dict[str, Studio] = {}
    for phase in PHASES:
        for e, t in sorted((x for x in items if x[0].kind in phase),
                           key=lambda x: (x[0].time, x[0].hash)):
            b = e.body
            if e.kind == ps.KIND_STUDIO_FOUND:
                sid = ps.studio_id_of(e.hash)
                studios[sid] = Studio(id=sid, name=b["name"], about=b.get("about"), master=t,
                                      school=e.school_id, time=e.time)
                studios[sid].members[t] = {"school_id": e.school_id, "time": e.time}
                continue
            s = studios.get(b["studio"])
            if s is None:
                continue
            member = t in s.members
            if e.kind == ps.KIND_STUDIO_INVITE:
                if t == s.master:
                    s.invites.setdefault(b["verifier"], {"school_id": b["school"],
                                                         "expires": b["expires"]})
            elif e.kind == ps.KIND_STUDIO_JOIN:
                inv = next((i for v, i in s.invites.items()
                            if ps.proof_ok(v, s.id, b["teacher"], b["proof"])), None)
                if (b["teacher"] == t and not member and inv is not None
                        and inv["school_id"] == e.school_id and e.time < inv["expires"]):
                    s.members[t] = {"school_id": e.school_id, "time": e.time}
            elif e.kind == ps.KIND_STUDIO_TASK and t == s.master:
                s.tasks[ps.task_id_of(e.hash)] = {
                    "id": ps.task_id_of(e.hash), "title": b["title"], "due": b["due"],
                    "description": b.get("description"), "resource": b.get("resource"),
                    **_ref(e)}
            elif e.kind == ps.KIND_STUDIO_PAIR and t == s.master:
                if b["mentor"] in s.members and b["apprentice"] in s.members:
                    s.pairs[e.hash] = {"mentor": b["mentor"], "apprentice": b["apprentice"],
                                       "log": [], **_ref(e)}
            elif e.kind == ps.KIND_STUDIO_SUBMIT and member and b["task"] in s.tasks:
                task = s.tasks[b["task"]]
                s.submissions[e.hash] = {"task": b["task"], "resource": b["resource"],
                                         "teacher": t, "on_time": e.time <= task["due"],
                                         "review": None, **_ref(e)}
            elif e.kind == ps.KIND_STUDIO_COMMENT and member:
                parent = b.get("replyTo")
                if parent is None or (parent in s.comments
                                      and s.comments[parent]["resource"] == b["resource"]):
                    s.comments[e.hash] = {"resource": b["resource"], "text": b["text"],
                                          "teacher": t, "reply_to": parent, **_ref(e)}
            elif e.kind == ps.KIND_STUDIO_REVIEW and t == s.master:
                sub = s.submissions.get(b["submission"])
                if sub is not None:   # the latest review of a submission counts
                    sub["review"] = {"rating": b["rating"], "comment": b.get("comment"),
                                     "teacher": t, **_ref(e)}
            elif e.kind == ps.KIND_STUDIO_LOG:
                pair = s.pairs.get(b["pair"])
                if pair is not None and t in (pair["mentor"], pair["apprentice"]):
                    pair["log"].append({"note": b["note"], "text": b["text"],
                                        "resource": b.get("resource"), "teacher": t,
                                        **_ref(e)})
    return studios


def signed_entries(conn: sqlite3.Connection, kinds: tuple[str, ...] | frozenset[str]
                   ) -> list[tuple[FeedEntry, bytes | None]]:
    """Stored entries of ``kinds`` from trusted feeds with the teacher who signed each (None
    if none did); each is decoded and verified again."""
    q = ("SELECT e.raw, s.teacher FROM entries e JOIN feeds f ON f.feed = e.feed"
         " LEFT JOIN teacher_signatures s ON s.feed = e.feed AND s.seq = e.seq"
         f" WHERE f.flagged IS NULL AND e.kind IN ({', '.join('?' * len(kinds))})")
    return [(records.decode_entry(raw), t) for raw, t in conn.execute(q, tuple(kinds))]


def studios(conn: sqlite3.Connection) -> dict[str, Studio]:
    return fold([(e, t) for e, t in signed_entries(conn, ps.STUDIO_KINDS) if t is not None])


def get(conn: sqlite3.Connection, sid: str) -> Studio:
    s = studios(conn).get(sid)
    if s is None:
        raise NodeError(f"no studio {sid} here (is its founding school's feed replicated?)")
    return s


def wanted_feeds(conn: sqlite3.Connection, school_id: str) -> set[bytes]:
    """Feeds of the studios this school takes part in (founder, invited or a member's
    school): the founding school, every invited school and every member's school."""
    out: set[bytes] = set()
    for s in studios(conn).values():
        schools = {s.school} | {i["school_id"] for i in s.invites.values()} \
            | {m["school_id"] for m in s.members.values()}
        if school_id in schools:
            out |= {PublicKey.from_school_id(x).raw for x in schools}
    return out


# -- actions (each signed by a signed-in teacher's key) ------------------------------------------

def _act(home: Home, key: Any, kind: str, body: dict[str, Any]) -> FeedEntry:
    if key is None:
        raise NodeError("only a teacher with an identity can act in a studio (sign in again)")
    try:
        records.validate_body(kind, body, local=True)
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None
    with signing_as(key):
        return library.append_entry(home, kind, body)


def create(home: Home, key: Any, name: str, about: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name.strip()}
    if about and about.strip():
        body["about"] = about.strip()
    e = _act(home, key, ps.KIND_STUDIO_FOUND, body)
    return {"studio": ps.studio_id_of(e.hash), "name": body["name"]}


def invite(home: Home, key: Any, sid: str, school_id: str, seeds: list[str],
           days: int = INVITE_DAYS) -> dict[str, Any]:
    """An invite for the teachers of ``school_id``; this node follows that school's feed."""
    s = get(home.conn, sid)
    if key is None or key.public.raw != s.master:
        raise NodeError("only the studio's master teacher invites")
    try:
        feed = PublicKey.from_school_id(school_id).raw
    except ValueError:
        raise NodeError(f"{school_id!r} is not a school id") from None
    if not 1 <= days <= 365:
        raise NodeError("an invite lasts 1 to 365 days")
    secret = os.urandom(ps.SECRET_SIZE)
    expires = now_ms() + days * DAY_MS
    _act(home, key, ps.KIND_STUDIO_INVITE,
         {"studio": sid, "school": school_id, "verifier": ps.invite_key(secret).public.raw,
          "expires": expires})
    if feed != home.feed:
        _follow(home, feed, school_id)
    return {"studio": sid, "school": school_id, "expires": expires,
            "code": ps.encode_code(sid, home.school_id, secret, seeds)}


def _follow(home: Home, feed: bytes, school_id: str) -> None:
    with db.write(home.conn) as conn:
        conn.execute("INSERT OR IGNORE INTO follows VALUES (?, ?, ?)",
                     (feed, school_id, now_ms()))


def accept_code(home: Home, code: str) -> dict[str, Any]:
    """Read an invite code and follow the founding school's feed (before joining)."""
    try:
        c = ps.decode_code(code)
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None
    if c["school"] != home.school_id:
        _follow(home, PublicKey.from_school_id(c["school"]).raw, c["school"])
    return c


def join(home: Home, key: Any, code: str) -> dict[str, Any]:
    """Join with an invite code (the studio's founding entries must be here: replicate the
    founding school's feed first — :func:`accept_code` follows it)."""
    c = accept_code(home, code)
    if key is None:
        raise NodeError("only a teacher with an identity can join a studio")
    s = studios(home.conn).get(c["studio"])
    if s is None:
        raise NodeError("the studio is not here yet: this node now follows the founding "
                        "school; try again once its feed has arrived")
    if key.public.raw in s.members:
        return {"studio": s.id, "name": s.name, "joined": False}
    _act(home, key, ps.KIND_STUDIO_JOIN,
         {"studio": s.id, "teacher": key.public.raw,
          "proof": ps.join_proof(c["secret"], s.id, key.public.raw)})
    if key.public.raw not in get(home.conn, s.id).members:
        raise NodeError("this invite is not for this school, has expired or is unknown")
    return {"studio": s.id, "name": s.name, "joined": True}


def _member(home: Home, key: Any, sid: str, master: bool = False) -> Studio:
    s = get(home.conn, sid)
    if key is None or key.public.raw not in s.members:
        raise NodeError("only members of the studio can do this")
    if master and key.public.raw != s.master:
        raise NodeError("only the studio's master teacher can do this")
    return s


def add_task(home: Home, key: Any, sid: str, title: str, due: int,
             description: str | None = None, resource: str | None = None) -> dict[str, Any]:
    _member(home, key, sid, master=True)
    body: dict[str, Any] = {"studio": sid, "title": title.strip(), "due": due}
    if description and description.strip():
        body["description"] = description.strip()
    if resource:
        body["resource"] = resource
    e = _act(home, key, ps.KIND_STUDIO_TASK, body)
    return {"task": ps.task_id_of(e.hash), "title": body["title"], "due": due}


def submit(home: Home, key: Any, sid: str, task: str, resource: str) -> dict[str, Any]:
    s = _member(home, key, sid)
    if task not in s.tasks:
        raise NodeError(f"no task {task} in this studio")
    e = _act(home, key, ps.KIND_STUDIO_SUBMIT, {"studio": sid, "task": task,
                                                "resource": resource})
    return {"submission": e.hash.hex(), "on_time": e.time <= s.tasks[task]["due"]}


def review(home: Home, key: Any, sid: str, submission: str, rating: int,
           comment: str | None = None) -> dict[str, Any]:
    s = _member(home, key, sid, master=True)
    try:
        h = bytes.fromhex(submission)
    except ValueError:
        h = b""
    if h not in s.submissions:
        raise NodeError("no such submission in this studio")
    body: dict[str, Any] = {"studio": sid, "submission": h, "rating": rating}
    if comment and comment.strip():
        body["comment"] = comment.strip()
    _act(home, key, ps.KIND_STUDIO_REVIEW, body)
    return {"submission": submission, "rating": rating}


def comment(home: Home, key: Any, sid: str, resource: str, text: str,
            reply_to: str | None = None) -> dict[str, Any]:
    s = _member(home, key, sid)
    body: dict[str, Any] = {"studio": sid, "resource": resource, "text": text.strip()}
    if reply_to:
        try:
            parent = bytes.fromhex(reply_to)
        except ValueError:
            parent = b""
        if parent not in s.comments:
            raise NodeError("no such comment to reply to")
        body["replyTo"] = parent
    e = _act(home, key, ps.KIND_STUDIO_COMMENT, body)
    return {"comment": e.hash.hex()}


def pair(home: Home, key: Any, sid: str, mentor: bytes, apprentice: bytes) -> dict[str, Any]:
    s = _member(home, key, sid, master=True)
    if mentor not in s.members or apprentice not in s.members:
        raise NodeError("both teachers must be members of the studio")
    e = _act(home, key, ps.KIND_STUDIO_PAIR, {"studio": sid, "mentor": mentor,
                                              "apprentice": apprentice})
    return {"pair": e.hash.hex()}


def log(home: Home, key: Any, sid: str, pair_hash: str, note: str, text: str,
        resource: str | None = None) -> dict[str, Any]:
    s = _member(home, key, sid)
    try:
        h = bytes.fromhex(pair_hash)
    except ValueError:
        h = b""
    p = s.pairs.get(h)
    if p is None or key.public.raw not in (p["mentor"], p["apprentice"]):
        raise NodeError("only the mentor and the apprentice of this pairing write its log")
    body: dict[str, Any] = {"studio": sid, "pair": h, "note": note, "text": text.strip()}
    if resource:
        body["resource"] = resource
    e = _act(home, key, ps.KIND_STUDIO_LOG, body)
    return {"log": e.hash.hex()}
