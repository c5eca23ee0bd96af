"""Previews a phone browser can show: the pages of Office documents and PDFs as PNG images.

LibreOffice (headless) turns ``.pptx .docx .xlsx .ppt .doc`` (and the OpenDocument kinds) into
PDF; ``pdftoppm`` (poppler-utils) draws the first :data:`MAX_PAGES` pages as PNG.  Both run in
the background, one file at a time (old school computers), each step under a time limit
(the whole process group is killed when it passes).  Results are derived data, cached under
``HOME/previews/<file CID>/`` (a failure as ``<CID>.failed``) and never part of a resource's
signed content: the same file in any resource shares one preview, and deleting the folder
only costs the time to make them again.  Video formats browsers cannot play are named here
so the resource page can say so; where ffmpeg is installed, the same worker converts such a
video to an MP4 (H.264/AAC, at most 480 lines) for viewing, kept in the same cache.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import trio

OFFICE_SUFFIXES = frozenset({".pptx", ".ppt", ".docx", ".doc", ".xlsx", ".xls", ".odt",
                             ".odp", ".ods", ".rtf"})
PDF_SUFFIX = ".pdf"
# containers and codecs that phone and desktop browsers do not play
UNPLAYABLE_VIDEO = frozenset({".avi", ".wmv", ".flv", ".mkv", ".mov", ".3gp", ".rmvb", ".rm",
                              ".mpg", ".mpeg", ".vob", ".asf", ".ts"})
MAX_VIDEO_BYTES = 2 * 1024**3      # larger videos are not converted
VIDEO_SECONDS = 45 * 60            # ffmpeg, one video, on an old computer
VIDEO_LINES = 480
MAX_PAGES = 30                     # pages drawn per document
MAX_INPUT_BYTES = 200 * 1024**2    # larger documents get no preview
CONVERT_SECONDS = 180              # LibreOffice, one document
RASTER_SECONDS = 120               # pdftoppm, all pages of one document
PAGE_PIXELS = 1000                 # the longer side of a page image (sharp on a phone, small)
MAX_CACHE_BYTES = 2 * 1024**3     # previews kept; the least recently made go first
QUEUE = 64                         # previews waiting; more are refused ("try again")
KILL_GRACE_SECONDS = 5


def kind(path: str) -> str | None:
    """``"pages"`` (Office or PDF), ``"unplayable"`` (a video browsers cannot play), or None."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in OFFICE_SUFFIXES or suffix == PDF_SUFFIX:
        return "pages"
    if suffix in UNPLAYABLE_VIDEO:
        return "unplayable"
    return None


def available(path: str) -> bool:
    """Whether this node has the programs a preview of ``path`` needs."""
    if kind(path) == "unplayable":
        return shutil.which("ffmpeg") is not None
    if shutil.which("pdftoppm") is None:
        return False
    return PurePosixPath(path).suffix.lower() == PDF_SUFFIX or _soffice() is not None


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


async def _run(argv: list[str], seconds: float, cwd: Path) -> bool:
    """Run ``argv`` in a process group of its own; False if it failed or took too long (then
    the whole group is killed: LibreOffice starts helper processes)."""
    async def kill_group(proc: trio.Process) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            with trio.move_on_after(KILL_GRACE_SECONDS):
                await proc.wait()
                return

    with trio.move_on_after(seconds):
        done = await trio.run_process(argv, cwd=str(cwd), check=False, start_new_session=True,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, deliver_cancel=kill_group,
                                      env={**os.environ, "HOME": str(cwd)})
        return done.returncode == 0
    return False


