"""Importing CAR bundles (specs/bundles.md §7): verify everything, keep only what is valid
and reachable from a root the import accepted.

Two passes over the files, so nothing is written before the whole bundle has been checked
and memory never holds more than one block:

1. **scan** (:func:`plan_import`): read each header; walk the sections, reading only dag-pb
   nodes and the signed index (raw leaves are skipped with a seek), noting where every block
   lies in a scratch SQLite database (a private temporary file).  Then read and verify the
   index pages and feed entries, check every resource's folder (names, signed file list),
   work out which blocks are reachable from the roots that can be accepted, and check the
   free disk space.  Whole-file problems (not a CAR, wrong version, no valid index, no space)
   raise here, before anything is stored.
2. **import** (:func:`run_import`): append the entries of each feed in ``seq`` order through
   ``feeds.admit`` (any feed the operator brings, but never an entry dated after its feed's
   removal cutoff; a gap, a broken chain or an equivocation stops that feed and is reported), store the reachable blocks that are missing (each verified against its CID by
   the block store), then pin the accepted roots.

Problems with single items (a block that does not match its CID, an entry with a bad
signature, a truncated file) are collected in ``invalid``; everything else is imported.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from crypto import (
    CID_DAG_PB, CID_RAW, BadCID, PublicKey, cid_codec, cid_to_str, verify_block,
)
from protocol import bundle as brecords
from protocol import car, dagpb, records, unixfs
from protocol.errors import ProtocolError, RemoteProtocolError

from . import backup, community, db, feeds
from .gc import discard_unpinned
from .bundle import BundleError, Progress, check_space, walk_dag
from .errors import NotFound, StoreError
from .home import Home, now_ms

MAX_PROBLEMS = 200          # problems listed in the report; the rest are counted
# The scan reads in small steps: after a skipped leaf it seeks, and only needs the next
# section's head (and small blocks); reading 1 MiB there would read the whole file.
SCAN_READ_SIZE = 64 * 1024
_SCRATCH_SCHEMA = """
CREATE TABLE toc (cid BLOB NOT NULL, file INTEGER NOT NULL, offset INTEGER NOT NULL,
                  length INTEGER NOT NULL, codec INTEGER NOT NULL, meta INTEGER NOT NULL DEFAULT 0,
                  bad INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (cid, file, offset)) WITHOUT ROWID;
