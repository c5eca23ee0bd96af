"""The text inside teachers' files, for search: bounded extraction and the background indexer.

Teachers search for what they remember of a file ("认识钟表", a word on a slide), not only for
its title.  The text of local ``.pptx`` (python-pptx: slides, tables, notes), ``.docx``
(python-docx: paragraphs, tables), ``.xlsx`` (openpyxl, read-only: cell values), ``.pdf``
(pypdf: the text layer) and ``.txt``/``.md`` (UTF-8, else GB 18030) files goes into the
catalog's ``body`` column (node/catalog.py), by file CID in ``file_texts``.

Extraction is bounded: a file over :data:`MAX_FILE_BYTES` is not read; an Office file (a zip)
whose members would unpack to over :data:`MAX_UNZIPPED` or that has over :data:`MAX_MEMBERS`
members is refused before parsing (zip bombs); at most :data:`MAX_TEXT_CHARS` characters are
kept per file; each file has :data:`TIME_LIMIT` seconds, checked between pages, slides, rows
and paragraphs.  Any failure of a parser on a malformed file is recorded as that file's error
(its text is empty) and never stops the service.

:class:`TextIndexer` is a node service: it reacts to ``DatabaseChanged`` (an entry was indexed,
by the node or a CLI command) and ``TransfersChanged`` (content arrived) from node/events.py,
and works in short passes in a worker thread on connections of its own.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import trio

from crypto import cid_from_str
from protocol import unixfs
from protocol.errors import ProtocolError

from . import catalog, db, events
from .errors import NotFound, StoreError
from .home import Home, now_ms

log = logging.getLogger("schoolmesh.textindex")

MAX_FILE_BYTES = 64 * 1024 * 1024     # bigger files are not read for text
MAX_UNZIPPED = 256 * 1024 * 1024      # an Office file's members, unpacked
MAX_MEMBERS = 20_000                  # members of an Office file
MAX_TEXT_CHARS = 200_000              # characters kept per file
TIME_LIMIT = 15.0                     # seconds per file (checked between pieces)
PASS_SECONDS = 2.0                    # one pass of the indexer, then it looks at events again
REBUILD_CHUNK = 500                   # index rows rebuilt in one write transaction


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


class ExtractError(Exception):
    """This file's text cannot be read (malformed, too big, too slow)."""


class _Full(Exception):
    pass


class _Text:
    """Pieces of text within the character and time budget."""

    def __init__(self, time_limit: float) -> None:
        self.parts: list[str] = []
        self.chars = 0
        self.deadline = time.monotonic() + time_limit

    def add(self, piece: Any) -> None:
        if time.monotonic() > self.deadline:
            raise ExtractError("reading the text took too long")
        if piece is None:
            return
        s = str(piece).strip()
        if not s:
            return
        self.parts.append(s)
        self.chars += len(s) + 1
        if self.chars >= MAX_TEXT_CHARS:
            raise _Full

    def text(self) -> str:
        return "\n".join(self.parts)[:MAX_TEXT_CHARS]


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ExtractError(f"not a valid Office file: {exc}") from None
    if len(infos) > MAX_MEMBERS:
        raise ExtractError(f"more than {MAX_MEMBERS} parts")
    if sum(i.file_size for i in infos) > MAX_UNZIPPED:
        raise ExtractError(f"unpacks to more than {_mib(MAX_UNZIPPED)}")


def _docx(data: bytes, out: _Text) -> None:
    import docx
    d = docx.Document(io.BytesIO(data))
    for p in d.paragraphs:
        out.add(p.text)
    for t in d.tables:
        for row in t.rows:
            for cell in row.cells:
                out.add(cell.text)


def _pptx(data: bytes, out: _Text) -> None:
    import pptx
    pres = pptx.Presentation(io.BytesIO(data))
    for slide in pres.slides:
        for shape in _shapes(slide.shapes):
            if getattr(shape, "has_text_frame", False):
                out.add(shape.text_frame.text)
            if getattr(shape, "has_table", False):
                for row in shape.table.rows:
                    for cell in row.cells:
                        out.add(cell.text)
        if slide.has_notes_slide:
            out.add(slide.notes_slide.notes_text_frame.text
                    if slide.notes_slide.notes_text_frame is not None else None)


def _shapes(shapes: Iterable[Any], depth: int = 0) -> Iterator[Any]:
    for shape in shapes:
        yield shape
        if depth < 8 and getattr(shape, "shape_type", None) == 6:   # a group
            yield from _shapes(shape.shapes, depth + 1)


def _xlsx(data: bytes, out: _Text) -> None:
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for ws in wb.worksheets:
            out.add(ws.title)
            for row in ws.iter_rows(values_only=True):
                out.add(" ".join(str(v) for v in row if v is not None))
    finally:
        wb.close()


def _pdf(data: bytes, out: _Text) -> None:
    import pypdf
    reader = pypdf.PdfReader(io.BytesIO(data))
    for page in reader.pages:
        out.add(page.extract_text())


