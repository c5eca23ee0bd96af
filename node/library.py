"""Library operations on a home: publish, update, retract, show, get, verify.

Order of work in publish/update (specs/records.md §6): validate metadata and paths, load the
key, write and sync every block, and only then — in one SQLite transaction — sign the entry,
append it and index it.  A crash at any point leaves either the old state or the new one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto import CID_DAG_PB, BadCID, cid_codec, cid_from_str, cid_to_str
from protocol import dagpb, records, unixfs, vocab
from protocol.errors import LocalProtocolError, ProtocolError
from protocol.paths import BadPath, normalise
from protocol.records import FeedEntry

from . import db, feeds, teachers
from .errors import CorruptBlock, NodeError, NotFound, StoreError
from . import gc
from .gc import discard_unpinned
from .home import Home, now_ms

READ_SIZE = unixfs.CHUNK_SIZE


class NothingChanged(NodeError):
    """An update that would repeat the current version (``update(require_change=True)``)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str        # canonical path inside the resource
    disk: Path
    size: int


def collect_files(paths: list[Path]) -> list[SourceFile]:
    """Resolve CLI paths into resource files (specs/content.md §5).

    A file argument contributes itself under its own name; a directory argument contributes
    its contents with their tree (hidden entries skipped, as ipfs-car does).  Symbolic links are
    refused, so a folder can never publish files from outside itself.
    """
    if not paths:
        raise NodeError("give at least one file or folder to publish")
    out: dict[str, SourceFile] = {}

    def add(rel: str, disk: Path, st: os.stat_result) -> None:
        try:
            canon = normalise(rel)
        except BadPath as exc:
            raise NodeError(f"{disk}: {exc}") from None
        if canon in out:
            raise NodeError(f"two files would both be called {canon!r} in the resource")
        out[canon] = SourceFile(canon, disk, st.st_size)

    for p in paths:
        p = Path(p)
        try:
            st = p.lstat()
        except FileNotFoundError:
            raise NodeError(f"{p}: no such file or folder") from None
        except OSError as exc:
            raise NodeError(f"{p}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise NodeError(f"{p} is a symbolic link; publish the file it points to instead")
        if stat.S_ISREG(st.st_mode):
            _check_readable(p)
            add(p.resolve().name, p, st)
        elif stat.S_ISDIR(st.st_mode):
            _walk(p, p, add)
        else:
            raise NodeError(f"{p} is not a regular file or folder")
    if not out:
        raise NodeError("nothing to publish: the folders hold no (non-hidden) files")
    return [out[k] for k in sorted(out, key=lambda s: s.encode("utf-8"))]


def _check_readable(p: Path) -> None:
    if not os.access(p, os.R_OK):
        raise NodeError(f"{p}: permission denied")


def _walk(root: Path, d: Path, add: Any) -> None:
    try:
        children = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as exc:
        raise NodeError(f"{d}: {exc.strerror}") from None
    for e in children:
        if e.name.startswith("."):
            continue
        p = Path(e.path)
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            raise NodeError(f"{p} is a symbolic link; schoolmesh publishes regular files only")
        if stat.S_ISDIR(st.st_mode):
            _walk(root, p, add)
        elif stat.S_ISREG(st.st_mode):
            _check_readable(p)
            add(p.relative_to(root).as_posix(), p, st)


def _store_files(home: Home, files: list[SourceFile], progress: Any, created: list[bytes],
                 keep: dict[str, unixfs.DagLink] | None = None
                 ) -> tuple[bytes, list[dict[str, Any]]]:
    """Chunk, hash and store every file and the directory tree; return root and file list.
    ``keep``: files already in the store (``{path: file root}``, see :func:`file_links`) put
    in the tree as they are, without reading them again; a file of ``files`` with the same
    path replaces one.  ``created`` receives the blocks added (removed again if the entry is
    not stored)."""
    links: dict[str, unixfs.DagLink] = dict(keep or {})
    with home.blocks.batch(created) as batch:
        for f in files:
            fb = unixfs.FileBuilder()
            size = 0
            try:
                with open(f.disk, "rb") as fh:
                    while chunk := fh.read(READ_SIZE):
                        size += len(chunk)
                        for b in fb.feed(chunk):
                            batch.put_trusted(b.cid, b.data)
                        if progress:
                            progress(len(chunk))
            except OSError as exc:
                raise NodeError(f"{f.disk}: {exc.strerror}") from None
            root, rest = fb.finish()
            for b in rest:
                batch.put_trusted(b.cid, b.data)
            links[f.path] = root
        try:
            dir_root, dir_blocks = unixfs.directory_dag(links)
        except LocalProtocolError as exc:
            raise NodeError(str(exc)) from None
        for b in dir_blocks:
            batch.put_trusted(b.cid, b.data)
    file_list = [{"path": p, "cid": link.cid, "size": link.content_size}
                 for p, link in sorted(links.items(), key=lambda kv: kv[0].encode("utf-8"))]
    return dir_root.cid, file_list


def _append_own(home: Home, kind: str, make_body: Callable[[sqlite3.Connection], dict[str, Any]],
                pin_ref: str | None = None) -> tuple[FeedEntry, dict[str, Any]]:
    """Sign and append one entry of ours. ``make_body`` runs inside the write transaction, so
    anything it reads (the head, a resource's current version) cannot change under it."""
    from .backup import require_known_head
    key = home.key()
    with db.write(home.conn) as conn:
        require_known_head(conn)   # a restored school learns its head first: never fork
        body = make_body(conn)
        seq, prev = feeds.head(conn, key.public.raw)
        entry = records.sign_entry(key, seq=seq + 1, prev=prev, time=now_ms(), kind=kind,
                                   body=body)
        feeds.append(conn, entry)
        if (signature := teachers.signature_entry(conn, key, entry)) is not None:
            feeds.append(conn, signature)   # the signed-in teacher's (specs/teachers.md §5)
        ref = pin_ref or (records.resource_id_of(entry) if kind == records.KIND_PUBLISH else None)
        if ref and "content" in body:
            db.pin(conn, body["content"], "own", ref, entry.time)
    return entry, body


def append_entry(home: Home, kind: str, body: dict[str, Any]) -> FeedEntry:
    """Sign ``body`` as this school's next entry, append and index it (one transaction)."""
    return _append_own(home, kind, lambda conn: body)[0]


def _result(rid: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"resource_id": rid, "version": body["version"],
            "content_cid": cid_to_str(body["content"]),
            "files": [{"path": f["path"], "cid": cid_to_str(f["cid"]), "size": f["size"]}
                      for f in body["files"]]}


NO_DERIVATIVES = ("CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "LicenseRef-All-Rights-Reserved")


def original_licences(conn: sqlite3.Connection, meta: dict[str, Any]
                      ) -> tuple[dict[str, Any], list[str]]:
    """An adaptation's meta with ``basedOnLicense`` filled in from the catalog (when every
    original is known here), and a warning for each original whose licence forbids
    derivatives (specs/records.md §5.3)."""
    based = meta.get("isBasedOn") or []
    if not based:
        return meta, []
    rows = dict(conn.execute(
        f"SELECT resource_id, license FROM resources WHERE resource_id IN "
        f"({','.join('?' * len(based))})", based).fetchall())
    warnings = [f"{rid} is licensed {rows[rid]}, which does not allow adaptations: ask its "
                f"school for permission before sharing yours" for rid in based
                if rows.get(rid) in NO_DERIVATIVES]
    if "basedOnLicense" not in meta and all(rid in rows for rid in based):
        meta = dict(meta, basedOnLicense=[rows[rid] for rid in based])
    return meta, warnings


def file_links(home: Home, rid: str) -> dict[str, unixfs.DagLink]:
    """``{path: file root}`` of a resource's current version, read from its directory nodes
    (their links carry each file's DAG size), for :func:`publish` and :func:`update` to keep
    files as they are: same blocks, nothing read or hashed again."""
    row = _resource_row(home.conn, rid)
    want = {f["path"]: (cid_from_str(f["cid"]), f["size"]) for f in json.loads(row["files"])}
    out: dict[str, unixfs.DagLink] = {}
    stack: list[tuple[str, bytes]] = [("", row["content"])]
    while stack:
        prefix, cid = stack.pop()
        for link in dagpb.decode_node(home.blocks.get(cid)).links:
            path = prefix + link.name
            if path in want and link.cid == want[path][0]:
                out[path] = unixfs.DagLink(link.cid, want[path][1], link.tsize)
            elif cid_codec(link.cid) == CID_DAG_PB and \
                    dagpb.decode_node(home.blocks.get(link.cid)).unixfs.type == dagpb.DIRECTORY:
                stack.append((path + "/", link.cid))
    if set(out) != set(want):
        raise NodeError(f"{rid}: its folder does not list the resource's files")
    return out


def publish(home: Home, paths: list[Path], meta: dict[str, Any], progress: Any = None,
            keep: dict[str, unixfs.DagLink] | None = None) -> dict[str, Any]:
    """Publish the files under ``paths`` (and ``keep``: files already stored, e.g. an
    adaptation's files taken from the original as they are)."""
    meta = {"inLanguage": db.get_setting(home.conn, "language", "zh-CN"),
            "license": vocab.DEFAULT_LICENSE, **meta}
    meta, warnings = original_licences(home.conn, meta)
    _check_meta(meta)
    for w in warnings:
        home.warn(w)
    home.key()  # fail on a missing passphrase before doing any work
    from .backup import require_known_head
    require_known_head(home.conn)
    files = collect_files(paths) if paths or not keep else []
    created: list[bytes] = []
    since = now_ms()
    with home.blocks.writing() as lock:   # gc waits: these blocks have no pin yet
        try:
            content, file_list = _store_files(home, files, progress, created, keep)
            body = {"version": 1, "content": content, "files": file_list, "meta": meta}
            entry, _ = _append_own(home, records.KIND_PUBLISH, lambda conn: body)
        except BaseException:
            discard_unpinned(home, lock, created, since)   # e.g. a full disk: no pieces
            raise
    return _result(records.resource_id_of(entry), body)


def _merge_meta(row: dict[str, Any], changes: dict[str, Any], conn: sqlite3.Connection
                | None = None) -> dict[str, Any]:
    meta = json.loads(row["meta"])
    for k, v in changes.items():
        if v is None or v == []:
            meta.pop(k, None)
        else:
            meta[k] = v
    if "isBasedOn" in changes:
        meta.pop("basedOnLicense", None)   # recorded again for the new originals
        if conn is not None:
            meta = original_licences(conn, meta)[0]
    _check_meta(meta)
    return meta


def update(home: Home, rid: str, paths: list[Path], changes: dict[str, Any],
           progress: Any = None, keep: dict[str, unixfs.DagLink] | None = None,
           require_change: bool = False) -> dict[str, Any]:
    """New version of one of our own resources: new files if given, metadata merged.

    With ``keep`` (a subset of :func:`file_links` of ``rid``), the new file set is ``keep``
    plus ``paths`` (a file of ``paths`` replaces the kept one of the same path): files kept
    keep their blocks; without it, ``paths`` (if any) replace all files."""
    _merge_meta(_own_resource(home.conn, home.feed, rid), changes)  # fail fast, before I/O
    home.key()
    new_files = None
    created: list[bytes] = []
    since = now_ms()
    with home.blocks.writing() as lock:   # gc waits while our new blocks have no pin
        try:
            if keep is not None:
                new_files = _store_files(home, collect_files(paths) if paths else [],
                                         progress, created, keep)
            elif paths:
                new_files = _store_files(home, collect_files(paths), progress, created)
            return _update_entry(home, rid, changes, new_files, require_change)
        except BaseException:
            discard_unpinned(home, lock, created, since)   # e.g. a full disk: no pieces
            raise


def _update_entry(home: Home, rid: str, changes: dict[str, Any], new_files: Any,
                  require_change: bool = False) -> dict[str, Any]:
    def make_body(conn: sqlite3.Connection) -> dict[str, Any]:
        row = _own_resource(conn, home.feed, rid)  # the current version, under the lock
        if new_files is not None:
            content, file_list = new_files
        else:
            content = row["content"]
            file_list = [{"path": f["path"], "cid": cid_from_str(f["cid"]), "size": f["size"]}
                         for f in json.loads(row["files"])]
        meta = _merge_meta(row, changes, conn)
        if require_change and content == row["content"] and meta == json.loads(row["meta"]):
            raise NothingChanged(f"nothing to save: the files and the details are those of "
                                 f"version {row['version']}")
        return {"resource": rid, "version": row["version"] + 1, "content": content,
                "files": file_list, "meta": meta}

    _, body = _append_own(home, records.KIND_UPDATE, make_body, pin_ref=rid)
    if not home.conn.execute("SELECT 1 FROM communities WHERE relation = 'member'").fetchone():
        # no seed to wait for: the old version's blocks need no pin of ours any more
        with db.write(home.conn) as conn:
            conn.execute("DELETE FROM pins WHERE reason = 'own' AND ref = ? AND cid != ?",
                         (rid, body["content"]))
    return _result(rid, body)


def retract(home: Home, rid: str, reason: str | None) -> dict[str, Any]:
    _own_resource(home.conn, home.feed, rid)
    body: dict[str, Any] = {"resource": rid}
    if reason:
        body["reason"] = reason

    def make_body(conn: sqlite3.Connection) -> dict[str, Any]:
        _own_resource(conn, home.feed, rid)
        return body
    try:
        entry, _ = _append_own(home, records.KIND_RETRACT, make_body)
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None
    return {"resource_id": rid, "retracted": True, "seq": entry.seq}


def _check_meta(meta: dict[str, Any]) -> None:
    try:
        records.validate_meta(meta)
    except LocalProtocolError as exc:
        raise NodeError(str(exc)) from None


def _resource_row(conn: sqlite3.Connection, rid: str) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT r.*, f.name AS school FROM resources r LEFT JOIN feeds f ON f.feed = r.feed "
        "WHERE r.resource_id = ?", (rid,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no resource {rid!r} in this library")
    return dict(zip([d[0] for d in cur.description], row))


def _own_resource(conn: sqlite3.Connection, feed: bytes, rid: str) -> dict[str, Any]:
    row = _resource_row(conn, rid)
    if row["feed"] != feed:
        raise NodeError(f"{rid} was published by another school; adapt it with "
                        f"'publish --based-on {rid}' instead")
    if row["retracted"]:
        raise NodeError(f"{rid} has been retracted")
    return row


def show(home: Home, rid: str) -> dict[str, Any]:
    row = _resource_row(home.conn, rid)
    versions = []
    sig_ok = True
    for version, seq, content, t in home.conn.execute(
            "SELECT version, seq, content, time FROM resource_versions WHERE resource_id = ? "
            "ORDER BY version", (rid,)):
        raw = home.conn.execute("SELECT raw FROM entries WHERE feed = ? AND seq = ?",
                                (row["feed"], seq)).fetchone()
        try:
            records.decode_entry(raw[0])
            status = "valid"
        except ProtocolError as exc:
            status, sig_ok = f"INVALID: {exc}", False
        versions.append({"version": version, "seq": seq, "content_cid": cid_to_str(content),
                         "time": t, "signature": status})
    meta = json.loads(row["meta"])
    based_on = [_lineage_item(home, b) for b in meta.get("isBasedOn", [])]
    adaptations = [_lineage_item(home, r) for (r,) in home.conn.execute(
        "SELECT res FROM lineage WHERE based_on = ? ORDER BY res", (rid,))]
    return {
        "resource_id": rid, "school_id": row["school_id"], "school": row["school"],
        "version": row["version"], "content_cid": cid_to_str(row["content"]),
        "meta": meta, "files": json.loads(row["files"]), "versions": versions,
        "retracted": bool(row["retracted"]), "retract_reason": row["retract_reason"],
        "lineage": {"based_on": based_on, "adaptations": adaptations},
        "signature": "valid" if sig_ok else "INVALID",
        "local": all(home.blocks.has(cid_from_str(f["cid"]))
                     for f in json.loads(row["files"])),
    }


def teacher_resources(home: Home, teacher: str, limit: int = 500) -> list[dict[str, Any]]:
    """Resources this school published with ``teacher`` as creator (its web sign-in name),
    newest change first; withdrawn ones too (marked)."""
    rows = home.conn.execute(
        "SELECT resource_id, title, version, updated, retracted, files FROM resources "
        "WHERE feed = ? AND json_extract(meta, '$.creator') = ? ORDER BY updated DESC LIMIT ?",
        (home.feed, teacher, limit)).fetchall()
    return [{"resource_id": r, "title": t, "version": v, "updated": u,
             "retracted": bool(x), "files": len(json.loads(f))} for r, t, v, u, x, f in rows]


def _lineage_item(home: Home, rid: str) -> dict[str, Any]:
    row = home.conn.execute("SELECT title, school_id FROM resources WHERE resource_id = ?",
                            (rid,)).fetchone()
    return {"resource_id": rid, "title": row[0] if row else None,
            "school_id": row[1] if row else None, "known": row is not None}


def feed_entries(home: Home, school_id: str | None) -> list[dict[str, Any]]:
    row = home.conn.execute("SELECT feed FROM feeds WHERE school_id = ?",
                            (school_id or home.school_id,)).fetchone()
    if row is None:
        raise NotFound(f"no feed for school {school_id!r} in this library")
    try:
        return [records.entry_to_json(e) for e in feeds.entries(home.conn, row[0])]
    except ProtocolError as exc:
        raise NodeError(f"the stored feed is damaged: {exc} (run 'schoolmesh verify')") from None


def resolve_root(home: Home, target: str) -> tuple[bytes, str | None]:
    """RESOURCE_ID or CID → (content root CID, resource id or None)."""
    if records.is_resource_id(target):
        row = _resource_row(home.conn, target)
        return row["content"], target
    try:
        return cid_from_str(target), None
    except BadCID:
        raise NodeError(f"{target!r} is neither a resource id (r...) nor a CID") from None


def first_missing(home: Home, target: str) -> bytes | None:
    """The first block of the resource/CID missing from the local store, or None."""
    root, _ = resolve_root(home, target)
    missing: list[bytes] = []

    def get_block(cid: bytes) -> bytes:
        try:
            return home.blocks.get(cid)
        except NotFound:
            missing.append(cid)
            raise
    try:
        for cid in unixfs.iter_dag_cids(root, get_block):
            if not home.blocks.has(cid):
                return cid
    except NotFound:
        return missing[0]
    except (ProtocolError, StoreError):
        return None  # present but damaged: get reports it
    return None


def get(home: Home, target: str, out: Path, *, overwrite: bool = False,
        safe_names: bool = False, progress: Any = None) -> dict[str, Any]:
    """Write a resource's (or CID's) files into ``out`` from the local store.

    Names that FAT/exFAT/NTFS refuse or that collide there are refused before anything is
    written, or with ``safe_names`` written renamed (``renamed`` in the result)."""
    from .extract import write_files
    root, rid = resolve_root(home, target)
    if not home.blocks.has(root):
        raise NotFound(f"{target} is not in the local store")
    getb = home.blocks.get
    try:
        if cid_codec(root) == CID_DAG_PB and \
                unixfs.dagpb.decode_node(getb(root)).unixfs.type == unixfs.dagpb.DIRECTORY:
            files = unixfs.directory_files(root, getb)
        else:
            files = [(cid_to_str(root), root)]
    except ProtocolError as exc:
        raise NodeError(f"cannot read {target}: {exc}") from None
    written, renamed = write_files(home, files, Path(out), overwrite=overwrite,
                                   safe_names=safe_names, progress=progress)
    from .gc import touch
    touch(home.conn, root)   # the newest in the cache
    return {"resource_id": rid, "content_cid": cid_to_str(root), "output": str(out),
            "files": written, "renamed": renamed}


def verify(home: Home) -> dict[str, Any]:
    """Re-check every stored entry (signature, chain, head) and every kept DAG: pinned ones
    and those of unfinished transfers.  Damage (a block that does not match its CID, a broken
    signature or chain) is a problem; a block that simply is not here yet makes its DAG
    *incomplete* (not a problem: it can be fetched).  ``repair`` lists the roots to fetch again
    and ``corrupt`` the damaged blocks (``verify --repair``)."""
    problems: list[str] = []
    n_entries = 0
    for feed, sid, head_seq, head_hash in home.conn.execute(
            "SELECT feed, school_id, head_seq, head_hash FROM feeds").fetchall():
        prev = None
        for seq, raw in home.conn.execute(
                "SELECT seq, raw FROM entries WHERE feed = ? ORDER BY seq", (feed,)):
            n_entries += 1
            try:
                e = records.decode_entry(raw)
                if e.feed != feed or e.seq != seq:
                    raise ProtocolError("entry stored under the wrong feed or seq")
                records.check_chain(prev, e)
                prev = e
            except ProtocolError as exc:
                problems.append(f"feed {sid} entry {seq}: {exc}")
                prev = None
                break
        else:
            if (prev.seq if prev else 0) != head_seq or (prev.hash if prev else None) != head_hash:
                problems.append(f"feed {sid}: recorded head does not match the entries")
    checked: set[bytes] = set()
    corrupt: set[bytes] = set()
    incomplete: list[dict[str, Any]] = []
    repair: dict[bytes, str] = {}
    roots = [(cid, f"{reason} pin {ref}") for cid, reason, ref in home.conn.execute(
        "SELECT cid, reason, ref FROM pins ORDER BY cid, reason, ref").fetchall()]
    roots += [(root, f"transfer {tid} ({target})") for tid, root, target in home.conn.execute(
        "SELECT id, root, target FROM transfers WHERE state NOT IN ('done', 'cancelled') "
        "ORDER BY id").fetchall()]
    for cid, label in roots:
        walk = _verify_dag(home, cid, label, checked, corrupt)
        problems += walk.problems
        if walk.problems or walk.missing:
            repair.setdefault(cid, label)
        if walk.missing:
            incomplete.append({"root": cid_to_str(cid), "what": label, "missing": walk.missing})
    stored = sum(1 for _ in home.blocks)
    return {"ok": not problems, "entries_checked": n_entries, "blocks_checked": len(checked),
            "blocks_stored": stored, "unreferenced_blocks": max(0, stored - len(checked)),
            "problems": problems, "incomplete": incomplete,
            "corrupt": sorted(cid_to_str(c) for c in corrupt),
            "repair": [cid_to_str(c) for c in repair]}


@dataclass
class _Walk:
    problems: list[str]
    missing: int = 0


def _verify_dag(home: Home, root: bytes, label: str, checked: set[bytes],
                corrupt: set[bytes]) -> _Walk:
    """Re-hash every block of a DAG; a damaged or missing block does not stop the walk (what
    lies under a missing node cannot be known: the node counts as one missing block)."""
    walk = _Walk(problems=[])
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in checked:
            if cid in corrupt:
                walk.problems.append(f"{label}: block {cid_to_str(cid)} does not match its CID")
            continue
        checked.add(cid)
        try:
            data = home.blocks.get(cid)
        except CorruptBlock:
            corrupt.add(cid)
            walk.problems.append(f"{label}: block {cid_to_str(cid)} does not match its CID")
            continue
        except NotFound:
            checked.discard(cid)   # another DAG sharing it is incomplete too
            walk.missing += 1
            continue
        except StoreError as exc:
            walk.problems.append(f"{label}: {exc}")
            continue
        if cid_codec(cid) == CID_DAG_PB:
            try:
                stack.extend(link.cid for link in unixfs.dagpb.decode_node(data).links)
            except ProtocolError as exc:
                corrupt.add(cid)
                walk.problems.append(f"{label}: node {cid_to_str(cid)} is malformed: {exc}")
    return walk


def delete_corrupt(home: Home, cids: list[str]) -> int:
    """Remove blocks that (still) do not match their CID, so they can be fetched again."""
    n = 0
    for s in cids:
        cid = cid_from_str(s)
        try:
            home.blocks.get(cid)
        except CorruptBlock:
            home.blocks.delete(cid)
            n += 1
        except (NotFound, StoreError):
            pass
    return n


# -- pins a teacher sets ----------------------------------------------------------------------

def _pin_target(home: Home, target: str) -> tuple[bytes, str]:
    try:
        root, rid = resolve_root(home, target)
    except BadCID:
        raise NodeError(f"{target!r} is neither a resource id nor a CID") from None
    return root, rid or cid_to_str(root)


def pin(home: Home, target: str) -> dict[str, Any]:
    """Keep a resource (or CID) for good: never evicted from the cache, never collected."""
    root, ref = _pin_target(home, target)
    if first_missing(home, cid_to_str(root)) is not None:
        raise NodeError(f"{target} is not (completely) here; fetch it first "
                        f"('schoolmesh get {target} -o DIR')")
    with db.write(home.conn) as conn:
        db.pin(conn, root, gc.TEACHER, ref, now_ms())
        conn.execute("DELETE FROM evicted WHERE cid = ?", (root,))
    return {"pinned": ref, "content_cid": cid_to_str(root), "reason": gc.TEACHER}


def unpin(home: Home, target: str) -> dict[str, Any]:
    root, ref = _pin_target(home, target)
    with db.write(home.conn) as conn:
        n = conn.execute("DELETE FROM pins WHERE cid = ? AND reason = ?",
                         (root, gc.TEACHER)).rowcount
    if not n:
        raise NodeError(f"{target} is not pinned by hand ('schoolmesh pins' lists what is kept "
                        "and why)")
    return {"unpinned": ref, "content_cid": cid_to_str(root)}
