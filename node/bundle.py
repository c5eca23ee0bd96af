"""Offline exchange: wants files and CAR bundle export (specs/bundles.md).

Import lives in ``node/bundle_import.py``.  Both stream: blocks are read and written one at a
time, so memory grows with the number of blocks (about 100 bytes each), never with their bytes.
Files are written under a ``.partial`` name, fsynced, then renamed: a file with the final name
is always complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto import CID_RAW, BadCID, PublicKey, cid_codec, cid_to_str, make_cid, sha256
from protocol import bundle as records
from protocol import car, codec, dagpb
from protocol.errors import LocalProtocolError, ProtocolError

# The block store's ctypes binding of sync_file_range(2) (None where unavailable).
from .blockstore import _SYNC_FILE_RANGE_WRITE, BlockStore, _sync_file_range
from .errors import NodeError, NotFound, StoreError
from .home import Home, now_ms

MiB = 1024 * 1024
# Never fill a disk completely: the database and other programs need room too.
SPACE_RESERVE = 16 * MiB
READ_SIZE = MiB
WRITEBACK_STEP = 8 * MiB   # start writing a bundle to disk every 8 MiB
Progress = Callable[[int], None] | None


class BundleError(NodeError):
    """A bundle or wants file cannot be written or read as a whole."""


class NoSpace(BundleError):
    """Not enough free disk space: reported before anything is written."""


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path`` (tests replace this function)."""
    return shutil.disk_usage(path).free


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def check_space(folder: Path, needed: int, what: str) -> None:
    free = free_bytes(folder)
    if needed + SPACE_RESERVE > free:
        raise NoSpace(f"not enough free disk space in {folder}: {what} needs "
                      f"{human_size(needed)} (plus {human_size(SPACE_RESERVE)} to spare), "
                      f"only {human_size(free)} is free")


# -- walking stored DAGs ---------------------------------------------------------------------

@dataclass
class DagWalk:
    """A stored DAG: its dag-pb nodes in pre-order, its raw leaves in order (with the sizes
    their parents record), and whatever is missing or damaged."""
    nodes: list[tuple[bytes, int]] = field(default_factory=list)
    leaves: list[tuple[bytes, int]] = field(default_factory=list)
    missing: int = 0
    problem: str | None = None
    size: int = 0             # the root's total size (its bytes plus its links' Tsize)

    @property
    def complete(self) -> bool:
        return not self.missing and self.problem is None


def walk_dag(store: BlockStore, root: bytes) -> DagWalk:
    """Walk the DAG under ``root`` in the local store, each block listed once.  Nodes are read
    (and so verified); leaves are only looked up."""
    seen: set[bytes] = set()
    walk = DagWalk()
    stack = [(root, 0)]
    while stack:
        cid, hint = stack.pop()
        if cid in seen:
            continue
        try:
            codec_ = cid_codec(cid)
        except BadCID as exc:
            walk.problem = str(exc)
            continue
        if codec_ == CID_RAW:
            if store.has(cid):
                seen.add(cid)
                walk.leaves.append((cid, hint))
            else:
                walk.missing += 1
            continue
        try:
            data = store.get(cid)
            node = dagpb.decode_node(data)
        except NotFound:
            walk.missing += 1
            continue
        except (StoreError, ProtocolError) as exc:
            walk.problem = f"block {cid_to_str(cid)}: {exc}"
            continue
        seen.add(cid)
        walk.nodes.append((cid, len(data)))
        if cid == root:
            walk.size = len(data) + sum(link.tsize for link in node.links)
        stack.extend((link.cid, link.tsize) for link in reversed(node.links))
    return walk


# -- writing files atomically ----------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. vfat on old kernels) refuse it on folders
        pass
    finally:
        os.close(fd)