def _plain(data: bytes, out: _Text) -> None:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            out.add(data.decode(enc))
            return
        except UnicodeDecodeError:
            continue
    out.add(data.decode("utf-8", errors="replace"))


_READERS = {".docx": _docx, ".pptx": _pptx, ".xlsx": _xlsx, ".pdf": _pdf, ".txt": _plain,
            ".md": _plain}


def extract_text(data: bytes, name: str, *, time_limit: float = TIME_LIMIT) -> str:
    """The text of one file (by its name's suffix); ExtractError if it cannot be read."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    reader = _READERS.get(suffix)
    if reader is None:
        raise ExtractError(f"no text is read from {suffix or 'files without a suffix'}")
    if len(data) > MAX_FILE_BYTES:
        raise ExtractError(f"larger than {_mib(MAX_FILE_BYTES)}")
    if suffix in (".docx", ".pptx", ".xlsx"):
        _check_zip(data)
    out = _Text(time_limit)
    try:
        reader(data, out)
    except _Full:
        pass
    except ExtractError:
        raise
    except (Exception, RecursionError, MemoryError) as exc:   # parsers fail in many ways
        raise ExtractError(f"cannot read it: {type(exc).__name__}: {exc}"[:300]) from None
    return out.text()


# -- the indexer -------------------------------------------------------------------------------

def _read_file(home: Home, cid: bytes, size: int) -> bytes | None:
    """A file's bytes from the block store; None if a block is not here (yet)."""
    try:
        return b"".join(unixfs.iter_file_chunks(cid, home.blocks.get, size))
    except NotFound:
        return None
    except (ProtocolError, StoreError) as exc:
        raise ExtractError(f"stored content is damaged: {exc}") from None


def index_pass(home: Home, skip: set[int], *, seconds: float = PASS_SECONDS) -> bool:
    """One bounded pass; True if work may be left. Rows whose content is not all here are
    added to ``skip`` (looked at again after the next event)."""
    conn = home.conn
    end = time.monotonic() + seconds
    # 1. rows indexed before file text and curriculum existed: rebuild from the metadata
    while time.monotonic() < end:
        ids = [i for (i,) in conn.execute(
            "SELECT id FROM resources WHERE text_state = 0 LIMIT ?", (REBUILD_CHUNK,))]
        if not ids:
            break
        with db.write(conn):
            for res in ids:
                catalog.reindex(conn, res)
    else:
        return True
    # 2. local content (pinned: own, fetched, imported, seeded) whose text is not in yet
    below = 2**63 - 1
    while time.monotonic() < end:
        rows = conn.execute(
            "SELECT DISTINCT r.id, r.files FROM pins p JOIN resources r ON r.content = p.cid"
            " WHERE r.text_state = 1 AND r.retracted = 0 AND r.id < ?"
            " ORDER BY r.id DESC LIMIT 200", (below,)).fetchall()
        if not rows:
            return False
        below = rows[-1][0]
        for res, files_json in rows:
            if res in skip:
                continue
            if time.monotonic() >= end:
                return True
            if not _index_resource(home, res, json.loads(files_json)):
                skip.add(res)
    return True


def _index_resource(home: Home, res: int, files: list[dict[str, Any]]) -> bool:
    conn = home.conn
    found: list[tuple[bytes, str, str | None]] = []
    for f in files:
        if not catalog.has_text(f["path"]):
            continue
        cid = cid_from_str(f["cid"])
        if conn.execute("SELECT 1 FROM file_texts WHERE cid = ?", (cid,)).fetchone():
            continue
        if f["size"] > MAX_FILE_BYTES:
            found.append((cid, "", f"larger than {_mib(MAX_FILE_BYTES)}"))
            continue
        try:
            data = _read_file(home, cid, f["size"])
            if data is None:
                return False    # not all here yet
            found.append((cid, extract_text(data, f["path"]), None))
        except ExtractError as exc:
            log.info("no text from %s: %s", f["path"], exc)
            found.append((cid, "", str(exc)))
    with db.write(conn):
        conn.executemany("INSERT OR IGNORE INTO file_texts VALUES (?,?,?,?)",
                         [(c, t, e, now_ms()) for c, t, e in found])
        catalog.reindex(conn, res)
    return True


class TextIndexer:
    """The background service keeping the text inside local files in the search index."""

    def __init__(self, home: Home, bus: events.EventBus) -> None:
        self.home = home
        self.bus = bus
        self.passes = 0

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with self.bus.subscribe(events.DatabaseChanged, events.TransfersChanged) as sub:
            own = await trio.to_thread.run_sync(self.home.reopen)
            try:
                task_status.started()
                skip: set[int] = set()
                while True:
                    more = await trio.to_thread.run_sync(index_pass, own, skip)
                    self.passes += 1
                    if more:
                        await trio.sleep(0)
                        continue
                    await sub.wait()
                    skip.clear()
            finally:
                own.close()
