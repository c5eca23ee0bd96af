"""Catalog: resources indexed from feed entries, searchable with FTS5.

Search cost is bounded whatever the query (a p95 of a few ms over 100,000 resources):
filters (level, subject, language, type, school) are FTS5 terms in a hidden ``facets`` column,
so the full-text index intersects them with the words; relevance (bm25) is computed only for the
:data:`RANK_WINDOW` newest matches, which FTS5 yields in rowid order without sorting.  A word
found in half the library is therefore ranked among its 2,000 most recent matches.

Chinese has no spaces between words, so FTS5's tokenizers see a whole sentence as one token.
Like Lucene's CJK analyzer we index runs of CJK characters as overlapping bigrams (so any word
of two or more characters is found as a phrase of its bigrams) and, in a separate column, as
single characters (so one-character queries work).  Other scripts go to FTS5 unchanged
(unicode61 + Porter stemming for English).

Besides the record's words the index holds its ``people`` (creator, file names) and ``body``:
the text inside its files, extracted in the background by node/textindex.py into
``file_texts`` (by file CID, so a file shared by versions or resources is read once).  A row's
``text_state`` says whether that text is in: 0 the row predates these columns, 1 some file's
text is not extracted yet (its content may not be local), 2 complete.  With a textbook filter
(grade, volume, edition) results come in textbook order: unit, then lesson.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Collection
from typing import Any

from crypto import cid_from_str, cid_to_str
from protocol import courses, records, vocab
from protocol.errors import LocalProtocolError
from protocol.records import FeedEntry

# CJK Unified Ideographs (+ext A, compatibility), Hiragana/Katakana, Hangul syllables.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")


RANK_WINDOW = 2000
AI_TOOL = "schoolmesh-ai"   # meta.tool.name of resources drafted by the AI assistant
# title, description, keywords, subjects, chars, facets, people, body
_BM25 = "bm25(catalog_fts, 10.0, 2.0, 5.0, 5.0, 1.0, 0.0, 5.0, 1.0)"

# Files whose text node/textindex.py extracts, by lowercased suffix.
TEXT_SUFFIXES = (".pptx", ".docx", ".xlsx", ".pdf", ".txt", ".md")
BODY_LIMIT = 300_000   # characters of file text indexed per resource
CURRICULUM_FIELDS = ("grade", "volume", "edition", "unit", "lesson")


def curriculum(meta: dict[str, Any]) -> dict[str, Any]:
    """The textbook fields of ``meta`` that hold to specs/records.md §5.3 (a record stored
    before this node knew them was not checked; those that break a rule are left out)."""
    out = {}
    for k in CURRICULUM_FIELDS:
        if k in meta:
            try:
                records.validate_curriculum({k: meta[k]})
            except LocalProtocolError:
                continue
            out[k] = meta[k]
    return out


def has_text(path: str) -> bool:
    return path.lower().endswith(TEXT_SUFFIXES)


def facet_token(facet: str, value: str) -> str:
    """An opaque, tokenizer-safe word standing for ``facet = value`` (case-insensitive)."""
    return "f" + hashlib.sha1(f"{facet}\0{value.casefold()}".encode()).hexdigest()[:20]


def _facet_tokens(school_id: str, meta: dict[str, Any]) -> str:
    lang = meta["inLanguage"]
    toks = [facet_token("school", school_id), facet_token("lang", lang),
            facet_token("lang", lang.split("-")[0])]
    toks += [facet_token("about", s) for s in meta.get("about", [])]
    toks += [facet_token("level", lv) for lv in meta.get("educationalLevel", [])]
    if "learningResourceType" in meta:
        toks.append(facet_token("type", meta["learningResourceType"]))
    toks.append(facet_token("license", meta["license"]))
    cur = curriculum(meta)
    if "grade" in cur:
        toks.append(facet_token("grade", str(cur["grade"])))
    if "volume" in cur:
        toks.append(facet_token("volume", cur["volume"]))
    if "edition" in cur:
        toks.append(facet_token("edition", cur["edition"].strip()))
    tool = meta.get("tool")
    if isinstance(tool, dict) and tool.get("name") == AI_TOOL:
        toks.append(facet_token("made", "ai"))   # drafted by the AI assistant (node/ai.py)
    return " ".join(toks)


def cjk_bigrams(text: str) -> str:
    """Replace each run of CJK characters by its overlapping bigrams, space separated."""
    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        if len(run) == 1:
            return f" {run} "
        return " " + " ".join(run[i:i + 2] for i in range(len(run) - 1)) + " "
    return _CJK.sub(repl, text)


def cjk_chars(text: str) -> str:
    return " ".join("".join(_CJK.findall(text)))


def fts_query(query: str) -> str | None:
    """Turn what a teacher typed into an FTS5 query: every term must match (AND).

    Each whitespace-separated term becomes a quoted phrase (so FTS5 operators in user text are
    inert); a CJK term of two or more characters becomes the phrase of its bigrams, a single CJK
    character is looked up in the ``chars`` column.
    """
    parts = []
    for term in query.split():
        pieces = []
        pos = 0
        for m in _CJK.finditer(term):
            if m.start() > pos:
                pieces.append(("text", term[pos:m.start()]))
            pieces.append(("cjk", m.group(0)))
            pos = m.end()
        if pos < len(term):
            pieces.append(("text", term[pos:]))
        for kind, piece in pieces:
            if kind == "cjk" and len(piece) == 1:
                parts.append(f'chars : "{piece}"')
            elif kind == "cjk":
                parts.append('"' + cjk_bigrams(piece).strip() + '"')
            else:
                cleaned = piece.replace('"', " ").strip()
                if cleaned and any(c.isalnum() for c in cleaned):
                    parts.append(f'"{cleaned}"')
    return " AND ".join(parts) if parts else None


def apply_entry(conn: sqlite3.Connection, entry: FeedEntry) -> None:
    """Index one verified, chained entry (inside the caller's write transaction)."""
    body = entry.body
    if entry.kind == records.KIND_PROFILE:
        conn.execute("UPDATE feeds SET name = ?, role = ? WHERE feed = ?",
                     (body["name"], body["role"], entry.feed))
    elif entry.kind == records.KIND_PUBLISH:
        _index_version(conn, entry, records.resource_id_of(entry), new=True)
    elif entry.kind == records.KIND_UPDATE:
        _index_version(conn, entry, body["resource"], new=False)
    elif entry.kind == records.KIND_RETRACT:
        row = conn.execute("SELECT id FROM resources WHERE resource_id = ? AND feed = ?",
                           (body["resource"], entry.feed)).fetchone()
        if row is not None:  # retracting something unknown is harmless
            conn.execute("UPDATE resources SET retracted = 1, retract_reason = ?, updated = ? "
                         "WHERE id = ?", (body.get("reason"), entry.time, row[0]))
            conn.execute("DELETE FROM catalog_fts WHERE rowid = ?", (row[0],))
            # its own, bundle and community pins go with it (node/gc.py: lifetimes)
            conn.execute("DELETE FROM pins WHERE reason IN ('own', 'bundle') AND ref = ?",
                         (body["resource"],))
            conn.execute("DELETE FROM pins WHERE reason = 'community' AND cid IN (SELECT "
                         "content FROM resource_versions WHERE resource_id = ?)",
                         (body["resource"],))
    elif entry.kind == records.KIND_REQUEST:
        conn.execute("INSERT OR IGNORE INTO requests VALUES (?,?,?,?,?,?,?,?)",
                     (records.request_id_of(entry), entry.feed, entry.school_id, entry.seq,
                      entry.time, body["subject"], body["level"], body["description"]))
    elif entry.kind == records.KIND_FEEDBACK:
        conn.execute("INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?,?,?,?)",
                     (entry.feed, entry.seq, entry.school_id, body["resource"],
                      int(body["used"]), body["rating"], body.get("comment"), entry.time))
    elif entry.kind in (courses.KIND_COURSE_PUBLISH, courses.KIND_COURSE_UPDATE):
        _index_course(conn, entry)
    elif entry.kind == courses.KIND_COURSE_RETRACT:
        n = conn.execute("UPDATE courses SET retracted = 1, retract_reason = ?, updated = ? "
                         "WHERE course_id = ? AND feed = ? RETURNING id",
                         (body.get("reason"), entry.time, body["course"], entry.feed)).fetchall()
        for (cid,) in n:   # retracting something unknown is harmless
            conn.execute("DELETE FROM courses_fts WHERE rowid = ?", (cid,))


def _index_course(conn: sqlite3.Connection, entry: FeedEntry) -> None:
    """A course version (specs/courses.md §5): the same rules as a resource's — an update
    comes from the course's own feed, moves the version by one, and never follows a retract."""
    body = entry.body
    meta = body["meta"]
    new = entry.kind == courses.KIND_COURSE_PUBLISH
    cid = courses.course_id_of(entry) if new else body["course"]
    row = conn.execute("SELECT id, feed, version, retracted FROM courses WHERE course_id = ?",
                       (cid,)).fetchone()
    if new and row is not None:
        return
    if not new and (row is None or row[1] != entry.feed or row[3]
                    or body["version"] != row[2] + 1):
        return
    units = body["units"]
    values = (body["version"], entry.seq, meta["title"], meta["subject"], meta["grade"],
              meta.get("volume"), meta.get("edition"),
              json.dumps(meta, ensure_ascii=False, sort_keys=True),
              json.dumps(units, ensure_ascii=False), sum(len(u["lessons"]) for u in units),
              entry.time)
    if row is None:
        rowid = conn.execute(
            "INSERT INTO courses (version, seq, title, subject, grade, volume, edition, meta,"
            " units, lessons, updated, course_id, feed, school_id, created)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            values + (cid, entry.feed, entry.school_id, entry.time)).lastrowid
    else:
        rowid = row[0]
        conn.execute("UPDATE courses SET version=?, seq=?, title=?, subject=?, grade=?, volume=?,"
                     " edition=?, meta=?, units=?, lessons=?, updated=? WHERE id = ?",
                     values + (rowid,))
        conn.execute("DELETE FROM courses_fts WHERE rowid = ?", (rowid,))
    conn.execute("INSERT OR IGNORE INTO course_versions VALUES (?,?,?,?)",
                 (cid, body["version"], entry.seq, entry.time))
    lessons = " ".join(f"{u['title']} {le['title']}" for u in units for le in u["lessons"])
    text = [meta["title"], meta["subject"], " ".join(
        meta.get(k, "") for k in ("description", "edition", "volume")), lessons]
    conn.execute("INSERT INTO courses_fts(rowid, title, subject, description, lessons, chars)"
                 " VALUES (?,?,?,?,?,?)",
                 (rowid, *(cjk_bigrams(v) for v in text), cjk_chars(" ".join(text))))


def _index_version(conn: sqlite3.Connection, entry: FeedEntry, rid: str, *, new: bool) -> None:
    body = entry.body
    meta = body["meta"]
    files = [{"path": f["path"], "cid": cid_to_str(f["cid"]), "size": f["size"]}
             for f in body["files"]]
    row = conn.execute("SELECT id, feed, version, retracted FROM resources "
                       "WHERE resource_id = ?", (rid,)).fetchone()
    if new:
        if row is not None:
            return  # already indexed (idempotent)
    else:
        # An update must come from the resource's own feed and move the version forward.
        if row is None or row[1] != entry.feed or row[3] or body["version"] != row[2] + 1:
            return
    values = (
        meta["title"], meta["inLanguage"], meta.get("learningResourceType"), meta["license"],
        body["content"], json.dumps(meta, ensure_ascii=False, sort_keys=True),
        json.dumps(files, ensure_ascii=False), entry.seq, body["version"], entry.time,
    )
    if row is None:
        cur = conn.execute(
            "INSERT INTO resources (title, language, type, license, content, meta, files, seq,"
            " version, updated, resource_id, feed, school_id, first_seq, created)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            values + (rid, entry.feed, entry.school_id, entry.seq, entry.time))
        res = cur.lastrowid
    else:
        res = row[0]
        conn.execute(
            "UPDATE resources SET title=?, language=?, type=?, license=?, content=?, meta=?,"
            " files=?, seq=?, version=?, updated=? WHERE id = ?", values + (res,))
        conn.execute("DELETE FROM facets WHERE res = ?", (res,))
        conn.execute("DELETE FROM lineage WHERE res = ?", (rid,))
    conn.execute("INSERT OR IGNORE INTO resource_versions VALUES (?,?,?,?,?)",
                 (rid, body["version"], entry.seq, body["content"], entry.time))
    facet_rows = [(res, "about", s.casefold()) for s in meta.get("about", [])]
    facet_rows += [(res, "level", lv) for lv in meta.get("educationalLevel", [])]
    conn.executemany("INSERT OR IGNORE INTO facets VALUES (?,?,?)", facet_rows)
    conn.executemany("INSERT OR IGNORE INTO lineage VALUES (?,?)",
                     [(rid, b) for b in meta.get("isBasedOn", [])])
    conn.execute("DELETE FROM fulfils WHERE res = ?", (rid,))
    conn.executemany("INSERT OR IGNORE INTO fulfils VALUES (?,?)",
                     [(rid, q) for q in meta.get("fulfils", [])])
    write_index(conn, res, entry.school_id, meta, files)


def write_index(conn: sqlite3.Connection, res: int, school_id: str, meta: dict[str, Any],
                files: list[dict[str, Any]]) -> None:
    """(Re)write resource ``res``'s full-text row, curriculum columns and text state from its
    metadata, file list and the file texts extracted so far (inside the caller's write
    transaction)."""
    cur = curriculum(meta)
    text = {
        "title": meta["title"], "description": meta.get("description", ""),
        "keywords": " ".join(meta.get("keywords", [])),
        "subjects": " ".join(meta.get("about", [])),
    }
    names = " ".join(f["path"].replace("/", " ") for f in files)
    creator = meta.get("creator", "") if isinstance(meta.get("creator"), str) else ""
    people = f"{creator} {names}"
    for part in ("unit", "lesson"):
        if isinstance(title := cur.get(part, {}).get("title"), str):
            text["keywords"] += " " + title
    wanted = [f["cid"] for f in files if has_text(f["path"])]
    texts: dict[str, str] = {}
    if wanted:
        rows = conn.execute(
            f"SELECT cid, text FROM file_texts WHERE cid IN ({','.join('?' * len(wanted))})",
            [cid_from_str(c) for c in wanted]).fetchall()
        texts = {cid_to_str(c): t for c, t in rows}
    body = " ".join(texts[c] for c in dict.fromkeys(wanted) if c in texts)[:BODY_LIMIT]
    state = 2 if all(c in texts for c in wanted) else 1
    conn.execute("DELETE FROM catalog_fts WHERE rowid = ?", (res,))
    conn.execute(
        "INSERT INTO catalog_fts(rowid, title, description, keywords, subjects, chars, facets,"
        " people, body) VALUES (?,?,?,?,?,?,?,?,?)",
        (res, *(cjk_bigrams(v) for v in text.values()),
         cjk_chars(" ".join(text.values()) + " " + people), _facet_tokens(school_id, meta),
         cjk_bigrams(people), cjk_bigrams(body)))
    conn.execute(
        "UPDATE resources SET grade = ?, volume = ?, edition = ?, unit_no = ?, lesson_no = ?,"
        " text_state = ? WHERE id = ?",
        (cur.get("grade"), cur.get("volume"), cur.get("edition"),
         cur.get("unit", {}).get("number"), cur.get("lesson", {}).get("number"), state, res))


def reindex(conn: sqlite3.Connection, res: int) -> None:
    """Rebuild one resource's index row from what the catalog holds (not retracted)."""
    row = conn.execute("SELECT school_id, meta, files, retracted FROM resources WHERE id = ?",
                       (res,)).fetchone()
    if row is None:
        return
    if row[3]:
        conn.execute("UPDATE resources SET text_state = 2 WHERE id = ?", (res,))
        return
    write_index(conn, res, row[0], json.loads(row[1]), json.loads(row[2]))


def search(conn: sqlite3.Connection, query: str | None = None, *, subject: list[str] = (),
           level: list[str] = (), language: str | None = None, rtype: str | None = None,
           school: str | None = None, license: str | None = None, grade: int | None = None,
           volume: str | None = None, edition: str | None = None, limit: int = 20,
           offset: int = 0, hide: Collection[str] = (), ai_assisted: bool = False
           ) -> list[dict[str, Any]]:
    """Resources matching every word of ``query`` (in titles, descriptions, keywords,
    subjects, creators, file names and the text inside files) and every filter. With a
    textbook filter (grade, volume, edition) the results come in unit, then lesson order.
    ``hide``: resource ids left out (hidden by a community's moderation, node/oversight.py);
    ``ai_assisted``: only resources drafted with the AI assistant."""
    text = fts_query(query) if query else None
    if query and text is None:
        return []  # only punctuation: nothing can match
    terms = [text] if text else []
    terms += [f'facets : "{facet_token("about", s)}"' for s in subject]
    terms += [f'facets : "{facet_token("level", lv)}"' for lv in level]
    if language:
        terms.append(f'facets : "{facet_token("lang", language)}"')
    if rtype:
        terms.append(f'facets : "{facet_token("type", rtype)}"')
    if license:
        terms.append(f'facets : "{facet_token("license", license)}"')
    if grade is not None:
        terms.append(f'facets : "{facet_token("grade", str(grade))}"')
    if volume:
        terms.append(f'facets : "{facet_token("volume", volume)}"')
    if edition and edition.strip():
        terms.append(f'facets : "{facet_token("edition", edition.strip())}"')
    textbook = grade is not None or bool(volume) or bool(edition and edition.strip())
    if ai_assisted:
        terms.append(f'facets : "{facet_token("made", "ai")}"')
    if school:
        ids = {school} | {sid for (sid,) in conn.execute(
            "SELECT school_id FROM feeds WHERE name = ?", (school,))}
        terms.append("(" + " OR ".join(f'facets : "{facet_token("school", i)}"'
                                       for i in sorted(ids)) + ")")
    hidden = ""
    if hide:
        hidden = (" AND r.resource_id NOT IN (" + ",".join("?" * len(hide)) + ")")
    cols = ("r.resource_id, r.school_id, f.name, r.version, r.title, r.language, r.type,"
            " r.license, r.content, r.meta, r.updated")
    by_lesson = ("r.unit_no IS NULL, r.unit_no, r.lesson_no IS NULL, r.lesson_no, "
                 if textbook else "")
    if terms:
        # Newest RANK_WINDOW matches in rowid order (no sort), then rank those by relevance
        # (only when there are words; filters alone list the newest first).
        order = by_lesson + ("m.score, m.id DESC" if text else "m.id DESC")
        sql = (f"SELECT {cols} FROM (SELECT rowid AS id, {_BM25} AS score FROM catalog_fts"
               f" WHERE catalog_fts MATCH ? ORDER BY rowid DESC LIMIT {RANK_WINDOW}) m"
               f" JOIN resources r ON r.id = m.id LEFT JOIN feeds f ON f.feed = r.feed"
               f" WHERE 1{hidden} ORDER BY {order} LIMIT ? OFFSET ?")
        args: tuple[Any, ...] = (" AND ".join(terms), *sorted(hide), limit, offset)
    else:
        sql = (f"SELECT {cols} FROM resources r LEFT JOIN feeds f ON f.feed = r.feed"
               f" WHERE r.retracted = 0{hidden} ORDER BY r.id DESC LIMIT ? OFFSET ?")
        args = (*sorted(hide), limit, offset)
    out = []
    rows = conn.execute(sql, args).fetchall()
    for rid, sid, name, ver, title, lang, rtype_, lic, content, meta, updated in rows:
        m = json.loads(meta)
        out.append({
            "resource_id": rid, "school_id": sid, "school": name, "version": ver,
            "title": title, "language": lang, "type": rtype_, "license": lic,
            "subjects": m.get("about", []), "levels": m.get("educationalLevel", []),
            "content_cid": cid_to_str(content), "updated": updated,
            "creator": m.get("creator"), "time_required": m.get("timeRequired"),
            **curriculum(m),
        })
    return out


def facet_lists(conn: sqlite3.Connection) -> dict[str, Any]:
    """What the search form offers: the most used subjects, the languages, the schools."""
    return {
        "subjects": [v for (v,) in conn.execute(
            "SELECT value FROM facets WHERE facet = 'about' GROUP BY value "
            "ORDER BY count(*) DESC LIMIT 60")],
        "languages": [v for (v,) in conn.execute(
            "SELECT DISTINCT language FROM resources LIMIT 30")],
        "editions": list(dict.fromkeys([*(v for (v,) in conn.execute(
            "SELECT edition FROM resources WHERE edition IS NOT NULL GROUP BY edition "
            "ORDER BY count(*) DESC LIMIT 30")), *vocab.COMMON_EDITIONS])),
        "schools": [{"id": i, "name": n} for i, n in conn.execute(
            "SELECT school_id, name FROM feeds WHERE flagged IS NULL ORDER BY name "
            "LIMIT 200")],
    }


def school_names(conn: sqlite3.Connection, school_ids: list[str]) -> dict[str, str]:
    """{school id: name} of the given schools whose profile we hold."""
    if not school_ids:
        return {}
    return dict(conn.execute(
        f"SELECT school_id, name FROM feeds WHERE school_id IN "
        f"({','.join('?' * len(school_ids))})", school_ids).fetchall())


def files_size(files: str) -> int:
    """Bytes of a resource's files (the catalog's JSON file list)."""
    return sum(f["size"] for f in json.loads(files))
