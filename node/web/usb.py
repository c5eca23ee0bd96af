"""USB bundles from the operator pages: which drives are mounted, and the export/import jobs
that run in the background while a page shows their progress (specs/web.md §1).

A job runs the same code as ``schoolmesh export`` / ``schoolmesh import`` (node/bundle.py,
node/bundle_import.py) in a worker thread, on a connection of its own (``Home.reopen``).
:class:`Jobs` is a service: ``serve`` owns the jobs' nursery (started by the web server), and
the route handlers hand it work with :meth:`Jobs.submit`.  One job runs at a time; when the
server stops, a running job is stopped at its next block (what it wrote is removed or rolled
back by the bundle code, as at Ctrl-C on the CLI).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from node.errors import NodeError
from protocol.errors import LocalProtocolError

log = logging.getLogger("schoolmesh.node")

MAX_JOBS_KEPT = 20           # finished jobs listed on the page (the oldest are forgotten)
MAX_FILES_LISTED = 200       # bundle files offered for import from one folder
# file systems that are never a USB drive nor a place for bundles
PSEUDO_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs",
             "pstore", "bpf", "debugfs", "tracefs", "mqueue", "hugetlbfs", "configfs",
             "fusectl", "binfmt_misc", "autofs", "rpc_pipefs", "nsfs", "efivarfs", "ramfs",
             "squashfs", "overlay", "tmpfs", "fuse.portal", "fuse.gvfsd-fuse"}
MEDIA_ROOTS = ("/media/", "/run/media/", "/mnt")


class JobStopped(Exception):
    """The server is stopping (or the operator cancelled): the job gives up."""


@dataclass
class Job:
    id: int
    kind: str                        # "export" | "import"
    where: str                       # the folder or file it writes/reads
    state: str = "running"           # running | done | failed
    phase: str = "checking"          # checking | exporting | importing
    done: int = 0                    # bytes of this phase
    total: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    stop: bool = False

    def progress(self, n: int) -> None:
        """The bundle code's progress callback (called in the worker thread)."""
        if self.stop:
            raise JobStopped("stopped")
        self.done += n

    def phase_to(self, phase: str, total: int | None) -> None:
        self.phase, self.done, self.total = phase, 0, total

    def percent(self) -> int | None:
        if self.state == "done":
            return 100
        if not self.total:
            return None
        return min(100, self.done * 100 // self.total)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "where": self.where, "state": self.state,
                "phase": self.phase, "done": self.done, "total": self.total,
                "percent": self.percent(), "result": self.result, "error": self.error}