def _check_folder(path: Path) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BundleError(f"{folder} is not an existing folder")
    if path.is_dir():
        raise BundleError(f"{path} is a folder")
    return folder


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write a small file: ``PATH.partial``, fsync, rename."""
    folder = _check_folder(path)
    if path.exists() and not overwrite:
        raise BundleError(f"{path} already exists (use --overwrite to replace it)")
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


# -- wants -----------------------------------------------------------------------------------

def held_roots(home: Home) -> list[bytes]:
    """Pinned content roots whose every block is stored here."""
    return [cid for (cid,) in home.conn.execute(
        "SELECT DISTINCT cid FROM pins ORDER BY cid").fetchall()
        if walk_dag(home.blocks, cid).complete]


def make_wants(home: Home, output: Path, asks: records.Asks, *,
               overwrite: bool = False) -> dict[str, Any]:
    key = home.key()
    heads = [records.Head(feed=f, seq=s, hash=h) for f, s, h in home.conn.execute(
        "SELECT feed, head_seq, head_hash FROM feeds WHERE head_seq > 0")]
    roots = held_roots(home)
    try:
        wants = records.sign_wants(key, time=now_ms(), feeds=heads, roots=roots, asks=asks)
    except LocalProtocolError as exc:
        raise BundleError(str(exc)) from None
    write_atomic(Path(output), wants.raw, overwrite=overwrite)
    return {"output": str(output), "school_id": wants.school_id, "feeds": len(wants.feeds),
            "roots": len(wants.roots), "asks": asks.to_map(), "bytes": len(wants.raw)}


def read_wants(path: Path) -> records.Wants:
    try:
        with open(path, "rb") as fh:
            data = fh.read(codec.MAX_RECORD_SIZE + 1)
    except OSError as exc:
        raise BundleError(f"cannot read the wants file {path}: {exc.strerror}") from None
    try:
        return records.decode_wants(data)
    except ProtocolError as exc:
        raise BundleError(f"{path} is not a valid wants file: {exc}") from None


# -- export: planning ------------------------------------------------------------------------

@dataclass
class ExportPlan:
    header: bytes
    roots: tuple[bytes, bytes]                      # (library folder, index)
    prefix: list[tuple[str, Any]]                   # written at the start of every part
    prefix_size: int                                # header included
    leaves: list[tuple[bytes, int]]                 # spread over the parts
    leaves_size: int
    max_size: int | None
    parts: int                                      # expected number of parts
    summary: dict[str, Any]

    @property
    def estimated_bytes(self) -> int:
        return self.prefix_size * self.parts + self.leaves_size


def _resolve_scope(conn: sqlite3.Connection, resources: list[str], schools: list[str]
                   ) -> tuple[set[bytes] | None, list[str] | None]:
    """(feeds in scope, explicit resource ids); None means everything."""
    if not resources and not schools:
        return None, None
    feeds: set[bytes] = set()
    rids: list[str] = []
    for rid in resources:
        row = conn.execute("SELECT feed, retracted FROM resources WHERE resource_id = ?",
                           (rid,)).fetchone()
        if row is None:
            raise NotFound(f"no resource {rid!r} in this library")
        if row[1]:
            raise BundleError(f"{rid} has been retracted; it is not exported")
        feeds.add(row[0])
        rids.append(rid)
    for school in schools:
        rows = conn.execute("SELECT feed FROM feeds WHERE school_id = ? OR name = ?",
                            (school, school)).fetchall()
        if not rows:
            raise NotFound(f"no school {school!r} in this library")
        for (feed,) in rows:
            feeds.add(feed)
            rids += [r for (r,) in conn.execute(
                "SELECT resource_id FROM resources WHERE feed = ? AND retracted = 0 "
                "ORDER BY id", (feed,))]
    return feeds, list(dict.fromkeys(rids))


def _feed_ranges(conn: sqlite3.Connection, scope: set[bytes] | None,
                 wants: records.Wants | None, skipped: list[dict[str, Any]]
                 ) -> list[records.FeedRange]:
    theirs = {h.feed: h for h in wants.feeds} if wants else {}
    ranges = []
    for feed, sid, seq, hash_, flagged in conn.execute(
            "SELECT feed, school_id, head_seq, head_hash, flagged FROM feeds "
            "WHERE head_seq > 0 ORDER BY feed").fetchall():
        if scope is not None and feed not in scope:
            continue
        if flagged:
            skipped.append({"school_id": sid, "reason": f"feed not trusted: {flagged}"})
            continue
        first = 1
        if feed in theirs:
            have = theirs[feed]
            if have.seq >= seq:
                continue
            (ours,) = conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?",
                                   (feed, have.seq)).fetchone()
            # A different entry at their head: send ours too, as evidence of the fork.
            first = have.seq + 1 if ours == have.hash else have.seq
        ranges.append(records.FeedRange(feed=feed, first=first, last=seq, head=hash_))
    return ranges


def _count_parts(capacity: int, sizes: Iterator[int]) -> int:
    parts, used = 1, 0
    for size in sizes:
        if used + size > capacity and used:
            parts += 1
            used = 0
        used += size
    return parts


def plan_export(home: Home, *, resources: Sequence[str] = (), schools: Sequence[str] = (),
                wants: records.Wants | None = None, max_size: int | None = None) -> ExportPlan:
    """Decide what goes into the bundle; reads the library, writes nothing."""
    conn, store = home.conn, home.blocks
    key = home.key()
    scope, explicit = _resolve_scope(conn, list(resources), list(schools))
    skipped: list[dict[str, Any]] = []
    ranges = _feed_ranges(conn, scope, wants, skipped)
    trusted = {f for (f,) in conn.execute("SELECT feed FROM feeds WHERE flagged IS NULL")}
    held = set(wants.roots) if wants else set()

    if explicit is None:
        rows = conn.execute("SELECT resource_id FROM resources WHERE retracted = 0 "
                            "ORDER BY id").fetchall()
        rids = [r for (r,) in rows]
    else:
        rids = explicit
    chosen = set(resources)
    refs: list[records.ResourceRef] = []
    view: list[tuple[str, bytes, int]] = []
    exported: set[bytes] = set()   # blocks shared by several resources go in once
    nodes: list[tuple[bytes, int]] = []
    leaves: list[tuple[bytes, int]] = []
    for rid in rids:
        feed, version, content, title, meta, retracted = conn.execute(
            "SELECT feed, version, content, title, meta, retracted FROM resources "
            "WHERE resource_id = ?", (rid,)).fetchone()
        if retracted or feed not in trusted or content in held:
            continue
        if wants is not None and rid not in chosen and not wants.asks.matches(json.loads(meta)):
            continue
        walk = walk_dag(store, content)
        if not walk.complete:
            reason = walk.problem or f"{walk.missing} block(s) of its content are not stored here"
            if rid in chosen:
                raise BundleError(f"cannot export {rid}: {reason}")
            skipped.append({"resource_id": rid, "reason": reason})
            continue
        for lst, items in ((nodes, walk.nodes), (leaves, walk.leaves)):
            for cid, n in items:
                if cid not in exported:
                    exported.add(cid)
                    lst.append((cid, n))
        refs.append(records.ResourceRef(id=rid, version=version, content=content))
        view.append((records.view_name(title, rid), content, walk.size))

    entry_hashes: list[bytes] = []
    entry_sizes = 0
    for r in ranges:
        for h, n in conn.execute("SELECT hash, length(raw) FROM entries WHERE feed = ? AND "
                                 "seq BETWEEN ? AND ? ORDER BY seq", (r.feed, r.first, r.last)):
            entry_hashes.append(h)
            entry_sizes += car.section_size(records.entry_cid(h), n)
    try:
        pages = records.paginate(refs, entry_hashes)
        index = records.sign_index(key, time=now_ms(), feeds=ranges,
                                   pages=[make_cid(CID_RAW, p) for p in pages])
    except LocalProtocolError as exc:
        raise BundleError(f"{exc}; export fewer schools or resources at a time") from None
    view_root, view_blocks = records.library_folder(view)
    header = car.encode_header([view_root, index.cid])
    prefix: list[tuple[str, Any]] = [("bytes", (index.cid, index.raw))]
    prefix += [("bytes", (make_cid(CID_RAW, p), p)) for p in pages]
    prefix += [("entries", r) for r in ranges]
    prefix += [("bytes", b) for b in view_blocks]
    prefix += [("block", n) for n in nodes]
    prefix_size = len(header) + entry_sizes
    for kind, item in prefix:
        if kind == "bytes":
            prefix_size += car.section_size(item[0], len(item[1]))
        elif kind == "block":
            prefix_size += car.section_size(item[0], item[1])
    leaf_sizes = [car.section_size(c, n) for c, n in leaves]
    parts = 1
    if max_size is not None:
        largest = max(leaf_sizes, default=0)
        if prefix_size + largest > max_size:
            raise BundleError(
                f"--max-size {max_size} is too small: every part carries the index, the feed "
                f"entries and the folder structure ({human_size(prefix_size)}) plus whole "
                f"blocks (up to {human_size(largest)}); use at least "
                f"{prefix_size + largest} bytes")
        parts = _count_parts(max_size - prefix_size, iter(leaf_sizes))
    summary = {
        "roots": [cid_to_str(view_root), cid_to_str(index.cid)],
        "library_folder": cid_to_str(view_root), "index": cid_to_str(index.cid),
        "resources": len(refs), "entries": len(entry_hashes),
        "feeds": [{"school_id": PublicKey(r.feed).school_id, "first": r.first,
                   "last": r.last} for r in ranges],
        "blocks": len(nodes) + len(leaves), "for_school": wants.school_id if wants else None,
        "skipped": skipped,
    }
    return ExportPlan(header=header, roots=(view_root, index.cid), prefix=prefix,
                      prefix_size=prefix_size, leaves=leaves, leaves_size=sum(leaf_sizes),
                      max_size=max_size, parts=parts, summary=summary)


# -- export: writing -------------------------------------------------------------------------

def part_paths(output: Path, n: int) -> list[Path]:
    """FILE.car when the bundle is one file; FILE.part1.car ... FILE.partN.car otherwise."""
    if n == 1:
        return [output]
    return [output.with_name(f"{_stem(output)}.part{i}.car") for i in range(1, n + 1)]


def _stem(output: Path) -> str:
    return output.name[:-4] if output.name.lower().endswith(".car") else output.name


def _existing_outputs(output: Path) -> list[Path]:
    """Files an export to ``output`` would replace: FILE.car and FILE.part<N>.car."""
    part = re.compile(re.escape(_stem(output)) + r"\.part[0-9]+\.car")
    found = [output] if output.exists() else []
    found += [p for p in output.parent.iterdir() if part.fullmatch(p.name)]
    return sorted(found)


class _Part:
    """One part being written under a temporary name.

    Writeback to the disk is started every :data:`WRITEBACK_STEP` bytes (``sync_file_range``,
    as the block store does), so the disk works while the next blocks are read and hashed and
    the final fsync has little left to wait for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "wb", buffering=READ_SIZE)  # noqa: SIM115 (closed by finish/abort)
        self.size = 0
        self.leaves = 0
        self._synced = 0

    def write(self, cid: bytes, data: bytes) -> int:
        head = car.section_head(cid, len(data))
        self.fh.write(head)
        self.fh.write(data)
        n = len(head) + len(data)
        self.size += n
        if _sync_file_range is not None and self.size - self._synced >= WRITEBACK_STEP:
            self.fh.flush()
            _sync_file_range(self.fh.fileno(), self._synced, self.size - self._synced,
                             _SYNC_FILE_RANGE_WRITE)
            self._synced = self.size
        return n

    def finish(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.path.unlink(missing_ok=True)


def _entries(home: Home, r: records.FeedRange) -> Iterator[tuple[bytes, bytes]]:
    for seq, h, raw in home.conn.execute(
            "SELECT seq, hash, raw FROM entries WHERE feed = ? AND seq BETWEEN ? AND ? "
            "ORDER BY seq", (r.feed, r.first, r.last)):
        if sha256(raw) != h:
            raise BundleError(f"stored feed entry {seq} is damaged (run 'schoolmesh verify')")
        yield records.entry_cid(h), raw


def write_export(home: Home, plan: ExportPlan, output: Path, *, overwrite: bool = False,
                 progress: Progress = None) -> dict[str, Any]:
    """Write the bundle (one file, or parts when ``max_size`` is set)."""
    output = Path(output)
    folder = _check_folder(output)
    existing = _existing_outputs(output)
    if existing and not overwrite:
        raise BundleError(f"{existing[0]} already exists (use --overwrite to replace it)")
    check_space(folder, plan.estimated_bytes, "the bundle")
    stem = _stem(output)
    parts: list[_Part] = []

    def new_part() -> _Part:
        part = _Part(output.with_name(f"{stem}.part{len(parts) + 1}.car.partial"))
        parts.append(part)
        part.fh.write(plan.header)
        part.size = len(plan.header)
        if progress:
            progress(len(plan.header))
        for kind, item in plan.prefix:
            if kind == "bytes":
                sections: Any = [item]
            elif kind == "entries":
                sections = _entries(home, item)
            else:
                sections = [(item[0], home.blocks.get(item[0]))]
            for cid, data in sections:
                n = part.write(cid, data)
                if progress:
                    progress(n)
        return part

    renamed: list[Path] = []
    try:
        part = new_part()
        for cid, _ in plan.leaves:
            data = home.blocks.get(cid)
            size = car.section_size(cid, len(data))
            if plan.max_size is not None and part.size + size > plan.max_size:
                if not part.leaves:
                    raise BundleError(f"block {cid_to_str(cid)} does not fit in --max-size")
                part.finish()
                part = new_part()
            part.write(cid, data)
            part.leaves += 1
            if progress:
                progress(size)
        part.finish()
        finals = part_paths(output, len(parts))
        for p, final in zip(parts, finals):
            os.replace(p.path, final)
            renamed.append(final)
    except BaseException:  # all or nothing: no partial files, no incomplete set of parts
        for p in parts:
            p.abort()
        for final in renamed:
            final.unlink(missing_ok=True)
        raise
    for stale in existing:
        if stale not in finals:
            stale.unlink(missing_ok=True)
    _fsync_dir(folder)
    return {**plan.summary, "output": [str(p) for p in finals], "parts": len(finals),
            "bytes": sum(p.size for p in parts)}
