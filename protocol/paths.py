"""File names inside a resource: the one place canonical form is applied (specs/content.md §4).

A resource path is NFC-normalised Unicode, components joined by "/", never empty, never ".",
"..", absolute, containing NUL, backslash or control characters, nor a Windows device name, so
extracting a resource can never write outside the chosen folder on any school's computer.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import LocalProtocolError

MAX_NAME_BYTES = 255          # per component: the common filesystem limit
MAX_PATH_BYTES = 1024         # whole relative path
MAX_DEPTH = 32                # folder levels inside one resource
_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


class BadPath(LocalProtocolError):
    """A file name that is not allowed in a resource."""


def check_name(name: str) -> str:
    """Validate one path component (already NFC); return it."""
    if not name:
        raise BadPath("empty file name")
    if name in (".", ".."):
        raise BadPath(f"file name {name!r} is not allowed")
    if "/" in name or "\\" in name:
        raise BadPath(f"file name {name!r} contains a path separator")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadPath(f"file name {name!r} contains a control character")
    if _DEVICE.match(name):
        raise BadPath(f"file name {name!r} is a reserved device name")
    if name != unicodedata.normalize("NFC", name):
        raise BadPath(f"file name {name!r} is not NFC-normalised")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadPath(f"file name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    return name


def normalise(path: str) -> str:
    """Canonical form of a relative path given by a local user: NFC, "/" separators."""
    if "\0" in path:
        raise BadPath("file name contains NUL")
    text = unicodedata.normalize("NFC", path.replace("\\", "/"))
    if text.startswith("/"):
        raise BadPath(f"absolute path {path!r} is not allowed in a resource")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    return check_path("/".join(parts))


def check_path(path: str) -> str:
    """Validate a canonical resource path (as found in a manifest or a UnixFS directory)."""
    if not path:
        raise BadPath("empty path")
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise BadPath(f"path longer than {MAX_PATH_BYTES} bytes")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        raise BadPath(f"path deeper than {MAX_DEPTH} folders")
    for part in parts:
        check_name(part)
    return path