class Previews:
    """The preview cache and its one background worker (:meth:`serve`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._send, self._receive = trio.open_memory_channel[tuple[str, str, Any]](QUEUE)
        self.waiting: set[str] = set()

    def status(self, cid: str) -> dict[str, Any]:
        """``{"state": "ready", "pages": n, "total": t}``, ``{"state": "failed"}``,
        ``{"state": "pending"}`` (queued or being made) or ``{"state": "none"}``."""
        try:
            info = json.loads((self.root / cid / "info.json").read_text("utf-8"))
            return {"state": "ready", **info}
        except (OSError, ValueError):
            pass
        if (self.root / f"{cid}.failed").exists():
            return {"state": "failed"}
        return {"state": "pending" if cid in self.waiting else "none"}

    def video_file(self, cid: str) -> Path | None:
        p = self.root / cid / "video.mp4"
        return p if p.is_file() else None

    def page_file(self, cid: str, n: int) -> Path | None:
        p = self.root / cid / f"page-{n}.png"
        return p if p.is_file() else None

    def request(self, cid: str, path: str, read: Callable[[], Iterator[bytes]]) -> dict[str, Any]:
        """The status of ``cid``'s preview, queueing it if it is not made yet; ``read`` gives
        the file's bytes (called in the worker).  ``{"state": "busy"}`` if the queue is full."""
        st = self.status(cid)
        if st["state"] != "none":
            return st
        try:
            self._send.send_nowait((cid, PurePosixPath(path).suffix.lower(), read))
        except trio.WouldBlock:
            return {"state": "busy"}
        self.waiting.add(cid)
        return {"state": "pending"}

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Make queued previews one at a time, for as long as the web library runs."""
        await trio.to_thread.run_sync(self._clean_tmp)
        task_status.started()
        async for cid, suffix, read in self._receive:
            try:
                await self._make(cid, suffix, read)
            finally:
                self.waiting.discard(cid)

    def trim(self, limit: int, keep: str | None = None) -> int:
        """Remove the oldest previews (not ``keep``) until the cache holds at most ``limit``
        bytes; how many were removed.  They are made again when asked for."""
        made = []
        for d in self.root.iterdir() if self.root.is_dir() else ():
            if d.is_dir() and (d / "info.json").is_file():
                size = sum(f.stat().st_size for f in d.iterdir())
                made.append(((d / "info.json").stat().st_mtime, d.name, size))
        total = sum(size for _, _, size in made)
        n = 0
        for _, name, size in sorted(made):
            if total <= limit:
                break
            if name != keep:
                shutil.rmtree(self.root / name, ignore_errors=True)
                total -= size
                n += 1
        return n

    def _clean_tmp(self) -> None:
        if self.root.is_dir():
            for p in self.root.glob("tmp-*"):
                shutil.rmtree(p, ignore_errors=True)

    async def _make(self, cid: str, suffix: str, read: Callable[[], Iterator[bytes]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / f"tmp-{secrets.token_hex(6)}"
        work.mkdir()
        try:
            if suffix in UNPLAYABLE_VIDEO:
                ok = await self._video(work, suffix, read)
            else:
                ok = await self._pages(work, suffix, read)
            if ok:
                await trio.to_thread.run_sync(os.rename, work / "out", self.root / cid)
                await trio.to_thread.run_sync(self.trim, MAX_CACHE_BYTES, cid)
            else:
                (self.root / f"{cid}.failed").write_text("no preview\n")
        except OSError:
            (self.root / f"{cid}.failed").write_text("no preview\n")
        finally:
            await trio.to_thread.run_sync(shutil.rmtree, work, True)

    async def _video(self, work: Path, suffix: str, read: Callable[[], Iterator[bytes]]) -> bool:
        src = work / f"input{suffix}"
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None or not await trio.to_thread.run_sync(_copy, read, src,
                                                                MAX_VIDEO_BYTES):
            return False
        out = work / "out"
        out.mkdir()
        ok = await _run([ffmpeg, "-nostdin", "-v", "error", "-threads", "1", "-i", str(src),
                         "-vf", f"scale=-2:'min({VIDEO_LINES},ih)'", "-c:v", "libx264",
                         "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p",
                         "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart",
                         str(out / "video.mp4")], VIDEO_SECONDS, work)
        if not ok or not (out / "video.mp4").is_file():
            return False
        (out / "info.json").write_text(json.dumps({"pages": 0, "total": 0, "video": True}))
        return True

    async def _pages(self, work: Path, suffix: str, read: Callable[[], Iterator[bytes]]) -> bool:
        src = work / f"input{suffix}"
        if not await trio.to_thread.run_sync(_copy, read, src, MAX_INPUT_BYTES):
            return False
        pdf = src
        if suffix != PDF_SUFFIX:
            soffice = _soffice()
            if soffice is None:
                return False
            profile = (self.root / "libreoffice-profile").resolve()
            ok = await _run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless",
                             "--norestore", "--nologo", "--convert-to", "pdf", "--outdir",
                             str(work), str(src)], CONVERT_SECONDS, work)
            pdf = work / "input.pdf"
            if not ok or not pdf.is_file():
                return False
        out = work / "out"
        out.mkdir()
        if not await _run(["pdftoppm", "-png", "-f", "1", "-l", str(MAX_PAGES), "-scale-to",
                           str(PAGE_PIXELS), str(pdf), str(out / "p")], RASTER_SECONDS, work):
            return False
        made = sorted(out.glob("p-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        if not made:
            return False
        for i, p in enumerate(made, 1):
            p.rename(out / f"page-{i}.png")
        total = await _page_count(pdf, work) or len(made)
        (out / "info.json").write_text(json.dumps({"pages": len(made), "total": total}))
        return True


def _copy(read: Callable[[], Iterator[bytes]], dest: Path, limit: int) -> bool:
    """Write the file's bytes to ``dest``; False if it is larger than ``limit``."""
    n = 0
    with open(dest, "wb") as out:
        for chunk in read():
            n += len(chunk)
            if n > limit:
                return False
            out.write(chunk)
    return True


async def _page_count(pdf: Path, work: Path) -> int | None:
    if shutil.which("pdfinfo") is None:
        return None
    with trio.move_on_after(30):
        done = await trio.run_process(["pdfinfo", str(pdf)], capture_stdout=True, check=False,
                                      stderr=subprocess.DEVNULL, cwd=str(work))
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("Pages:"):
                return int(line.split()[1])
    return None
