"""Storage within a budget (specs/bundles.md §8, limits.md §8): which pins keep which blocks,
garbage collection of blocks no pin needs, the cache quota of ``user`` and ``subscription``
copies (least recently used first), and pins a teacher sets by hand (``teacher``: never
evicted).

Lifetimes by reason:

- ``own``: our resource's current content; a retract drops it, an update keeps the old
  version's pin until a seed of our communities provides the new one (the node checks) — at
  once if the school is in no community.
- ``bundle`` / ``community``: a retract drops them; a newer version replaces the old one's
  when the new content is pinned (the seed has it).
- ``user`` / ``subscription``: a cache under ``cache_quota`` bytes; beyond it the least
  recently used (``pins.used``, set by ``get`` and web downloads, else ``created``) are
  dropped and remembered in ``evicted`` so subscriptions do not fetch them again.
- ``teacher``: ``schoolmesh pin``; only ``unpin`` removes it.

``collect`` deletes every block that no pin and no unfinished transfer reaches.  Blocks being
written by a publish or import are protected by the block store's lock; blocks a running fetch
writes while gc runs are newer than its start and kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from crypto import CID_DAG_PB, BadCID, cid_codec, cid_from_str, cid_to_str
from protocol import unixfs
from protocol.errors import ProtocolError

from . import db
from .errors import NodeError, NotFound, StoreError
from .home import Home, now_ms

CACHE_SETTING = "cache_quota"
DEFAULT_CACHE_FRACTION = 0.25   # of the file system, when no quota is set
CACHE_REASONS = ("user", "subscription")
TEACHER = "teacher"
ACTIVE_TRANSFERS = ("queued", "running", "paused", "waiting")


# -- what is reachable ------------------------------------------------------------------------

def walk(home: Home, root: bytes, stored: dict[bytes, Any] | None = None) -> set[bytes]:
    """The stored blocks of the DAG under ``root`` (what is missing is simply not there).
    With ``stored`` (every stored CID) leaves are not read: only dag-pb nodes are."""
    out: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in out:
            continue
        if stored is not None and cid_codec(cid) != CID_DAG_PB:
            if cid in stored:
                out.add(cid)
            continue
        try:
            data = home.blocks.get(cid, verify=False)
        except (NotFound, StoreError):
            continue
        out.add(cid)
        if cid_codec(cid) == CID_DAG_PB:
            try:
                stack.extend(link.cid for link in unixfs.dagpb.decode_node(data).links)
            except ProtocolError:
                pass   # damaged: verify reports it
    return out


def roots(conn: sqlite3.Connection) -> list[tuple[bytes, str, str]]:
    """(root, reason, ref) of every pin and unfinished transfer."""
    out = list(conn.execute("SELECT cid, reason, ref FROM pins"))
    marks = ", ".join("?" * len(ACTIVE_TRANSFERS))
    out += [(r, "transfer", str(i)) for i, r in conn.execute(
        f"SELECT id, root FROM transfers WHERE state IN ({marks})", ACTIVE_TRANSFERS)]
    return out


@dataclass
class Census:
    sizes: dict[bytes, int]                      # every stored block
    mtimes: dict[bytes, float | None]
    by_reason: dict[str, set[bytes]] = field(default_factory=dict)
    by_root: dict[bytes, set[bytes]] = field(default_factory=dict)

    def bytes_of(self, cids: Iterable[bytes]) -> int:
        return sum(self.sizes.get(c, 0) for c in cids)

    @property
    def reachable(self) -> set[bytes]:
        return set().union(*self.by_reason.values()) if self.by_reason else set()


def census(home: Home) -> Census:
    c = Census(sizes={}, mtimes={})
    for cid, n, mtime in home.blocks.sizes():
        c.sizes[cid] = n
        c.mtimes[cid] = mtime
    for root, reason, _ref in roots(home.conn):
        if root not in c.by_root:
            c.by_root[root] = walk(home, root, c.sizes)
        c.by_reason.setdefault(reason, set()).update(c.by_root[root])
    return c


# -- garbage collection -----------------------------------------------------------------------

def collect(home: Home, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete blocks no pin or unfinished transfer needs, and stale temporary files."""
    started = time.time()
    with home.blocks.collecting():
        small_mark = home.blocks.small_watermark()
        c = census(home)
        newer = home.blocks.small_ids_above(small_mark)
        keep = c.reachable
        garbage = [cid for cid, mtime in c.mtimes.items() if cid not in keep
                   and cid not in newer and (mtime is None or mtime < started)]
        freed = c.bytes_of(garbage)
        tmp = 0
        if not dry_run:
            freed = home.blocks.delete_many(garbage)
            tmp = home.blocks.clean_tmp()
    return {"dry_run": dry_run, "blocks_deleted": len(garbage), "bytes_freed": freed,
            "blocks_kept": len(c.sizes) - len(garbage), "bytes_kept": c.bytes_of(keep),
            "temp_files_removed": tmp}


