"""Content-addressed block store: big blocks as files, small blocks packed in SQLite.

Big blocks (>= 256 KiB: the 1 MiB chunks of files) are one file each,
``blocks/<2 chars>/<base32 name>``, the shard being the next-to-last two characters of the name
(flatfs ``next-to-last/2``).  Small blocks (directory and tree nodes, small files, the tails of
big ones) go into ``blocks/small.db``: on these disks creating a file costs about 1 ms, which
caps publishing thousands of small files at ~20 MiB/s, while one SQLite transaction stores them
at over 100 MiB/s.

Durability: a block is written to ``blocks/tmp/``, then renamed into place.  Inside a
:meth:`BlockStore.batch` nothing is fsynced per file (one fsync per small file is what limits
throughput on these disks); ``commit`` makes the whole batch durable with one ``syncfs(2)``
(per-file fsync where that is unavailable) before the caller commits the database rows that
make the blocks visible.  A crash before that leaves only unreferenced files, never a
referenced block that is missing.

File blocks whose size is a multiple of 4 KiB (every 1 MiB chunk) are written with
``O_DIRECT`` from an aligned buffer each writer thread reuses, past the page cache: a fetch of a
large library neither evicts what the school's PC has in memory nor leaves hundreds of MiB of
dirty pages for one final sync, and the kernel does not copy every byte into freshly allocated
page-cache pages (the largest cost of a 256 MiB fetch on loopback, 0.64 of 1.4 CPU-seconds on
these virtual machines, whose fresh pages fault in the hypervisor).  A filesystem that refuses
``O_DIRECT`` (tmpfs, some FUSE mounts) gets ordinary writes from then on.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from crypto import BadCID, cid_to_str, verify_block

from .db import disk_nearly_full, is_full
from .errors import CorruptBlock, DiskFull, NotFound, StoreError

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _syncfs = _libc.syncfs
    # Start writeback of a big block at once, so the final sync has little left to wait for.
    _sync_file_range = _libc.sync_file_range
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
except (OSError, AttributeError):
    _syncfs = _sync_file_range = None
_SYNC_FILE_RANGE_WRITE = 2
_EARLY_WRITEBACK_MIN = 256 * 1024
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_DIRECT_ALIGN = 4096                 # buffer address and length of an O_DIRECT write
_direct_buffers = threading.local()  # one aligned buffer per writer thread, reused
SMALL_BLOCK_MAX = 256 * 1024 - 1     # blocks up to this size live in small.db
_SMALL_FLUSH_BYTES = 8 * 1024 * 1024  # write pending small blocks in transactions of ~8 MiB
# File blocks are written by one helper thread while the caller hashes the next chunk (both
# release the GIL); at most this many wait in memory (8 MiB with 1 MiB chunks).
_MAX_PENDING_WRITES = 8
LOCK_FILE = "gc.lock"   # flock: shared while unpinned blocks are written, exclusive for gc
_SMALL_SCHEMA = ("CREATE TABLE IF NOT EXISTS small (id INTEGER PRIMARY KEY, "
                 "cid BLOB NOT NULL UNIQUE, data BLOB NOT NULL)")


def _name(cid: bytes) -> str:
    return base64.b32encode(cid).decode("ascii").rstrip("=").lower()


def _cid_of_name(name: str) -> bytes:
    pad = "=" * (-len(name) % 8)
    return base64.b32decode(name.upper() + pad)


class Batch:
    """Blocks written but not yet durable; see :meth:`BlockStore.batch`."""

    def __init__(self, store: BlockStore, created: list[bytes] | None = None) -> None:
        self.store = store
        self.written: list[Path] = []
        self.dirs: set[Path] = set()
        self.bytes_written = 0
        self.small: dict[bytes, bytes] = {}
        self.small_bytes = 0
        # blocks this batch added (the caller removes them again if it fails)
        self.created: list[bytes] = [] if created is None else created
        self._writer: ThreadPoolExecutor | None = None
        self._pending: deque[Future[str | None]] = deque()

    def _queue_file(self, cid: bytes, data: bytes) -> None:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="schoolmesh-blocks")
        self._pending.append(self._writer.submit(self.store._write_file, cid, data))
        while len(self._pending) > _MAX_PENDING_WRITES:
            self._collect(self._pending.popleft())

    def _collect(self, fut: Future[str | None]) -> None:
        path = fut.result()  # re-raises StoreError from the writer thread
        if path is not None:
            self.written.append(Path(path))
            self.dirs.add(Path(path).parent)
            self.created.append(_cid_of_name(Path(path).name))

    def drain(self) -> None:
        """Wait for every queued file write; raise the first error."""
        try:
            while self._pending:
                self._collect(self._pending.popleft())
        finally:
            if self._writer is not None and not self._pending:
                self._writer.shutdown(wait=True)
                self._writer = None

    def abort(self) -> None:
        """Stop after an error: wait for the writer thread; ``created`` then lists every block
        the batch added (a publish or import removes them again: node/gc.py
        ``discard_unpinned``, so a full disk keeps no pieces)."""
        for fut in self._pending:
            fut.cancel()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        for fut in self._pending:   # files written before the error, not collected yet
            if fut.done() and not fut.cancelled() and fut.exception() is None and fut.result():
                self.created.append(_cid_of_name(Path(fut.result()).name))
        self._pending.clear()
        for cid in self.small:      # never written
            self.created.remove(cid)
        self.small.clear()

    def put(self, cid: bytes, data: bytes) -> bool:
        """Store a block (verified against ``cid``); False if it was already there."""
        verify_block(cid, data)  # never store what does not match its CID
        return self.store._put(cid, data, self)

    def put_trusted(self, cid: bytes, data: bytes) -> bool:
        """Store a block whose CID the caller has just computed from these very bytes."""
        return self.store._put(cid, data, self)

    def flush_small(self) -> None:
        """Write pending small blocks in one short SQLite transaction (durable on return)."""
        if self.small:
            self.store._write_small(self.small.items())
            self.small.clear()
            self.small_bytes = 0

    def commit(self) -> None:
        """Make every block of the batch durable."""
        self.drain()
        self.flush_small()
        if not self.written:
            return
        if _syncfs is not None and len(self.written) > 1:
            fd = os.open(self.store.root, os.O_RDONLY)
            try:
                if _syncfs(fd) != 0:
                    err = ctypes.get_errno()
                    raise StoreError(f"syncfs failed: {os.strerror(err)}")
            finally:
                os.close(fd)
        else:
            for path in self.written:
                _fsync_path(path)
            for d in self.dirs:
                _fsync_path(d)
        self.written.clear()
        self.dirs.clear()


class WriteLock:
    """The shared lock of :meth:`BlockStore.writing`; :meth:`alone` converts it to exclusive
    for a moment if no other writer (nor gc) holds it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @contextmanager
    def alone(self) -> Iterator[bool]:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_SH)


