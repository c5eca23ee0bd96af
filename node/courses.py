"""Courses on a node (specs/courses.md): publishing course records, reading the course
catalog (indexed by node/catalog.py from feed entries, ours and peers' alike), adoptions of a
course for a class with a weekly timetable, which resources are due, and each lesson's
readiness.  The date and readiness logic itself is sans-IO (protocol/courses.py); this module
only reads the tables it needs and hands it plain values.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from protocol import courses as pc
from protocol import limits as pl
from protocol.errors import LocalProtocolError

from . import catalog, db, library
from . import limits as nlimits
from .errors import NodeError, NotFound
from .home import Home, now_ms

DEFAULT_HORIZON = 14         # days ahead whose lessons' resources are fetched
MAX_HORIZON = 120
PIN_REASON = "course"        # pins of resources fetched for an adopted course
CLASS_MAX = 100              # characters of a class name


# -- outlines and publishing ----------------------------------------------------------------

def parse_outline(text: str, *, yaml_hint: bool = False) -> dict[str, Any]:
    """A course outline, YAML (a mapping with ``units``) or the simple text form."""
    try:
        if yaml_hint or text.lstrip().startswith("units:") or "\nunits:" in text:
            import yaml
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise NodeError(f"the YAML outline does not parse: "
                                f"{str(exc).splitlines()[0]}") from None
            return pc.outline_from_mapping(data)
        return pc.parse_text_outline(text)
    except LocalProtocolError as exc:
        raise NodeError(f"course outline: {exc}") from None


def read_outline(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise NodeError(f"{path}: a course outline is UTF-8 text") from None
    return parse_outline(text, yaml_hint=path.suffix.lower() in (".yaml", ".yml"))


def publish(home: Home, outline: dict[str, Any]) -> dict[str, Any]:
    body = {"version": 1, "meta": outline["meta"], "units": outline["units"]}
    try:
        entry = library.append_entry(home, pc.KIND_COURSE_PUBLISH, body)
    except LocalProtocolError as exc:
        raise NodeError(f"course: {exc}") from None
    return {"course_id": pc.course_id_of(entry), "version": 1,
            "lessons": sum(len(u["lessons"]) for u in outline["units"])}


def _own_course(conn: sqlite3.Connection, feed: bytes, course_id: str) -> sqlite3.Row | tuple:
    row = conn.execute("SELECT feed, version, retracted FROM courses WHERE course_id = ?",
                       (course_id,)).fetchone()
    if row is None:
        raise NotFound(f"no course {course_id!r} in this library")
    if row[0] != feed:
        raise NodeError(f"course {course_id} belongs to another school: only its author "
                        "changes it")
    if row[2]:
        raise NodeError(f"course {course_id} is retracted")
    return row


def update(home: Home, course_id: str, outline: dict[str, Any]) -> dict[str, Any]:
    if not pc.is_course_id(course_id):
        raise NodeError(f"{course_id!r} is not a course id (k...)")
    version = 0

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        nonlocal version
        version = _own_course(conn, home.feed, course_id)[1] + 1
        return {"course": course_id, "version": version, "meta": outline["meta"],
                "units": outline["units"]}
    try:
        library._append_own(home, pc.KIND_COURSE_UPDATE, body)
    except LocalProtocolError as exc:
        raise NodeError(f"course: {exc}") from None
    return {"course_id": course_id, "version": version,
            "lessons": sum(len(u["lessons"]) for u in outline["units"])}


def retract(home: Home, course_id: str, reason: str | None = None) -> dict[str, Any]:
    if not pc.is_course_id(course_id):
        raise NodeError(f"{course_id!r} is not a course id (k...)")

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        _own_course(conn, home.feed, course_id)
        return {"course": course_id, **({"reason": reason} if reason else {})}
    library._append_own(home, pc.KIND_COURSE_RETRACT, body)
    return {"retracted": course_id}


# -- the course catalog ---------------------------------------------------------------------

_COLS = ("c.course_id, c.school_id, f.name, c.version, c.title, c.subject, c.grade, c.volume,"
         " c.edition, c.lessons, c.updated, c.retracted")


def _row(r: tuple) -> dict[str, Any]:
    keys = ("course_id", "school_id", "school", "version", "title", "subject", "grade",
            "volume", "edition", "lessons", "updated", "retracted")
    d = dict(zip(keys, r, strict=True))
    d["retracted"] = bool(d["retracted"])
    return d


def search(conn: sqlite3.Connection, query: str | None = None, *, subject: str | None = None,
           grade: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Live courses, newest first; ``query`` matches title, subject, description, edition,
    unit and lesson titles (all words, Chinese as in resource search)."""
    where, args = ["c.retracted = 0"], []
    if query:
        text = catalog.fts_query(query)
        if text is None:
            return []
        where.append("c.id IN (SELECT rowid FROM courses_fts WHERE courses_fts MATCH ?)")
        args.append(text)
    if subject:
        where.append("c.subject = ?")
        args.append(subject)
    if grade:
        try:
            where.append("c.grade = ?")
            args.append(pc.normalize_grade(grade))
        except LocalProtocolError as exc:
            raise NodeError(str(exc)) from None
    return [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM courses c LEFT JOIN feeds f ON f.feed = c.feed "
        f"WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT ?", (*args, limit))]


