"""Requests and feedback read back from the catalog, for the web library's board and resource
pages (signing goes through library.append_entry)."""

from __future__ import annotations

from typing import Any

from node import teachers
from node.home import Home


def list_requests(home: Home, limit: int = 100) -> list[dict[str, Any]]:
    rows = home.conn.execute(
        "SELECT q.request_id, q.school_id, f.name, q.time, q.subject, q.level, q.description,"
        " (SELECT group_concat(res) FROM fulfils WHERE fulfils.request_id = q.request_id),"
        " s.teacher FROM requests q LEFT JOIN feeds f ON f.feed = q.feed"
        " LEFT JOIN teacher_signatures s ON s.feed = q.feed AND s.seq = q.seq"
        " WHERE f.flagged IS NULL ORDER BY q.time DESC LIMIT ?", (limit,)).fetchall()
    return [{"request_id": r[0], "school_id": r[1], "school": r[2], "time": r[3],
             "subject": r[4], "level": r[5], "description": r[6],
             "fulfilled_by": [x for x in (r[7] or "").split(",") if x],
             **_teacher(home, r[8])} for r in rows]


def _teacher(home: Home, key: bytes | None) -> dict[str, Any]:
    """The teacher who signed an entry (specs/teachers.md), by key: name and ``t…`` id."""
    if key is None:
        return {"teacher": None, "teacher_key": None}
    return {"teacher": teachers.name_of(home.conn, key) or "", "teacher_key": "t" + key.hex()}


def request_exists(home: Home, qid: str) -> bool:
    return home.conn.execute("SELECT 1 FROM requests WHERE request_id = ?",
                             (qid,)).fetchone() is not None


def list_feedback(home: Home, rid: str) -> dict[str, Any]:
    rows = home.conn.execute(
        "SELECT b.school_id, f.name, b.used, b.rating, b.comment, b.time, s.teacher"
        " FROM feedback b LEFT JOIN feeds f ON f.feed = b.feed"
        " LEFT JOIN teacher_signatures s ON s.feed = b.feed AND s.seq = b.seq"
        " WHERE b.resource_id = ? AND f.flagged IS NULL"
        " ORDER BY b.time DESC LIMIT 200", (rid,)).fetchall()
    items = [{"school_id": r[0], "school": r[1], "used": bool(r[2]), "rating": r[3],
              "comment": r[4], "time": r[5], **_teacher(home, r[6])} for r in rows]
    avg = round(sum(i["rating"] for i in items) / len(items), 1) if items else None
    return {"items": items, "average": avg, "used_in_class": sum(i["used"] for i in items)}


def fulfilled_requests(home: Home, rid: str) -> list[dict[str, Any]]:
    rows = home.conn.execute(
        "SELECT q.request_id, q.subject, q.level FROM fulfils x JOIN requests q"
        " ON q.request_id = x.request_id WHERE x.res = ?", (rid,)).fetchall()
    return [{"request_id": r[0], "subject": r[1], "level": r[2]} for r in rows]
