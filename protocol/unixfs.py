"""UnixFS DAG layout as pure functions: the ``unixfs-v1-2025`` profile (specs/content.md).

Files: fixed 1 MiB chunks stored as raw leaves (CIDv1 raw); a file of one chunk *is* that leaf;
otherwise a balanced tree of dag-pb File nodes with at most 1024 links.  The tree is exactly what
"group the leaves in runs of ``max_links``, make a parent for every run (even a run of one), and
repeat until one node is left" gives — built incrementally so memory stays flat.

A resource's content root is a UnixFS directory of its files (subfolders as nested directories),
the same DAG as ``ipfs-car pack DIR``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from crypto import CID_DAG_PB, CID_RAW, cid_codec

from . import dagpb
from .dagpb import Link, UnixFSData
from .errors import LocalProtocolError, RemoteProtocolError
from .paths import check_name, check_path

CHUNK_SIZE = 1024 * 1024      # bytes per raw leaf
MAX_LINKS = 1024              # children per file node
# ipfs-car shards a directory with more than this many entries (HAMT); we don't build HAMTs yet.
MAX_DIRECTORY_ENTRIES = 1000


@dataclass(frozen=True, slots=True)
class Block:
    cid: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class DagLink:
    """A finished sub-DAG: its root CID, the bytes it holds, and its total encoded size."""
    cid: bytes
    content_size: int
    dag_size: int


class FileBuilder:
    """Feed a file's bytes; get back the blocks to store and finally the file's root.

    ``feed`` and ``finish`` return lists of :class:`Block` in a valid store order (children
    before parents); memory holds at most one chunk plus one pending level of links per tree
    level.
    """

    def __init__(self, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        if chunk_size < 1 or max_links < 2:
            raise LocalProtocolError("chunk_size must be >= 1 and max_links >= 2")
        self.chunk_size = chunk_size
        self.max_links = max_links
        self._buf = bytearray()
        self._levels: list[list[DagLink]] = [[]]
        self._leaves = 0
        self._done = False

    def feed(self, data: bytes) -> list[Block]:
        if self._done:
            raise LocalProtocolError("FileBuilder already finished")
        out: list[Block] = []
        cs = self.chunk_size
        if not self._buf and len(data) == cs:  # the common case: one read = one chunk
            return self._add_leaf(bytes(data))
        self._buf += data
        if len(self._buf) >= cs:
            view = memoryview(self._buf)
            n = len(self._buf) // cs
            for i in range(n):
                out.extend(self._add_leaf(bytes(view[i * cs:(i + 1) * cs])))
            view.release()
            del self._buf[:n * cs]
        return out

    def finish(self) -> tuple[DagLink, list[Block]]:
        """Flush; return the file's root link and the remaining blocks."""
        if self._done:
            raise LocalProtocolError("FileBuilder already finished")
        self._done = True
        out: list[Block] = []
        if self._buf or self._leaves == 0:
            out.extend(self._add_leaf(bytes(self._buf)))
            self._buf.clear()
        levels = self._levels
        i = 0
        while True:
            pending = levels[i]
            higher = any(levels[j] for j in range(i + 1, len(levels)))
            if not higher and len(pending) == 1:
                return pending[0], out
            if pending:
                out.append(self._make_parent(i))
            i += 1

    def _add_leaf(self, chunk: bytes) -> list[Block]:
        self._leaves += 1
        block = Block(dagpb.leaf_cid(chunk), chunk)
        self._levels[0].append(DagLink(block.cid, len(chunk), len(chunk)))
        out = [block]
        i = 0
        while len(self._levels[i]) >= self.max_links:
            out.append(self._make_parent(i))
            i += 1
        return out

    def _make_parent(self, level: int) -> Block:
        children = self._levels[level]
        self._levels[level] = []
        if level + 1 == len(self._levels):
            self._levels.append([])
        data = UnixFSData(
            dagpb.FILE,
            filesize=sum(c.content_size for c in children),
            blocksizes=tuple(c.content_size for c in children),
        )
        block_bytes = dagpb.encode_node([Link(c.cid, "", c.dag_size) for c in children], data)
        cid = dagpb.node_cid(block_bytes)
        dag_size = len(block_bytes) + sum(c.dag_size for c in children)
        self._levels[level + 1].append(DagLink(cid, data.filesize or 0, dag_size))
        return Block(cid, block_bytes)


def file_dag(data: bytes, chunk_size: int = CHUNK_SIZE,
             max_links: int = MAX_LINKS) -> tuple[DagLink, list[Block]]:
    """Whole-buffer convenience wrapper around :class:`FileBuilder`."""
    fb = FileBuilder(chunk_size, max_links)
    blocks = fb.feed(data)
    root, rest = fb.finish()
    return root, blocks + rest


@dataclass
class _Dir:
    entries: dict[str, _Dir | DagLink] = field(default_factory=dict)


def directory_dag(files: dict[str, DagLink]) -> tuple[DagLink, list[Block]]:
    """Build the directory tree for ``{canonical path: file root}``; return root and dir blocks.

    Raises :class:`LocalProtocolError` for an empty set, a name used as both file and folder,
    or a folder with more than :data:`MAX_DIRECTORY_ENTRIES` entries.
    """
    if not files:
        raise LocalProtocolError("a resource needs at least one file")
    root = _Dir()
    for path, link in files.items():
        parts = check_path(path).split("/")
        d = root
        for name in parts[:-1]:
            sub = d.entries.setdefault(name, _Dir())
            if not isinstance(sub, _Dir):
                raise LocalProtocolError(f"{name!r} is both a file and a folder in {path!r}")
            d = sub
        if parts[-1] in d.entries:
            raise LocalProtocolError(f"{path!r} is given twice or is also a folder")
        d.entries[parts[-1]] = link
    blocks: list[Block] = []
    return _encode_dir(root, blocks), blocks