CREATE INDEX toc_order ON toc(file, offset);
CREATE TABLE nodes (cid BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE entries (hash BLOB PRIMARY KEY, feed BLOB NOT NULL, seq INTEGER NOT NULL,
                      rid TEXT, version INTEGER, raw BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX entries_order ON entries(feed, seq);
CREATE INDEX entries_res ON entries(rid, version);
CREATE TABLE keep (cid BLOB PRIMARY KEY, present INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE todo (cid BLOB NOT NULL, file INTEGER NOT NULL, offset INTEGER NOT NULL,
                   length INTEGER NOT NULL);
"""


class BadBundle(BundleError):
    """A file that cannot be imported at all (not a CAR, wrong version, no valid index)."""


@dataclass
class _Candidate:
    root: bytes
    reason: str                 # pin reason: 'bundle' or 'user'
    ref: str                    # pin ref: the resource id, or 'import'
    version: int | None = None  # resource version (bundle mode)


@dataclass
class ImportPlan:
    home: Home
    files: list[Path]
    content_only: bool
    scratch: sqlite3.Connection
    problems: list[str] = field(default_factory=list)
    more_problems: int = 0
    indexes: dict[bytes, brecords.BundleIndex] = field(default_factory=dict)
    header_roots: list[bytes] = field(default_factory=list)
    candidates: list[_Candidate] = field(default_factory=list)
    poisoned: dict[bytes, str] = field(default_factory=dict)   # entry hash -> why
    bytes_needed: int = 0
    blocks_needed: int = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more_problems += 1

    def close(self) -> None:
        self.scratch.close()

    def __enter__(self) -> ImportPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _codec(cid: bytes) -> int | None:
    try:
        return cid_codec(cid)
    except BadCID:
        return None


# -- pass 1: scan ----------------------------------------------------------------------------

def _scan(plan: ImportPlan, file_no: int, path: Path, progress: Progress) -> None:
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise BadBundle(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        _scan_file(plan, file_no, path, fh, size, progress)
        if progress:  # what a stop at a problem left unread
            progress(size - min(fh.tell(), size))


def _scan_file(plan: ImportPlan, file_no: int, path: Path, fh: BinaryIO, size: int,
               progress: Progress) -> None:
    reader = car.CarReader()
    done = 0
    sc = plan.scratch
    index_cid = None
    unsupported, example = 0, b""

    def want(cid: bytes, length: int) -> bool:
        c = _codec(cid)
        return c == CID_DAG_PB or (c == CID_RAW and cid == index_cid)

    while True:
        try:
            ev = reader.next_event(want if reader.header else None)
        except RemoteProtocolError as exc:
            if reader.header is None:
                raise BadBundle(f"{path} is not a readable CARv1 file: {exc}") from None
            plan.problem(f"{path}: {exc}; the rest of the file was not read")
            break
        if ev is car.NEED_DATA:
            reader.receive_data(fh.read(SCAN_READ_SIZE))
            if progress:
                progress(min(fh.tell(), size) - done)
                done = min(fh.tell(), size)
            continue
        if ev is car.END:
            break
        if isinstance(ev, car.Header):
            index_cid = _check_header(plan, path, ev.roots)
            continue
        if not isinstance(ev, car.Section):
            raise AssertionError(f"unexpected CAR event {ev!r}")
        if ev.data is None:
            fh.seek(reader.skip_input(), os.SEEK_CUR)
            if progress:
                progress(min(fh.tell(), size) - done)
                done = min(fh.tell(), size)
            if reader.offset > size:
                plan.problem(f"{path}: truncated CAR: the block at byte {ev.offset} is cut "
                             "short; the rest of the file was not read")
                break
        codec = _codec(ev.cid)
        if codec is None:
            unsupported, example = unsupported + 1, example or ev.cid
            continue
        sc.execute("INSERT OR IGNORE INTO toc (cid, file, offset, length, codec) "
                   "VALUES (?,?,?,?,?)", (ev.cid, file_no, ev.offset, ev.length, codec))
        if ev.data is None or ev.cid in plan.indexes or sc.execute(
                "SELECT 1 FROM nodes WHERE cid = ?", (ev.cid,)).fetchone():
            continue  # skipped, or a copy already read (every part repeats the index and nodes)
        try:
            verify_block(ev.cid, ev.data)
        except BadCID:
            _bad_copy(plan, ev.cid, file_no, ev.offset)
            continue
        if ev.cid == index_cid:
            _read_index(plan, path, ev.data)
        else:
            sc.execute("INSERT OR IGNORE INTO nodes VALUES (?, ?)", (ev.cid, ev.data))
    if unsupported:
        plan.problem(f"{path}: {unsupported} block(s) with unsupported CIDs (only CIDv1 "
                     f"raw/dag-pb with sha2-256 are accepted), e.g. binary CID {example.hex()}")
    if index_cid is not None and index_cid not in plan.indexes:
        raise BadBundle(f"{path}: the bundle's signed index is missing or damaged")


def _check_header(plan: ImportPlan, path: Path, roots: tuple[bytes, ...]) -> bytes | None:
    if plan.content_only:
        plan.header_roots += [r for r in roots if r not in plan.header_roots]
        return None
    if len(roots) != 2 or _codec(roots[0]) != CID_DAG_PB or _codec(roots[1]) != CID_RAW:
        raise BadBundle(f"{path} is not a schoolmesh bundle (its roots are not a library folder "
                        "and a signed index); to import plain IPFS content use --content-only")
    return roots[1]


def _read_index(plan: ImportPlan, path: Path, data: bytes) -> None:
    try:
        index = brecords.decode_index(data)
    except ProtocolError as exc:
        raise BadBundle(f"{path}: the bundle index is not valid: {exc}") from None
    plan.indexes[index.cid] = index
    plan.scratch.execute("UPDATE toc SET meta = 1 WHERE cid = ?", (index.cid,))


def _read_block(plan: ImportPlan, handles: list[BinaryIO], cid: bytes) -> bytes | None:
    """A verified copy of a block from the bundle files (the first good one), or None."""
    for file_no, offset, length in plan.scratch.execute(
            "SELECT file, offset, length FROM toc WHERE cid = ? AND bad = 0 "
            "ORDER BY file, offset", (cid,)).fetchall():
        fh = handles[file_no]
        fh.seek(offset)
        data = fh.read(length)
        try:
            verify_block(cid, data)
            return data
        except BadCID:
            _bad_copy(plan, cid, file_no, offset)
    return None


def _bad_copy(plan: ImportPlan, cid: bytes, file_no: int, offset: int) -> None:
    plan.problem(f"{plan.files[file_no]}: block {cid_to_str(cid)} at byte {offset} does not "
                 "match its CID")
    plan.scratch.execute("UPDATE toc SET bad = 1 WHERE cid = ? AND file = ? AND offset = ?",
                         (cid, file_no, offset))


# -- after the scan: entries, resources, content checks --------------------------------------

def _stage_entries(plan: ImportPlan, handles: list[BinaryIO]) -> list[brecords.ResourceRef]:
    sc = plan.scratch
    refs: dict[tuple[str, int], brecords.ResourceRef] = {}
    for index in plan.indexes.values():
        ranges = {r.feed: r for r in index.feeds}
        for page_cid in index.pages:
            sc.execute("UPDATE toc SET meta = 1 WHERE cid = ?", (page_cid,))
            data = _read_block(plan, handles, page_cid)
            if data is None:
                plan.problem(f"index page {cid_to_str(page_cid)} is missing from the bundle; "
                             "the resources and entries it lists were not imported")
                continue
            try:
                page = brecords.decode_page(data)
            except ProtocolError as exc:
                plan.problem(f"index page {cid_to_str(page_cid)}: {exc}")
                continue
            for ref in page.resources:
                refs.setdefault((ref.id, ref.version), ref)
            for h in page.entries:
                _stage_entry(plan, handles, h, ranges)
    return list(refs.values())


def _stage_entry(plan: ImportPlan, handles: list[BinaryIO], h: bytes,
                 ranges: dict[bytes, brecords.FeedRange]) -> None:
    sc = plan.scratch
    if sc.execute("SELECT 1 FROM entries WHERE hash = ?", (h,)).fetchone():
        return
    cid = brecords.entry_cid(h)
    sc.execute("UPDATE toc SET meta = 1 WHERE cid = ?", (cid,))
    raw = _read_block(plan, handles, cid)
    if raw is None:
        plan.problem(f"feed entry {h.hex()[:16]} listed in the index is missing from the bundle")
        return
    try:
        e = records.decode_entry(raw)
    except ProtocolError as exc:
        plan.problem(f"feed entry {h.hex()[:16]}: {exc}")
        return
    r = ranges.get(e.feed)
    if r is None or not r.first <= e.seq <= r.last:
        plan.problem(f"feed {e.school_id} entry {e.seq} is outside the feed ranges of the index")
        return
    rid = version = None
    if e.kind == records.KIND_PUBLISH:
        rid, version = records.resource_id_of(e), e.body["version"]
    elif e.kind == records.KIND_UPDATE:
        rid, version = e.body["resource"], e.body["version"]
    sc.execute("INSERT INTO entries VALUES (?,?,?,?,?,?)", (h, e.feed, e.seq, rid, version, raw))


def _getter(plan: ImportPlan):  # noqa: ANN202
    def get(cid: bytes) -> bytes:
        row = plan.scratch.execute("SELECT data FROM nodes WHERE cid = ?", (cid,)).fetchone()
        if row is not None:
            return row[0]
        if _codec(cid) == CID_DAG_PB:
            return plan.home.blocks.get(cid)
        raise NotFound("not needed")  # raw leaves are never read by these checks
    return get


def _check_folder(plan: ImportPlan, root: bytes, files: dict[str, bytes] | None) -> None:
    """Raise RemoteProtocolError if the folder under ``root`` has an unsafe name or does not
    hold exactly ``files``; return quietly when its nodes are not all here to check."""
    try:
        listing = unixfs.list_directory(root, _getter(plan))
    except (NotFound, StoreError):  # not all here (another part), or damaged locally
        return
    if files is not None and listing != files:
        raise RemoteProtocolError("its folder does not match the signed file list")


def _choose_resources(plan: ImportPlan, refs: list[brecords.ResourceRef]) -> None:
    conn, sc = plan.home.conn, plan.scratch
    for ref in refs:
        # The entry of that version carrying that content (another feed may sign an "update"
        # of someone else's resource: such an entry is never indexed, so it cannot match).
        row, files, content = None, None, None
        for cand in sc.execute("SELECT hash, raw, feed, seq FROM entries WHERE rid = ? AND "
                               "version = ?", (ref.id, ref.version)).fetchall():
            body = records.decode_entry(cand[1]).body
            if row is None or body["content"] == ref.content:
                row, content = cand, body["content"]
                files = {f["path"]: f["cid"] for f in body["files"]}
        if row is None:
            stored = conn.execute("SELECT content FROM resource_versions WHERE resource_id = ? "
                                  "AND version = ?", (ref.id, ref.version)).fetchone()
            if stored is None:
                plan.problem(f"resource {ref.id} version {ref.version}: no signed entry for it "
                             "in the bundle or in this library; its content was not imported")
                continue
            content = stored[0]
        if content != ref.content:
            plan.problem(f"resource {ref.id} version {ref.version}: the index lists content "
                         f"{cid_to_str(ref.content)} but the signed entry says "
                         f"{cid_to_str(content)}")
            continue
        try:
            _check_folder(plan, ref.content, files)
        except ProtocolError as exc:
            why = f"resource {ref.id} version {ref.version} was refused: {exc}"
            stored = row is not None and conn.execute(
                "SELECT hash FROM entries WHERE feed = ? AND seq = ?", row[2:]).fetchone()
            if row is not None and not (stored and stored[0] == row[0]):
                plan.poisoned[row[0]] = why  # its entry, and the feed after it, are refused
            else:
                plan.problem(why)  # the entry is already stored: only the content is refused
            continue
        plan.candidates.append(_Candidate(ref.content, "bundle", ref.id, ref.version))


def _implicit_roots(plan: ImportPlan) -> list[bytes]:
    """Blocks that no other block of the bundle links to (``ipfs-car roots --implicit``)."""
    sc = plan.scratch
    sc.execute("CREATE TEMP TABLE linked (cid BLOB PRIMARY KEY) WITHOUT ROWID")
    for cid, data in sc.execute("SELECT cid, data FROM nodes").fetchall():
        try:
            links = dagpb.decode_node(data).links
        except ProtocolError:
            continue
        sc.executemany("INSERT OR IGNORE INTO linked VALUES (?)", [(lk.cid,) for lk in links])
    return [c for (c,) in sc.execute(
        "SELECT cid FROM toc WHERE bad = 0 AND cid NOT IN (SELECT cid FROM linked) "
        "GROUP BY cid ORDER BY min(file * 1099511627776 + offset)")]


def _choose_roots(plan: ImportPlan) -> None:
    roots = plan.header_roots or _implicit_roots(plan)
    for root in roots:
        if _codec(root) is None:
            plan.problem(f"root {root.hex()} has an unsupported CID (only CIDv1 raw/dag-pb "
                         "with sha2-256 are accepted)")
            continue
        if not plan.home.blocks.has(root) and not plan.scratch.execute(
                "SELECT 1 FROM toc WHERE cid = ? AND bad = 0", (root,)).fetchone():
            plan.problem(f"root {cid_to_str(root)} is not in the CAR file")
            continue
        try:
            if _codec(root) == CID_DAG_PB:
                node = dagpb.decode_node(_getter(plan)(root))
                if node.unixfs.type == dagpb.DIRECTORY:
                    _check_folder(plan, root, None)
        except (NotFound, StoreError):
            pass
        except ProtocolError as exc:
            plan.problem(f"root {cid_to_str(root)} was refused: {exc}")
            continue
        plan.candidates.append(_Candidate(root, "user", "import"))


def _compute_keep(plan: ImportPlan, roots: Sequence[bytes]) -> None:
    """Mark every block reachable from ``roots`` (through the bundle's nodes and the local
    store); count the bytes and blocks that are in the bundle but not stored yet."""
    sc, store = plan.scratch, plan.home.blocks
    sc.execute("DELETE FROM keep")
    get = _getter(plan)
    stack = list(roots)
    while stack:
        cid = stack.pop()
        present = store.has(cid)
        if not sc.execute("INSERT OR IGNORE INTO keep VALUES (?, ?)", (cid, present)).rowcount:
            continue
        if _codec(cid) != CID_DAG_PB:
            continue
        try:
            links = dagpb.decode_node(get(cid)).links
        except (NotFound, StoreError):
            continue
        except ProtocolError as exc:
            plan.problem(f"block {cid_to_str(cid)} is not a valid UnixFS node: {exc}")
            sc.execute("DELETE FROM keep WHERE cid = ?", (cid,))
            continue
        stack.extend(link.cid for link in reversed(links))
    plan.bytes_needed, plan.blocks_needed = sc.execute(
        "SELECT coalesce(sum(t.length), 0), count(*) FROM keep k JOIN toc t USING (cid) "
        "WHERE k.present = 0 AND t.bad = 0").fetchone()


def plan_import(home: Home, files: Sequence[Path], *, content_only: bool = False,
                progress: Progress = None) -> ImportPlan:
    """Pass 1: check the files and decide what to import.  Writes nothing to the home.
    ``progress`` is told how many bytes of the files were scanned (skipped ones included)."""
    if not files:
        raise BundleError("give at least one CAR file to import")
    # A private temporary database, deleted when closed (even on a crash: the file is
    # unlinked at once).  Everything runs in one implicit transaction that is never
    # committed: per-statement transactions would cost a write each.
    scratch = sqlite3.connect("")
    scratch.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                          + _SCRATCH_SCHEMA)
    plan = ImportPlan(home=home, files=[Path(f) for f in files], content_only=content_only,
                      scratch=scratch)
    try:
        for i, path in enumerate(plan.files):
            _scan(plan, i, path, progress)
        with _open_all(plan.files) as handles:
            if content_only:
                _choose_roots(plan)
            else:
                _choose_resources(plan, _stage_entries(plan, handles))
        _compute_keep(plan, [c.root for c in plan.candidates])
        check_space(home.path, plan.bytes_needed, "importing the bundle")
    except BaseException:
        plan.close()
        raise
    return plan


@contextlib.contextmanager
def _open_all(paths: list[Path]) -> Iterator[list[BinaryIO]]:
    with contextlib.ExitStack() as stack:
        try:
            handles = [stack.enter_context(open(p, "rb")) for p in paths]
        except OSError as exc:
            raise BadBundle(f"cannot read {exc.filename}: {exc.strerror}") from None
        yield handles


# -- pass 2: import --------------------------------------------------------------------------

def _append_entries(plan: ImportPlan) -> tuple[int, int]:
    """Append staged entries feed by feed in seq order; (added, already stored)."""
    added = duplicates = 0
    gate = community.policy(plan.home).gate(any_feed=True)
    own = plan.home.feed
    own_ok = None    # the bundle brought our own feed (a restored school learns its head)
    with db.write(plan.home.conn) as conn:
        feed = stop = None
        left = 0

        def report_stop() -> None:
            nonlocal own_ok
            if feed == own:
                own_ok = stop is None
            if stop is not None:
                plan.problem(stop + (f" ({left} later entr{'y' if left == 1 else 'ies'} of "
                                     "this feed were not imported)" if left else ""))

        for f, seq, h, raw in plan.scratch.execute(
                "SELECT feed, seq, hash, raw FROM entries ORDER BY feed, seq"):
            if f != feed:
                report_stop()
                feed, stop, left = f, None, 0
            if stop is not None:
                left += 1
                continue
            sid = PublicKey(f).school_id
            if h in plan.poisoned:
                stop = f"feed {sid} entry {seq}: {plan.poisoned[h]}"
                continue
            try:
                result = feeds.admit(conn, records.decode_entry(raw), gate, feed=f, seq=seq)
            except RemoteProtocolError as exc:
                stop = f"feed {sid} entry {seq}: {exc}"
                continue
            if result is feeds.Appended.CUT:
                stop = (f"feed {sid} entry {seq}: dated after the school's removal from a "
                        "community; not imported")
                continue
            if result is feeds.Appended.ADDED:
                added += 1
            elif result is feeds.Appended.DUPLICATE:
                duplicates += 1
            else:
                stop = (f"feed {sid} entry {seq}: a different entry {seq} is already stored "
                        "(equivocation: both kept as evidence, the feed is no longer trusted)")
        report_stop()
        if own_ok and not backup.head_known(conn):
            backup.mark_head_known(conn)
    return added, duplicates


def _accepted(plan: ImportPlan) -> list[_Candidate]:
    if plan.content_only:
        return plan.candidates
    conn = plan.home.conn
    out = []
    for c in plan.candidates:
        row = conn.execute("SELECT content FROM resource_versions WHERE resource_id = ? AND "
                           "version = ?", (c.ref, c.version)).fetchone()
        if row is not None and row[0] == c.root:
            out.append(c)
    return out


def _store_blocks(plan: ImportPlan, progress: Progress, created: list[bytes]
                  ) -> tuple[int, int]:
    """Store the missing reachable blocks: nodes from the scratch copy (verified in pass 1),
    leaves from the files in file order (a bad copy is reported, a later good copy used)."""
    sc, added, nbytes = plan.scratch, 0, 0
    sc.execute("DELETE FROM todo")
    sc.execute("INSERT INTO todo SELECT t.cid, t.file, t.offset, t.length FROM keep k "
               "JOIN toc t USING (cid) WHERE k.present = 0 AND t.bad = 0 AND t.codec != ? "
               "ORDER BY t.file, t.offset", (CID_DAG_PB,))
    with _open_all(plan.files) as handles, plan.home.blocks.batch(created) as batch:
        for cid, data in sc.execute("SELECT n.cid, n.data FROM keep k JOIN nodes n "
                                    "USING (cid) WHERE k.present = 0"):
            if batch.put(cid, data):
                added += 1
                nbytes += len(data)
            if progress:
                progress(len(data))
        # Blocks with several copies (in several parts): once one is stored, skip the others.
        copies = {c for (c,) in sc.execute("SELECT cid FROM todo GROUP BY cid "
                                           "HAVING count(*) > 1")}
        done: set[bytes] = set()
        for cid, file_no, offset, length in sc.execute(
                "SELECT cid, file, offset, length FROM todo ORDER BY rowid"):
            if cid in done:
                continue
            fh = handles[file_no]
            fh.seek(offset)
            data = fh.read(length)
            try:
                if batch.put(cid, data):
                    added += 1
                    nbytes += length
                if cid in copies:
                    done.add(cid)
            except BadCID:
                _bad_copy(plan, cid, file_no, offset)
            if progress:
                progress(length)
    return added, nbytes


def run_import(plan: ImportPlan, progress: Progress = None) -> dict[str, Any]:
    """Pass 2: append entries, store blocks, pin; return the report (gc waits meanwhile:
    the blocks have no pin until the end)."""
    created: list[bytes] = []
    since = now_ms()
    with plan.home.blocks.writing() as lock:
        try:
            return _run_import(plan, progress, created)
        except BaseException:
            discard_unpinned(plan.home, lock, created, since)   # a full disk: no pieces
            raise


def _run_import(plan: ImportPlan, progress: Progress, created: list[bytes]) -> dict[str, Any]:
    home = plan.home
    entries_added = entries_dup = 0
    if not plan.content_only:
        entries_added, entries_dup = _append_entries(plan)
    accepted = _accepted(plan)
    if len(accepted) != len(plan.candidates):
        _compute_keep(plan, [c.root for c in accepted])
    blocks_added, bytes_added = _store_blocks(plan, progress, created)
    pinned: list[dict[str, Any]] = []
    incomplete: list[dict[str, Any]] = []
    now = now_ms()
    with db.write(home.conn) as conn:
        for c in accepted:
            db.pin(conn, c.root, c.reason, c.ref, now)
    for c in accepted:
        walk = walk_dag(home.blocks, c.root)
        item = {"content_cid": cid_to_str(c.root)}
        if c.reason == "bundle":
            item = {"resource_id": c.ref, "version": c.version, **item}
        (pinned if walk.complete else incomplete).append(item)
    content_blocks = plan.scratch.execute(
        "SELECT count(DISTINCT cid) FROM toc WHERE meta = 0 AND bad = 0").fetchone()[0]
    problems = list(plan.problems)
    if plan.more_problems:
        problems.append(f"... and {plan.more_problems} more problem(s)")
    return {
        "files": [str(f) for f in plan.files],
        "exporters": sorted({i.school_id for i in plan.indexes.values()}),
        "blocks_added": blocks_added,
        "blocks_skipped": max(0, content_blocks - blocks_added),
        "bytes_added": bytes_added,
        "entries_added": entries_added,
        "entries_skipped": entries_dup,
        "pinned": pinned,
        "incomplete": incomplete,
        "invalid": problems,
    }


def import_bundles(home: Home, files: Sequence[Path], *, content_only: bool = False,
                   progress: Progress = None) -> dict[str, Any]:
    with plan_import(home, files, content_only=content_only) as plan:
        return run_import(plan, progress)