class Jobs:
    """The background USB jobs of one web server."""

    def __init__(self) -> None:
        self.items: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._send, self._receive = trio.open_memory_channel[tuple[Job, Callable[[Job], Any]]](1)

    def running(self) -> Job | None:
        return next((j for j in self.items.values() if j.state == "running"), None)

    def submit(self, kind: str, where: str, work: Callable[[Job], dict[str, Any]]) -> Job:
        """Queue ``work(job)`` (run in a thread); NodeError if a job is running already."""
        if self.running() is not None:
            raise NodeError("a USB export or import is running already: wait until it ends")
        job = Job(next(self._ids), kind, where)
        try:
            self._send.send_nowait((job, work))
        except (trio.WouldBlock, trio.ClosedResourceError):
            raise NodeError("a USB export or import is running already: wait until it "
                            "ends") from None
        self.items[job.id] = job
        for old in sorted(self.items)[:-MAX_JOBS_KEPT]:
            if self.items[old].state != "running":
                del self.items[old]
        return job

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stop_on_exit)
            task_status.started()
            async with self._receive:
                async for job, work in self._receive:
                    nursery.start_soon(self._run, job, work)

    async def _stop_on_exit(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            for job in self.items.values():
                job.stop = True

    async def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        try:
            job.result = await trio.to_thread.run_sync(work, job)
            job.state = "done"
        except JobStopped:
            job.state, job.error = "failed", "stopped"
        except (NodeError, LocalProtocolError, OSError) as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug must not take the web server down: show it
            log.exception("USB job %s failed", job.id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"


# -- drives -----------------------------------------------------------------------------------

def _unescape(field_: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return (field_.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def _removable(device: str) -> bool:
    """True when the kernel says the block device (or its disk) is removable."""
    name = os.path.basename(os.path.realpath(device)) if device.startswith("/dev/") else ""
    if not name:
        return False
    for candidate in (name, name.rstrip("0123456789"), name.rsplit("p", 1)[0]):
        try:
            return Path(f"/sys/block/{candidate}/removable").read_text().strip() == "1"
        except OSError:
            continue
    return False


def drives(mounts_text: str, media_roots: tuple[str, ...] = MEDIA_ROOTS) -> list[dict[str, Any]]:
    """Mount points a bundle can go to, from the text of /proc/mounts: removable drives first,
    then other writable mounts under /media, /run/media or /mnt.  Pseudo file systems and
    read-only mounts are left out."""
    out = []
    seen = set()
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        device, point, fstype, options = parts[0], _unescape(parts[1]), parts[2], parts[3]
        if fstype in PSEUDO_FS or point in seen or "ro" in options.split(","):
            continue
        removable = _removable(device)
        under_media = point.startswith(media_roots)
        if not (removable or under_media):
            continue
        if not os.path.isdir(point) or not os.access(point, os.W_OK | os.X_OK):
            continue
        seen.add(point)
        out.append({"path": point, "device": device, "fstype": fstype, "removable": removable})
    out.sort(key=lambda d: (not d["removable"], d["path"]))
    return out


def mounted_drives() -> list[dict[str, Any]]:
    try:
        text = Path("/proc/mounts").read_text("utf-8", "replace")
    except OSError:
        return []
    return drives(text)


def folder(text: str) -> Path:
    """A folder the operator chose or typed: absolute, existing, writable."""
    text = (text or "").strip()
    if not text or "\x00" in text:
        raise NodeError("choose a drive or type the folder of the USB drive")
    path = Path(text)
    if not path.is_absolute():
        raise NodeError(f"{text}: give the full path of the folder (starting with /)")
    if not path.is_dir():
        raise NodeError(f"{text}: no such folder (is the drive plugged in and mounted?)")
    return path


def bundles_in(path: Path) -> list[dict[str, Any]]:
    """The bundle files (``*.car``) at the top of ``path``, newest first."""
    found = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.name.lower().endswith(".car") and not entry.name.startswith(".") \
                        and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found.append({"name": entry.name, "size": st.st_size, "mtime": st.st_mtime})
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror or exc}") from None
    found.sort(key=lambda f: (-f["mtime"], f["name"]))
    return found[:MAX_FILES_LISTED]


# -- the work, in a worker thread -------------------------------------------------------------

def export_work(home: Any, output: Path, *, communities: list[str], max_size: int | None
                ) -> Callable[[Job], dict[str, Any]]:
    """``schoolmesh export -o OUTPUT [--community C]... [--max-size N]`` as a job."""
    from node import bundle
    from node import community as ncommunity

    def work(job: Job) -> dict[str, Any]:
        h = home.reopen()
        try:
            schools = [sid for c in communities for sid in ncommunity.member_feeds_held(h, c)]
            if communities and not schools:
                raise NodeError("this node holds no feed of that community's schools yet")
            plan = bundle.plan_export(h, schools=schools, max_size=max_size)
            job.phase_to("exporting", plan.estimated_bytes)
            return bundle.write_export(h, plan, output, overwrite=False, progress=job.progress)
        finally:
            h.close()
    return work


def import_work(home: Any, files: list[Path]) -> Callable[[Job], dict[str, Any]]:
    """``schoolmesh import FILE...`` as a job."""
    from node.bundle_import import plan_import, run_import

    def work(job: Job) -> dict[str, Any]:
        h = home.reopen()
        try:
            job.phase_to("checking", sum(f.stat().st_size for f in files))
            plan = plan_import(h, files, progress=job.progress)
            with plan:
                job.phase_to("importing", plan.bytes_needed)
                return run_import(plan, job.progress)
        finally:
            h.close()
    return work
