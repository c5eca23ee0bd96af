"""Writing a resource's files to a folder without ever leaving that folder.

Paths were validated when the directory was decoded (protocol.paths); before anything is
written the whole list is planned for FAT/exFAT/NTFS (``protocol.paths.plan_writes``): names
those refuse or that collide are an error, or with ``safe_names`` are written renamed.  We
also refuse to follow any symbolic link already present under the output folder, write each
file to a temporary name in its final folder and rename it into place only after its bytes
verified (blocks are hash-checked as they are read; the size is checked at the end).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from crypto import cid_to_str
from protocol import unixfs
from protocol.errors import ProtocolError
from protocol.paths import check_path, plan_writes

from .errors import NodeError, StoreError


def _safe_dir(out: Path, parts: list[str]) -> Path:
    """Create/enter each folder under ``out``, refusing symlinks and non-folders."""
    d = out
    for name in parts:
        d = d / name
        try:
            st = d.lstat()
        except FileNotFoundError:
            d.mkdir()
            continue
        if stat.S_ISLNK(st.st_mode):
            raise NodeError(f"{d} is a symbolic link; refusing to write through it")
        if not stat.S_ISDIR(st.st_mode):
            raise NodeError(f"{d} exists and is not a folder")
    return d


def write_files(home: Any, files: list[tuple[str, bytes]], out: Path, *, overwrite: bool,
                safe_names: bool = False, progress: Any = None
                ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Write ``(resource path, file root CID)`` pairs under ``out``; return the files written
    and the renames made (``[{"path", "written_as"}]``, empty unless ``safe_names``)."""
    for path, _ in files:
        check_path(path)
    plan = plan_writes([path for path, _ in files])
    if plan.conflicts and not safe_names:
        raise NodeError(f"these file names cannot all be written on USB sticks and Windows "
                        f"(FAT/exFAT/NTFS): {plan.describe()}; nothing was written (use "
                        f"--safe-names to write renamed copies)")
    jobs = [(path, target, cid) for (path, target), (_, cid) in zip(plan.targets, files)]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeError(f"cannot create {out}: {exc.strerror}") from None
    if out.is_symlink() or not out.is_dir():
        raise NodeError(f"{out} is not a folder")
    # Check every target first so a refusal leaves the folder untouched.
    for _, target_path, _ in jobs:
        parts = check_path(target_path).split("/")
        d = out
        for name in parts[:-1]:
            d = d / name
            if d.is_symlink():
                raise NodeError(f"{d} is a symbolic link; refusing to write through it")
            if d.exists() and not d.is_dir():
                raise NodeError(f"{d} exists and is not a folder")
        target = d / parts[-1]
        if target.is_symlink():
            raise NodeError(f"{target} is a symbolic link; refusing to write through it")
        if target.exists() and not overwrite:
            raise NodeError(f"{target} already exists (use --overwrite to replace it)")
    written = []
    for path, target_path, cid in sorted(jobs):
        parts = target_path.split("/")
        folder = _safe_dir(out, parts[:-1])
        target = folder / parts[-1]
        tmp = folder / f".{parts[-1]}.schoolmesh-{os.getpid()}.part"
        size = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as fh:
                for chunk in unixfs.iter_file_chunks(cid, home.blocks.get):
                    fh.write(chunk)
                    size += len(chunk)
                    if progress:
                        progress(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
            if target.is_symlink():
                raise NodeError(f"{target} became a symbolic link; refusing to write")
            os.replace(tmp, target)
        except BaseException as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            if isinstance(exc, ProtocolError):
                raise NodeError(f"cannot read {path}: {exc}") from None
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write {target}: {exc.strerror}") from None
            raise
        written.append({"path": path, "cid": cid_to_str(cid), "size": size})
        if target_path != path:
            written[-1]["written_as"] = target_path
    renamed = [{"path": p, "written_as": t}
               for p, t in sorted(plan.renamed, key=lambda pt: pt[0].encode("utf-8"))]
    return written, renamed