def _encode_dir(d: _Dir, blocks: list[Block]) -> DagLink:
    if len(d.entries) > MAX_DIRECTORY_ENTRIES:
        raise LocalProtocolError(
            f"a folder may hold at most {MAX_DIRECTORY_ENTRIES} entries "
            f"(this one has {len(d.entries)}); split it into subfolders")
    links = []
    for name, entry in d.entries.items():
        sub = _encode_dir(entry, blocks) if isinstance(entry, _Dir) else entry
        links.append(Link(sub.cid, name, sub.dag_size))
    data = dagpb.encode_node(links, UnixFSData(dagpb.DIRECTORY))
    cid = dagpb.node_cid(data)
    blocks.append(Block(cid, data))
    return DagLink(cid, 0, len(data) + sum(link.tsize for link in links))


# -- reading DAGs back (the caller supplies block lookup) -------------------------------------

GetBlock = Callable[[bytes], bytes]


def iter_file_chunks(root: bytes, get_block: GetBlock, expected_size: int | None = None
                     ) -> Iterator[bytes]:
    """Yield a file's bytes chunk by chunk; checks the total against ``expected_size``.

    ``get_block`` must return verified bytes (the store verifies against the CID).
    """
    total = 0
    for chunk in iter_file_range(root, get_block, 0, _WHOLE_FILE):
        total += len(chunk)
        yield chunk
    if expected_size is not None and total != expected_size:
        raise RemoteProtocolError(f"file has {total} bytes, expected {expected_size}")


_WHOLE_FILE = 2**64  # an end offset past any file


def iter_file_range(root: bytes, get_block: GetBlock, start: int, end: int) -> Iterator[bytes]:
    """Yield the bytes ``[start, end)`` of the file at ``root``, reading only the blocks that
    cover them: ``blocksizes`` say how many bytes each child holds, so a seek in a 2 GiB video
    reads one node per tree level and the leaves it needs."""
    if start >= end:
        return
    stack: list[tuple[bytes, int]] = [(root, 0)]
    while stack:
        cid, offset = stack.pop()
        data = get_block(cid)
        if cid_codec(cid) == CID_RAW:
            lo, hi = max(start - offset, 0), min(end - offset, len(data))
            if lo < hi:
                yield data[lo:hi] if (lo, hi) != (0, len(data)) else data
            continue
        node = dagpb.decode_node(data)
        u = node.unixfs
        if u.type not in (dagpb.FILE, dagpb.RAW):
            raise RemoteProtocolError("expected a UnixFS file node")
        if u.data:
            lo, hi = max(start - offset, 0), min(end - offset, len(u.data))
            if lo < hi:
                yield u.data[lo:hi]
            offset += len(u.data)
        if node.links and len(u.blocksizes) != len(node.links):
            raise RemoteProtocolError("UnixFS blocksizes do not match the links")
        children = []
        for link, size in zip(node.links, u.blocksizes):
            if offset < end and offset + size > start:
                children.append((link.cid, offset))
            offset += size
        stack.extend(reversed(children))


def iter_dag_cids(root: bytes, get_block: GetBlock) -> Iterator[bytes]:
    """Every CID in a DAG (root first); dag-pb nodes are fetched and decoded to find links."""
    stack = [root]
    seen: set[bytes] = set()
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        yield cid
        if cid_codec(cid) == CID_DAG_PB:
            node = dagpb.decode_node(get_block(cid))
            stack.extend(link.cid for link in reversed(node.links))


def list_directory(root: bytes, get_block: GetBlock) -> dict[str, bytes]:
    """``{canonical path: file root CID}`` for a UnixFS directory tree; names are validated."""
    return dict(directory_files(root, get_block))


def directory_files(root: bytes, get_block: GetBlock) -> list[tuple[str, bytes]]:
    """Every ``(canonical path, file root CID)`` of a UnixFS directory tree, names validated.

    Unlike :func:`list_directory` this keeps what a directory built by another program may
    hold and a folder on disk cannot: two entries of one name, a name that is both a file and
    a folder (``protocol.paths.plan_writes`` decides what to do with them)."""
    out: list[tuple[str, bytes]] = []
    stack: list[tuple[str, bytes, int]] = [("", root, 0)]
    while stack:
        prefix, cid, depth = stack.pop()
        if cid_codec(cid) != CID_DAG_PB:
            raise RemoteProtocolError("a resource's content root must be a directory")
        node = dagpb.decode_node(get_block(cid))
        if node.unixfs.type != dagpb.DIRECTORY:
            raise RemoteProtocolError("a resource's content root must be a directory")
        for link in node.links:
            try:
                check_name(link.name)
            except LocalProtocolError as exc:
                raise RemoteProtocolError(f"unsafe name in directory: {exc}") from None
            path = f"{prefix}{link.name}"
            if cid_codec(link.cid) == CID_DAG_PB:
                sub = dagpb.decode_node(get_block(link.cid))
                if sub.unixfs.type == dagpb.DIRECTORY:
                    stack.append((path + "/", link.cid, depth + 1))
                    continue
            try:
                checked = check_path(path)  # deeper or longer than a resource path may be
            except LocalProtocolError as exc:
                raise RemoteProtocolError(f"unsafe path in directory: {exc}") from None
            out.append((checked, link.cid))
    return out