def process_alive(pid: int) -> bool:
    """True if a process of this id runs (temp names carry the writer's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlockStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self._tmp_prefix = f"{self.tmp}/"
        self._tmp_suffix = f".{os.getpid()}.tmp"
        self._shards: set[str] = set()  # shard folders known to exist (saves a mkdir a block)
        self._db: sqlite3.Connection | None = None
        self._direct = bool(_O_DIRECT)  # False once the filesystem refused O_DIRECT

    def _small_db(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                db = sqlite3.connect(self.root / "small.db", timeout=30, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA busy_timeout = 30000")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = FULL")
                db.execute(_SMALL_SCHEMA)
            except sqlite3.Error as exc:
                if is_full(exc) or disk_nearly_full(self.root):
                    raise DiskFull() from exc
                raise StoreError(f"cannot open the block database: {exc}") from exc
            self._db = db
        return self._db

    def _write_small(self, items: object) -> None:
        db = self._small_db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR IGNORE INTO small (cid, data) VALUES (?, ?)", items)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if "full" in str(exc):
                raise DiskFull() from exc
            raise StoreError(f"cannot write to the block database: {exc}") from exc

    def _get_small(self, cid: bytes) -> bytes | None:
        row = self._small_db().execute("SELECT data FROM small WHERE cid = ?", (cid,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def create(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._small_db()
        (self.root / LOCK_FILE).touch()

    def clean_tmp(self) -> int:
        """Remove temp files left by a crashed writer; returns how many.

        Temp names end in ``.<pid>.tmp``; files of a process that is still running (another
        schoolmesh command publishing right now) are left alone.
        """
        n = 0
        try:
            entries = list(self.tmp.iterdir())
        except FileNotFoundError:
            return 0
        for p in entries:
            parts = p.name.rsplit(".", 2)
            if len(parts) == 3 and parts[1].isdigit() and process_alive(int(parts[1])):
                continue
            try:
                p.unlink()
                n += 1
            except FileNotFoundError:
                pass
        return n

    def path(self, cid: bytes) -> Path:
        name = _name(cid)
        return self.root / name[-3:-1] / name

    def has(self, cid: bytes) -> bool:
        return self.path(cid).exists() or self._get_small(cid) is not None

    def is_small(self, cid: bytes) -> bool:
        """True if the block is kept in small.db (tests and repair tools need to know)."""
        return self._get_small(cid) is not None

    @contextmanager
    def batch(self, created: list[bytes] | None = None) -> Iterator[Batch]:
        """Write blocks; on normal exit they are durable. On error, nothing is referenced yet;
        ``created`` lists what the batch added, for the caller to remove (gc would)."""
        self.clean_tmp()
        b = Batch(self, created)
        try:
            yield b
            b.commit()
        except BaseException:
            b.abort()
            raise

    def put(self, cid: bytes, data: bytes) -> bool:
        with self.batch() as b:
            return b.put(cid, data)

    def _put(self, cid: bytes, data: bytes, batch: Batch) -> bool:
        if len(data) <= SMALL_BLOCK_MAX:
            if cid in batch.small or self._get_small(cid) is not None:
                return False
            batch.small[cid] = bytes(data)
            batch.created.append(cid)
            batch.small_bytes += len(data)
            if batch.small_bytes >= _SMALL_FLUSH_BYTES:
                batch.flush_small()
            return True
        if self.path(cid).exists():
            return False
        batch._queue_file(cid, data)
        return True

    def _write_file(self, cid: bytes, data: bytes) -> str | None:
        """Write one file block (temp + rename); its path, or None if it was already there.
        Runs in the batch's writer thread."""
        name = _name(cid)
        shard = f"{self.root}/{name[-3:-1]}"
        path = f"{shard}/{name}"
        if os.path.exists(path):
            return None
        tmp = self._tmp_prefix + name + self._tmp_suffix
        try:
            if shard not in self._shards:
                os.makedirs(shard, exist_ok=True)
                self._shards.add(shard)
            if not self._write_direct(tmp, data):
                self._write_buffered(tmp, data)
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull() from exc
            raise StoreError(f"cannot write block {name}: {exc.strerror}") from exc
        return path

    @staticmethod
    def _write_buffered(tmp: str, data: bytes) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if _sync_file_range is not None and len(data) >= _EARLY_WRITEBACK_MIN:
                _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)
        finally:
            os.close(fd)

    def _write_direct(self, tmp: str, data: bytes) -> bool:
        """Write ``tmp`` with O_DIRECT if ``data`` is whole pages and this store may; False if
        not written that way (not whole pages, or the filesystem refuses O_DIRECT: then not
        for this store any more), and the caller writes it the ordinary way, truncating what is
        there.  Other errors raise."""
        if not self._direct or len(data) % _DIRECT_ALIGN:
            return False
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | _O_DIRECT,
                         0o644)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._direct = False
            return False
        try:
            buf = getattr(_direct_buffers, "buf", None)
            if buf is None or len(buf) < len(data):
                buf = _direct_buffers.buf = mmap.mmap(-1, max(len(data), 1024 * 1024))
            buf[:len(data)] = data
            with memoryview(buf) as whole, whole[:len(data)] as view:
                written = os.write(fd, view)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            written = -1
        finally:
            os.close(fd)
        if written != len(data):   # refused, or a short write: not this way again
            self._direct = False
            return False
        return True

    def get(self, cid: bytes, *, verify: bool = True) -> bytes:
        try:
            data = self.path(cid).read_bytes()
        except FileNotFoundError:
            small = self._get_small(cid)
            if small is None:
                raise NotFound(f"block {cid_to_str(cid)} is not in the local store") from None
            data = small
        except OSError as exc:
            raise StoreError(f"cannot read block {cid_to_str(cid)}: {exc.strerror}") from exc
        if verify:
            try:
                verify_block(cid, data)
            except BadCID:
                raise CorruptBlock(
                    f"block {cid_to_str(cid)} is corrupted on disk (run 'schoolmesh verify')"
                ) from None
        return data

    def delete(self, cid: bytes) -> int:
        """Remove a block (garbage collection, a corrupt copy before repair); the bytes freed
        (0 if it was not there). Callers make sure no pin needs it."""
        path = self.path(cid)
        try:
            size = path.stat().st_size
            path.unlink()
            return size
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot delete block {cid_to_str(cid)}: {exc.strerror}") from exc
        db = self._small_db()
        row = db.execute("SELECT length(data) FROM small WHERE cid = ?", (cid,)).fetchone()
        if row is None:
            return 0
        try:
            db.execute("DELETE FROM small WHERE cid = ?", (cid,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete block {cid_to_str(cid)}: {exc}") from exc
        return int(row[0])

    def delete_many(self, cids: list[bytes]) -> int:
        """Remove blocks (garbage collection); the bytes freed."""
        freed = 0
        small = []
        for cid in cids:
            path = self.path(cid)
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except FileNotFoundError:
                small.append(cid)
            except OSError as exc:
                raise StoreError(f"cannot delete block {cid_to_str(cid)}: {exc.strerror}") \
                    from exc
        db = self._small_db()
        try:
            db.execute("BEGIN IMMEDIATE")
            for i in range(0, len(small), 500):
                part = small[i:i + 500]
                marks = ", ".join("?" * len(part))
                (n,) = db.execute(f"SELECT COALESCE(SUM(length(data)), 0) FROM small WHERE cid "
                                  f"IN ({marks})", part).fetchone()
                db.execute(f"DELETE FROM small WHERE cid IN ({marks})", part)
                freed += int(n)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"cannot delete blocks: {exc}") from exc
        return freed

    def sizes(self) -> Iterator[tuple[bytes, int, float | None]]:
        """(CID, stored bytes, modification time or None for small blocks) of every block."""
        for cid, n in self._small_db().execute("SELECT cid, length(data) FROM small").fetchall():
            yield cid, n, None
        for shard in os.scandir(self.root):
            if shard.name == "tmp" or not shard.is_dir():
                continue
            for e in os.scandir(shard.path):
                try:
                    cid = _cid_of_name(e.name)
                    st = e.stat()
                except (ValueError, OSError):
                    continue
                yield cid, st.st_size, st.st_mtime

    def small_watermark(self) -> int:
        """The highest row id of small.db: rows above it were written later (gc keeps them)."""
        return int(self._small_db().execute("SELECT COALESCE(MAX(id), 0) FROM small")
                   .fetchone()[0])

    def small_ids_above(self, mark: int) -> set[bytes]:
        return {c for (c,) in self._small_db().execute("SELECT cid FROM small WHERE id > ?",
                                                       (mark,))}

    @contextmanager
    def writing(self) -> Iterator[WriteLock]:
        """Held (shared) while blocks are written that no pin references yet (publish,
        import): garbage collection (exclusive) waits for no one and refuses to run then."""
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield WriteLock(fd)
        finally:
            os.close(fd)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Exclusive: no publish or import is storing blocks (StoreError if one is)."""
        try:
            with self._lock(fcntl.LOCK_EX | fcntl.LOCK_NB):
                yield
        except BlockingIOError:
            raise StoreError("a publish or import is storing blocks right now; run gc again "
                             "when it is done") from None

    @contextmanager
    def _lock(self, how: int) -> Iterator[None]:
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            os.close(fd)

    def __iter__(self) -> Iterator[bytes]:
        """Every stored CID (unordered)."""
        for (cid,) in self._small_db().execute("SELECT cid FROM small").fetchall():
            yield cid
        for shard in self.root.iterdir():
            if shard.name == "tmp" or not shard.is_dir():
                continue
            for p in shard.iterdir():
                try:
                    yield _cid_of_name(p.name)
                except ValueError:
                    continue