def show(home: Home, course_id: str) -> dict[str, Any]:
    conn = home.conn
    r = conn.execute(f"SELECT {_COLS}, c.meta, c.units, c.retract_reason, c.feed FROM courses c "
                     "LEFT JOIN feeds f ON f.feed = c.feed WHERE c.course_id = ?",
                     (course_id,)).fetchone()
    if r is None:
        raise NotFound(f"no course {course_id!r} in this library")
    out = _row(r[:12])
    meta, units = json.loads(r[12]), json.loads(r[13])
    out.update(meta=meta, units=units, retract_reason=r[14], own=r[15] == home.feed)
    out["versions"] = [{"version": v, "seq": s, "time": t} for v, s, t in conn.execute(
        "SELECT version, seq, time FROM course_versions WHERE course_id = ? ORDER BY version",
        (course_id,))]
    rids = sorted({rid for u in units for le in u["lessons"] for rid in le["resources"]})
    out["resources"] = {rid: _resource_info(conn, rid) for rid in rids}
    out["outline"] = pc.outline_to_text(meta, units)
    return out


def _resource_info(conn: sqlite3.Connection, rid: str) -> dict[str, Any]:
    row = conn.execute("SELECT title, school_id, retracted FROM resources WHERE resource_id = ?",
                       (rid,)).fetchone()
    if row is None:
        return {"title": None, "school_id": None, "known": False}
    return {"title": row[0], "school_id": row[1], "known": True, "retracted": bool(row[2])}


# -- adoptions ------------------------------------------------------------------------------

def adopt(home: Home, course_id: str, class_name: str, start: dt.date, timetable: pc.Timetable,
          skipped: tuple[dt.date, ...] = (), horizon: int = DEFAULT_HORIZON,
          teacher: str | None = None) -> dict[str, Any]:
    """This school teaches ``course_id`` to ``class_name`` from ``start`` (local, unsigned)."""
    class_name = class_name.strip()
    if not 1 <= len(class_name) <= CLASS_MAX:
        raise NodeError(f"a class name is 1-{CLASS_MAX} characters")
    if not 1 <= horizon <= MAX_HORIZON:
        raise NodeError(f"--days is 1-{MAX_HORIZON}")
    row = home.conn.execute("SELECT retracted FROM courses WHERE course_id = ?",
                            (course_id,)).fetchone()
    if row is None:
        raise NotFound(f"no course {course_id!r} in this library (follow its school first)")
    if row[0]:
        raise NodeError(f"course {course_id} is retracted")
    try:
        with db.write(home.conn) as conn:
            cur = conn.execute(
                "INSERT INTO course_adoptions (course_id, class, teacher, start, timetable, "
                "skipped, horizon, created) VALUES (?,?,?,?,?,?,?,?)",
                (course_id, class_name, teacher, start.isoformat(),
                 json.dumps([list(s) for s in timetable.slots]),
                 json.dumps([d.isoformat() for d in skipped]), horizon, now_ms()))
    except sqlite3.IntegrityError:
        raise NodeError(f"class {class_name!r} has already adopted course {course_id}") from None
    return {"adoption": cur.lastrowid, "course_id": course_id, "class": class_name,
            "start": start.isoformat(), "timetable": str(timetable), "horizon": horizon}


def unadopt(home: Home, adoption: int) -> dict[str, Any]:
    with db.write(home.conn) as conn:
        n = conn.execute("DELETE FROM course_adoptions WHERE id = ?", (adoption,)).rowcount
        if n:   # what was fetched for it is no longer kept for it
            conn.execute("DELETE FROM pins WHERE reason = ? AND ref = ?",
                         (PIN_REASON, f"adoption {adoption}"))
    if not n:
        raise NodeError(f"no adoption {adoption}")
    return {"unadopted": adoption}