def discard_unpinned(home: Home, lock: Any, created: list[bytes], since: int) -> int:
    """A publish or import failed (a full disk): remove the blocks it added, unless another
    writer is at work now (then gc removes them later) or a pin made meanwhile (a concurrent
    publish of the same bytes, a fetch) needs them. Returns how many were removed."""
    if not created:
        return 0
    with lock.alone() as alone:
        if not alone:
            return 0
        needed: set[bytes] = set()
        try:
            for (root,) in home.conn.execute("SELECT DISTINCT cid FROM pins WHERE created >= ?",
                                             (since,)).fetchall():
                needed |= walk(home, root)
            gone = [c for c in dict.fromkeys(created) if c not in needed]
            home.blocks.delete_many(gone)
        except (sqlite3.Error, StoreError):
            return 0   # left for 'schoolmesh gc'
    created.clear()
    return len(gone)


# -- costs ------------------------------------------------------------------------------------

def costs(home: Home) -> dict[str, Any]:
    """What each pin reason keeps (bytes of its blocks), what only it keeps (freed if its
    pins went), and what gc would free now."""
    c = census(home)
    out: dict[str, Any] = {}
    for reason, cids in sorted(c.by_reason.items()):
        others = set().union(*(v for r, v in c.by_reason.items() if r != reason))
        out[reason] = {"blocks": len(cids), "bytes": c.bytes_of(cids),
                       "only_bytes": c.bytes_of(cids - others)}
    unreached = set(c.sizes) - c.reachable
    return {"reasons": out, "gc_would_free": {"blocks": len(unreached),
                                              "bytes": c.bytes_of(unreached)},
            "stored": {"blocks": len(c.sizes), "bytes": c.bytes_of(c.sizes)},
            "cache": cache_status(home, c)}


# -- the cache quota --------------------------------------------------------------------------

def cache_quota(home: Home) -> int:
    value = db.get_setting(home.conn, CACHE_SETTING)
    if value is not None:
        return int(value)
    return int(shutil.disk_usage(home.path).total * DEFAULT_CACHE_FRACTION)


def set_cache_quota(conn: sqlite3.Connection, nbytes: int | None) -> None:
    with db.write(conn) as c:
        if nbytes is None:
            c.execute("DELETE FROM settings WHERE key = ?", (CACHE_SETTING,))
        else:
            db.set_setting(c, CACHE_SETTING, str(nbytes))


def _cache_groups(home: Home, c: Census) -> list[tuple[int, list[tuple[bytes, str, str]]]]:
    """Cache pins grouped by their top root (a copy imported or fetched as a folder also pins
    the files inside it; they go together), least recently used group first:
    [(last used, [(root, reason, ref)])]."""
    marks = ", ".join("?" * len(CACHE_REASONS))
    rows = home.conn.execute(
        f"SELECT cid, reason, ref, COALESCE(used, created) FROM pins WHERE reason IN ({marks})"
        " ORDER BY COALESCE(used, created), cid", CACHE_REASONS).fetchall()
    tops = [r for r in rows if not any(o[0] != r[0] and r[0] in c.by_root.get(o[0], ())
                                       for o in rows)]
    groups: dict[bytes, tuple[int, list[tuple[bytes, str, str]]]] = {}
    for top in tops:
        members = [r for r in rows if r[0] != top[0] and r[0] in c.by_root.get(top[0], ())]
        if top[0] not in groups:
            groups[top[0]] = (max(m[3] for m in [top, *members]),
                              [top[:3], *(m[:3] for m in members)])
    return sorted(groups.values(), key=lambda g: (g[0], g[1][0][0]))


def cache_status(home: Home, c: Census | None = None) -> dict[str, Any]:
    """Bytes the cache holds (content kept for another reason too costs it nothing)."""
    c = c or census(home)
    other = set().union(*(v for r, v in c.by_reason.items() if r not in CACHE_REASONS))
    used = c.bytes_of(set().union(*(c.by_reason.get(r, set()) for r in CACHE_REASONS)) - other)
    return {"quota": cache_quota(home), "used": used}


