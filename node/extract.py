"""Writing a resource's files to a folder without ever leaving that folder.

Paths were validated when the directory was decoded (protocol.paths); here we additionally
refuse to follow any symbolic link already present under the output folder, write each file to
a temporary name in its final folder and rename it into place only after its bytes verified
(blocks are hash-checked as they are read; the size is checked at the end).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from crypto import cid_to_str
from protocol import unixfs
from protocol.errors import ProtocolError
from protocol.paths import check_path

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


def write_files(home: Any, files: dict[str, bytes], out: Path, *, overwrite: bool,
                progress: Any = None) -> list[dict[str, Any]]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeError(f"cannot create {out}: {exc.strerror}") from None
    if out.is_symlink() or not out.is_dir():
        raise NodeError(f"{out} is not a folder")
    # Check every target first so a refusal leaves the folder untouched.
    for path in files:
        parts = check_path(path).split("/")
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
    for path, cid in sorted(files.items()):
        parts = path.split("/")
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
    return written