def adoptions(conn: sqlite3.Connection, teacher: str | None = None) -> list[dict[str, Any]]:
    """Adoptions with their course's current outline (retracted courses included, flagged)."""
    sql = ("SELECT a.id, a.course_id, a.class, a.teacher, a.start, a.timetable, a.skipped, "
           "a.horizon, c.title, c.units, c.retracted, c.subject FROM course_adoptions a "
           "LEFT JOIN courses c ON c.course_id = a.course_id")
    args: tuple = ()
    if teacher is not None:
        sql += " WHERE a.teacher IS NULL OR a.teacher = ?"
        args = (teacher,)
    out = []
    for (aid, cid, cls, teacher_, start, tt, skipped, horizon, title, units, retracted,
         subject) in conn.execute(sql + " ORDER BY a.id", args):
        out.append({"adoption": aid, "course_id": cid, "class": cls, "teacher": teacher_,
                    "start": dt.date.fromisoformat(start),
                    "timetable": pc.Timetable(tuple(tuple(s) for s in json.loads(tt))),
                    "skipped": tuple(dt.date.fromisoformat(d) for d in json.loads(skipped)),
                    "horizon": horizon, "title": title, "subject": subject,
                    "units": json.loads(units) if units else [],
                    "retracted": bool(retracted)})
    return out


def scheduled(a: dict[str, Any]) -> list[pc.Scheduled]:
    return pc.schedule(pc.lessons_of(a["units"]), a["start"], a["timetable"], a["skipped"])


def resource_states(conn: sqlite3.Connection, rids: set[str]) -> dict[str, pc.ResourceState]:
    """What this node knows of each resource: held (its content pinned), its latest transfer
    (one statement, whatever the number of resources)."""
    out: dict[str, pc.ResourceState] = {}
    for rid, title, size, held, state, done, error in conn.execute(
            "SELECT r.resource_id, r.title, "
            " (SELECT total(f.value ->> 'size') FROM json_each(r.files) f), "
            " EXISTS (SELECT 1 FROM pins p WHERE p.cid = r.content), "
            " t.state, t.bytes_done, t.last_error "
            "FROM json_each(?) j JOIN resources r ON r.resource_id = j.value "
            "LEFT JOIN transfers t ON t.id = "
            " (SELECT max(id) FROM transfers x WHERE x.root = r.content)",
            (json.dumps(sorted(rids)),)):
        out[rid] = pc.ResourceState(held=bool(held), known=True, title=title,
                                    size=int(size),
                                    transfer=state, bytes_done=done or 0, error=error)
    for rid in rids - out.keys():
        out[rid] = pc.ResourceState(known=False)
    return out


def rate_function(conn: sqlite3.Connection) -> Any:
    """Bytes/s the node may download at a local time (None: unlimited), by the schedule."""
    limits = nlimits.load(conn)
    return lambda when: pl.effective_rate(limits, when.time()).down


def budget_spent(conn: sqlite3.Connection, when: dt.datetime) -> bool:
    budget = nlimits.load(conn).monthly_budget
    return budget is not None and sum(nlimits.used(conn, nlimits.month_of(when))) >= budget


def due_resources(home: Home, today: dt.date) -> list[tuple[str, int]]:
    """(resource id, adoption) of every resource of a lesson due within its adoption's horizon
    (today included) that this node does not hold: what the course service fetches."""
    out: dict[str, int] = {}
    for a in adoptions(home.conn):
        if a["retracted"] or not a["units"]:
            continue
        for s in pc.due(scheduled(a), today, a["horizon"]):
            for rid in s.lesson.resources:
                out.setdefault(rid, a["adoption"])
    return list(out.items())


def status(home: Home, *, adoption: int | None = None, now: dt.datetime | None = None,
           days: int | None = None, teacher: str | None = None) -> list[dict[str, Any]]:
    """Per adoption, per lesson from today on (``days``: only that far ahead; default each
    adoption's horizon): date, ready / fetching (progress) / missing and why not ready."""
    now = now or dt.datetime.now()
    conn = home.conn
    chosen = [a for a in adoptions(conn, teacher)
              if adoption is None or a["adoption"] == adoption]
    if adoption is not None and not chosen:
        raise NodeError(f"no adoption {adoption}")
    per: list[tuple[dict[str, Any], list[pc.Scheduled]]] = []
    rids: set[str] = set()
    for a in chosen:
        window = pc.due(scheduled(a), now.date(), days if days is not None else a["horizon"]) \
            if a["units"] else []
        per.append((a, window))
        rids.update(r for s in window for r in s.lesson.resources)
    states = resource_states(conn, rids)
    spent = budget_spent(conn, now)
    rate_at = rate_function(conn)
    results = pc.readiness_many([w for _, w in per], states, now=now, budget_spent=spent,
                                rate_at=rate_at)
    out = []
    for (a, _), lessons in zip(per, results, strict=True):
        out.append({
            "adoption": a["adoption"], "course_id": a["course_id"], "title": a["title"],
            "class": a["class"], "teacher": a["teacher"], "start": a["start"].isoformat(),
            "timetable": str(a["timetable"]), "horizon": a["horizon"],
            "retracted": a["retracted"],
            "lessons": [_lesson_json(ls, states) for ls in lessons]})
    return out


