"""Publishing from the browser: a multipart upload streamed to disk, then library.publish.

The request body is parsed as it arrives (python-multipart's streaming parser): form fields are
kept in memory with small limits; file parts go straight to a fresh folder under
``HOME/web-uploads`` with names in canonical form (protocol.paths.normalise), and the whole
upload is refused as soon as it passes the configured size limit.  The CSRF field must come
before the first file (browsers send fields in form order), so no file byte of a forged request
is ever written.  Once the whole body is in, its files move into the form's draft
(:mod:`.staging`), which keeps them if the form has an error; the upload folder is removed
whatever happens, and one left by a process that was killed (``<random>.<pid>``, the pid no
longer running) is removed when the web library next starts.  Nothing reaches the library
before the whole upload is on disk.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any, BinaryIO

import trio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from node import tools
from node.blockstore import process_alive
from node.errors import DiskFull, NodeError
from node.home import Home
from protocol import records, vocab
from protocol.errors import ProtocolError
from protocol.paths import BadPath, normalise

from . import auth
from .pages import human_size
from .staging import Draft

MAX_FIELD_BYTES = 16 * 1024     # one text field of the metadata form
MAX_FIELDS = 100
MAX_FILES = 200                 # files in one upload
LIST_FIELDS = ("educationalLevel", "isBasedOn", "fulfils")
EDITABLE = ("title", "description", "inLanguage", "license", "learningResourceType",
            "timeRequired", "supply", "classroom", "about", "keywords", "educationalLevel",
            "grade", "volume", "edition", "unit", "lesson")
TEXT_FIELDS = ("title", "description", "inLanguage", "license", "learningResourceType",
               "timeRequired", "supply", "classroom", "about", "keywords", "tool", "grade",
               "volume", "edition", "unit", "lesson")


class UploadError(Exception):
    def __init__(self, status: int, key: str, detail: str = "",
                 values: dict[str, Any] | None = None) -> None:
        super().__init__(key)
        self.status, self.key, self.detail, self.values = status, key, detail, values


class _Collector:
    """Callbacks of the multipart parser: runs in a worker thread, one chunk at a time."""

    def __init__(self, folder: Path, limit: int, session: auth.Session | None) -> None:
        self.folder, self.limit, self.session = folder, limit, session
        self.fields: dict[str, list[str]] = {}
        self.files: list[str] = []
        self.total = 0
        self.csrf_checked = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._name: str | None = None
        self._buf: bytearray | None = None
        self._out: BinaryIO | None = None

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished}

    def part_begin(self) -> None:
        self._headers, self._name, self._buf, self._out = {}, None, None, None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is None:
            if sum(len(v) for v in self.fields.values()) >= MAX_FIELDS:
                raise UploadError(400, "bad_upload", "too many fields")
            self._name, self._buf = name, bytearray()
            return
        if not self.csrf_checked:
            raise UploadError(403, "bad_csrf")
        fname = filename.decode("utf-8", "replace")
        if not fname:
            return  # an empty file input
        try:
            path = normalise(fname)
        except BadPath as exc:
            raise UploadError(400, "bad_filename", str(exc)) from None
        if any(p.startswith(".") for p in path.split("/")):
            raise UploadError(400, "bad_filename", fname)
        if path in self.files:
            raise UploadError(400, "bad_filename", f"{path} (twice)")
        if len(self.files) >= MAX_FILES:
            raise UploadError(400, "bad_upload", f"more than {MAX_FILES} files")
        dest = self.folder / path
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:  # e.g. "a" is a file and "a/b" is asked for
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise   # a full disk: publish_upload says so
            raise UploadError(400, "bad_filename", f"{path}: {exc.strerror}") from None
        self._out = os.fdopen(fd, "wb")
        self.files.append(path)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self.total += end - start
            if self.total > self.limit:
                raise UploadError(413, "too_big")
            self._out.write(data[start:end])
        elif self._buf is not None:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD_BYTES:
                raise UploadError(400, "bad_upload", "a form field is too long")

    def part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._buf is not None and self._name is not None:
            value = self._buf.decode("utf-8", "replace")
            if self._name == "csrf":
                if not auth.csrf_ok(self.session, value):
                    raise UploadError(403, "bad_csrf")
                self.csrf_checked = True
            else:
                self.fields.setdefault(self._name, []).append(value)
            self._buf = None

    def close(self, *, quiet: bool = False) -> None:
        """Close the file being written; ``quiet``: cleaning up, its data is thrown away."""
        if self._out is not None:
            out, self._out = self._out, None
            try:
                out.close()
            except OSError:
                if not quiet:
                    raise


def clean_stale(upload_dir: Path) -> int:
    """Remove upload folders of processes that no longer run (killed mid-upload); how many.

    Folders of a running process (another node on this home serving an upload now) are kept.
    """
    try:
        entries = list(upload_dir.iterdir())
    except FileNotFoundError:
        return 0
    n = 0
    for p in entries:
        _, _, pid = p.name.rpartition(".")
        if pid.isdigit() and process_alive(int(pid)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def form_meta(fields: dict[str, list[str]], teacher: str) -> dict[str, Any]:
    """The metadata map from the form fields (empty optional fields are left out)."""
    def one(k: str) -> str:
        return (fields.get(k) or [""])[0].strip()

    def listed(k: str) -> list[str]:
        items = [s.strip() for s in one(k).replace("，", ",").split(",")]
        return list(dict.fromkeys(s for s in items if s))

    meta: dict[str, Any] = {"creator": teacher}
    for k in ("title", "description", "inLanguage", "license", "learningResourceType",
              "timeRequired", "supply", "classroom"):
        if one(k):
            meta[k] = one(k)
    for k in ("about", "keywords"):
        if listed(k):
            meta[k] = listed(k)
    for k in LIST_FIELDS:
        values = list(dict.fromkeys(v.strip() for v in fields.get(k, []) if v.strip()))
        if values:
            meta[k] = values
    if tool := one("tool"):  # a draft of the text tools (node/web/drafts.py)
        # an unknown name stays text, which records.validate_meta refuses
        meta["tool"] = tools.provenance(tool) if tool in tools.RECIPES else tool
    meta.update(form_curriculum(one))
    if "grade" in meta and "educationalLevel" not in meta:
        meta["educationalLevel"] = [vocab.level_of_grade(meta["grade"])]
    return meta


def edit_changes(fields: dict[str, list[str]]) -> dict[str, Any]:
    """The metadata changes of the edit form: every editable field as sent (an emptied one is
    removed); author, lineage, requests fulfilled and tool stay as they were."""
    meta = form_meta(fields, "")
    return {k: meta.get(k) for k in EDITABLE}


def form_curriculum(one: Any) -> dict[str, Any]:
    """Textbook fields and class time from the form (``one(key)``: a field's text); a
    ProtocolError says what is wrong. Class time may be given in minutes (``40``)."""
    out: dict[str, Any] = {}
    if one("grade"):
        out["grade"] = vocab.parse_grade(one("grade"))
    if one("volume"):
        out["volume"] = vocab.parse_volume(one("volume"))
    if one("edition"):
        out["edition"] = one("edition")
    for part in ("unit", "lesson"):
        if one(part):
            out[part] = vocab.parse_part(one(part), part)
    minutes = one("timeRequired")
    if minutes.isdigit() and minutes.isascii() and 0 < int(minutes) < 10_000:
        out["timeRequired"] = f"PT{int(minutes)}M"
    return out


def form_values(fields: dict[str, list[str]]) -> dict[str, Any]:
    v: dict[str, Any] = {k: (fields.get(k) or [""])[0] for k in TEXT_FIELDS}
    for k in LIST_FIELDS:
        v[k] = fields.get(k, [])
    return v


def in_own_connection(home: Home, fn: Callable[[Home], dict[str, Any]]) -> dict[str, Any]:
    """``fn(home)`` with a connection of this thread's own (the event loop keeps using its
    own): publish and update run in a worker thread."""
    home.key()  # unlock here (may raise) so the thread never asks for a passphrase
    mine = home.reopen()
    try:
        return fn(mine)
    finally:
        mine.close()


Commit = Callable[[dict[str, list[str]], Draft], dict[str, Any]]


async def publish_upload(web: Any, request: Request, draft: Draft, commit: Commit
                         ) -> dict[str, Any]:
    """Receive the form into ``draft`` (unticked files leave it, new uploads join it), then
    ``commit(fields, draft)`` in a worker thread (publish or update).  Raises
    :class:`UploadError`; the draft keeps what was received either way."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(400, "bad_upload", "expected multipart/form-data")
    limit = web.upload_limit()
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 1024 * 1024:
        raise UploadError(413, "too_big", human_size(limit))
    folder = web.config.upload_dir / f"{secrets.token_hex(8)}.{os.getpid()}"
    collector = _Collector(folder / "files", limit, request.state.session.current)
    try:
        web.config.upload_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700)
        (folder / "files").mkdir(mode=0o700)
        parser = MultipartParser(params[b"boundary"], collector.callbacks())
        try:
            async with aclosing(request.stream()) as chunks:
                async for chunk in chunks:
                    if chunk:
                        await trio.to_thread.run_sync(parser.write, chunk)
            await trio.to_thread.run_sync(parser.finalize)
        except UploadError as exc:
            if exc.key == "too_big":
                exc.detail = human_size(limit)
            raise
        collector.close()
        if not collector.csrf_checked:
            raise UploadError(403, "bad_csrf")
        values = form_values(collector.fields)
        draft.state["values"] = values
        draft.keep_only(collector.fields.get("keep", []))
        try:
            await trio.to_thread.run_sync(draft.take, folder / "files", collector.files)
        except NotADirectoryError as exc:   # "a/b" sent while the draft has a file "a"
            raise UploadError(400, "bad_filename", str(exc), values) from None
        if not draft.has_files():
            raise UploadError(400, "no_files", values=values)
        try:
            return await trio.to_thread.run_sync(commit, collector.fields, draft)
        except ProtocolError as exc:
            raise UploadError(400, "bad_meta", str(exc), values) from None
        except DiskFull:
            raise UploadError(507, "disk_full", values=values) from None
        except NodeError as exc:
            raise UploadError(400, "bad_meta", str(exc), values) from None
    except FormParserError as exc:  # malformed multipart body
        raise UploadError(400, "bad_upload", str(exc)) from None
    except OSError as exc:   # the upload itself did not fit (the parts are removed below)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UploadError(507, "disk_full") from None
    except DiskFull:
        raise UploadError(507, "disk_full") from None
    finally:
        collector.close(quiet=True)
        await trio.to_thread.run_sync(shutil.rmtree, folder, True)