def evict(home: Home, c: Census | None = None) -> list[dict[str, Any]]:
    """Drop least recently used cache copies until the cache fits its quota; what was dropped.
    Copies also kept for another reason (a teacher's pin) cost the cache nothing and stay, and
    so does the most recently used one, even when it alone is larger than the quota.
    The blocks go at the next ``collect``."""
    c = c or census(home)
    quota = cache_quota(home)
    groups = _cache_groups(home, c)
    other: set[bytes] = set()
    for reason, cids in c.by_reason.items():
        if reason not in CACHE_REASONS:
            other |= cids

    def blocks(group: list[tuple[bytes, str, str]]) -> set[bytes]:
        return set().union(*(c.by_root.get(g[0], set()) for g in group)) - other
    total = c.bytes_of(set().union(*(blocks(g) for _, g in groups)) if groups else set())
    dropped: list[dict[str, Any]] = []
    left = list(groups)
    for used, group in groups[:-1]:   # the newest copy stays (a teacher just asked for it)
        if total <= quota:
            break
        left.remove((used, group))
        still = set().union(*(blocks(g) for _, g in left)) if left else set()
        freed = c.bytes_of(blocks(group) - still)
        if freed == 0:
            left.append((used, group))
            continue
        for root, reason, ref in group:
            dropped.append({"cid": cid_to_str(root), "reason": reason, "ref": ref,
                            "bytes": freed if root == group[0][0] else 0, "last_used": used})
        total -= freed
    if dropped:
        now = now_ms()
        with db.write(home.conn) as conn:
            for d in dropped:
                cid = cid_from_str(d["cid"])
                conn.execute("DELETE FROM pins WHERE cid = ? AND reason = ? AND ref = ?",
                             (cid, d["reason"], d["ref"]))
                conn.execute("INSERT OR REPLACE INTO evicted VALUES (?, ?, ?, ?)",
                             (cid, d["reason"], d["ref"], now))
    return dropped


def touch(conn: sqlite3.Connection, root: bytes) -> None:
    """A teacher used this content (get, web download): it is the newest in the cache."""
    marks = ", ".join("?" * len(CACHE_REASONS))
    try:
        with db.write(conn) as c:
            c.execute(f"UPDATE pins SET used = ? WHERE cid = ? AND reason IN ({marks})",
                      (now_ms(), root, *CACHE_REASONS))
    except StoreError:
        pass   # a full disk: the order of the cache is not worth an error


def was_evicted(conn: sqlite3.Connection, root: bytes, reason: str) -> bool:
    return conn.execute("SELECT 1 FROM evicted WHERE cid = ? AND reason = ?",
                        (root, reason)).fetchone() is not None


# -- lifetimes --------------------------------------------------------------------------------

def on_retract(conn: sqlite3.Connection, rid: str) -> None:
    """A resource was retracted: its own, bundle and community pins go (inside the entry's
    write transaction)."""
    contents = [c for (c,) in conn.execute(
        "SELECT content FROM resource_versions WHERE resource_id = ?", (rid,))]
    conn.execute("DELETE FROM pins WHERE reason IN ('own', 'bundle') AND ref = ?", (rid,))
    for content in contents:
        conn.execute("DELETE FROM pins WHERE reason = 'community' AND cid = ?", (content,))


def superseded(conn: sqlite3.Connection, rid: str, current: bytes) -> list[bytes]:
    """Contents of older versions of ``rid`` (not the current one)."""
    return [c for (c,) in conn.execute(
        "SELECT content FROM resource_versions WHERE resource_id = ? AND content != ?",
        (rid, current))]


def on_new_pin(conn: sqlite3.Connection, root: bytes, reason: str, ref: str) -> None:
    """A newer version's content is pinned (bundle import, seeding): the pins of the same
    reason on its older versions go (inside a write transaction)."""
    if reason not in ("bundle", "community"):
        return
    row = conn.execute("SELECT resource_id FROM resources WHERE content = ?",
                       (root,)).fetchone()
    if row is None:
        return
    for old in superseded(conn, row[0], root):
        conn.execute("DELETE FROM pins WHERE cid = ? AND reason = ?", (old, reason))


def stale_own_pins(conn: sqlite3.Connection, feed: bytes) -> list[tuple[str, bytes]]:
    """(resource id, current content) of our resources whose older versions still hold an
    ``own`` pin."""
    return conn.execute(
        "SELECT DISTINCT r.resource_id, r.content FROM pins p JOIN resources r "
        "ON r.resource_id = p.ref WHERE p.reason = 'own' AND p.cid != r.content "
        "AND r.feed = ? AND r.retracted = 0 ORDER BY r.resource_id", (feed,)).fetchall()


def drop_old_own(conn: sqlite3.Connection, rid: str, current: bytes) -> None:
    conn.execute("DELETE FROM pins WHERE reason = 'own' AND ref = ? AND cid != ?",
                 (rid, current))


def resource_of(conn: sqlite3.Connection, root: bytes) -> str | None:
    row = conn.execute("SELECT resource_id FROM resources WHERE content = ?", (root,)).fetchone()
    return row[0] if row else None