def _lesson_json(ls: pc.LessonStatus, states: dict[str, pc.ResourceState]) -> dict[str, Any]:
    s = ls.scheduled
    return {"date": s.date.isoformat(), "periods": [p for _, p in s.slots],
            "unit": s.lesson.unit, "unit_title": s.lesson.unit_title,
            "lesson": s.lesson.number, "title": s.lesson.title, "status": ls.status,
            "why": ls.why,
            "resources": [{"resource_id": r.resource, "title": states[r.resource].title
                           if r.resource in states else None,
                           "status": r.status, "why": r.why, "bytes_done": r.bytes_done,
                           "size": r.size, "eta": r.eta} for r in ls.resources]}


def due_key(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """What :func:`queue_due` depends on, cheaply: courses, adoptions, resources (new, updated,
    retracted), pins, transfers started or ended. Equal keys: nothing new to queue."""
    return conn.execute(
        "SELECT (SELECT count(*) || ':' || total(seq) || ':' || total(retracted) FROM courses),"
        " (SELECT count(*) || ':' || ifnull(max(id), 0) FROM course_adoptions),"
        " (SELECT count(*) || ':' || total(seq) || ':' || total(retracted) FROM resources),"
        " (SELECT count(*) FROM pins),"
        " (SELECT ifnull(max(id), 0) || ':' || count(*) FROM transfers WHERE state IN "
        "('done', 'failed', 'cancelled'))").fetchone()


def queue_due(home: Home, queue: Any, today: dt.date) -> int:
    """Queue the fetch of every due resource not held, at subscription priority, pinned for
    its adoption when complete; returns how many were queued. A resource whose course fetch
    failed or was cancelled is not queued again by itself (the operator resumes it)."""
    conn = home.conn
    n = 0
    for rid, adoption in due_resources(home, today):
        row = conn.execute("SELECT content, files, retracted FROM resources "
                           "WHERE resource_id = ?", (rid,)).fetchone()
        if row is None or row[2]:
            continue
        root, files = row[0], row[1]
        ref = f"adoption {adoption}"
        if conn.execute("SELECT 1 FROM pins WHERE cid = ? AND reason = ? AND ref = ?",
                        (root, PIN_REASON, ref)).fetchone():
            continue
        if queue.active_for(root) is not None:
            continue
        if conn.execute("SELECT 1 FROM transfers WHERE root = ? AND pin_reason = ? AND state "
                        "IN ('failed', 'cancelled')", (root, PIN_REASON)).fetchone():
            continue
        if conn.execute("SELECT 1 FROM pins WHERE cid = ? LIMIT 1", (root,)).fetchone() or \
                library.first_missing(home, rid) is None:
            with db.write(conn) as c:   # held already: keep it for the course too
                db.pin(c, root, PIN_REASON, ref, now_ms())
            continue
        queue.add(rid, root, priority="subscription", bytes_total=catalog.files_size(files),
                  pin_reason=PIN_REASON, pin_ref=ref)
        n += 1
    return n


def check_course_id(text: str) -> str:
    if not pc.is_course_id(text):
        raise NodeError(f"{text!r} is not a course id (k...)")
    return text



def tree(home: Home, course_id: str) -> dict[str, Any]:
    """A course as a syllabus tree (show) with, for each of our adoptions of it, the date and
    readiness of every lesson (past ones too): ``adoptions`` and, per lesson, ``by_adoption``."""
    out = show(home, course_id)
    mine = [a for a in adoptions(home.conn) if a["course_id"] == course_id]
    groups = [scheduled(a) for a in mine]
    rids = {r for g in groups for s in g for r in s.lesson.resources}
    rids |= set(out["resources"])
    states = resource_states(home.conn, rids)
    now = dt.datetime.now()
    results = pc.readiness_many(groups, states, now=now,
                                budget_spent=budget_spent(home.conn, now),
                                rate_at=rate_function(home.conn))
    by_lesson: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for a, lessons in zip(mine, results, strict=True):
        for ls in lessons:
            by_lesson.setdefault((ls.scheduled.lesson.unit, ls.scheduled.lesson.number),
                                 []).append({"adoption": a["adoption"], "class": a["class"],
                                             **_lesson_json(ls, states)})
    for u in out["units"]:
        for le in u["lessons"]:
            le["by_adoption"] = by_lesson.get((u["number"], le["number"]), [])
    out["adoptions"] = [{"adoption": a["adoption"], "class": a["class"],
                         "start": a["start"].isoformat(), "timetable": str(a["timetable"])}
                        for a in mine]
    for rid, info in out["resources"].items():
        st = states.get(rid)
        info["held"] = bool(st and st.held)
    return out
