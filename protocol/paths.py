"""File names inside a resource: the one place canonical form is applied (specs/content.md §4).

A resource path is NFC-normalised Unicode, components joined by "/", never empty, never ".",
"..", absolute, containing NUL, backslash or control characters, nor a Windows device name, so
extracting a resource can never write outside the chosen folder on any school's computer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import LocalProtocolError

MAX_NAME_BYTES = 255          # per component: the common filesystem limit
MAX_PATH_BYTES = 1024         # whole relative path
MAX_DEPTH = 32                # folder levels inside one resource
_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


class BadPath(LocalProtocolError):
    """A file name that is not allowed in a resource."""


def _utf8(text: str) -> bytes:
    # A name read from a disk whose bytes are not UTF-8 holds lone surrogates (surrogateescape)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadPath(f"file name {text!r} is not valid UTF-8 text") from None


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
    if len(_utf8(name)) > MAX_NAME_BYTES:
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
    if len(_utf8(path)) > MAX_PATH_BYTES:
        raise BadPath(f"path longer than {MAX_PATH_BYTES} bytes")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        raise BadPath(f"path deeper than {MAX_DEPTH} folders")
    for part in parts:
        check_name(part)
    return path


# -- names every file system a teacher writes to can hold (specs/content.md §5.1) -------------
#
# A resource path is valid on the Linux node that published it, but USB sticks are FAT/exFAT and
# school computers NTFS: those refuse more names and compare names without letter case.  Before
# anything is written to a folder (``schoolmesh get``, the web zip) the whole list of paths is
# planned here: either it is portable as it is, or every conflict is named, and a deterministic
# portable rename of every path is offered.

PORTABLE_FORBIDDEN = frozenset(':*?"<>|/\\')  # refused by FAT, exFAT and NTFS (Win32 names)
_PORTABLE_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])$", re.IGNORECASE)
_TRAILING = ". "   # Windows strips a trailing dot or space, so such a name cannot be created


def _unportable_char(c: str) -> bool:
    return c in PORTABLE_FORBIDDEN or ord(c) < 0x20 or ord(c) == 0x7F


def _is_device(name: str) -> bool:
    """``CON``, ``con.txt``, ``Com1.tar.gz``, ``CON .txt``: the part before the first dot,
    without trailing spaces, is a device name."""
    return bool(_PORTABLE_DEVICE.match(name.split(".", 1)[0].rstrip(" ")))


def portable_problem(name: str) -> str | None:
    """Why FAT/exFAT/NTFS refuse this one name (a path component), or None if they accept it."""
    bad = sorted({c for c in name if _unportable_char(c)})
    if bad:
        return "contains " + " ".join(repr(c) for c in bad)
    if not name:
        return "is empty"
    if name[-1] in _TRAILING:
        return "ends with a dot or a space"
    if _is_device(name):
        return "is a reserved device name"
    return None


def portable_name(name: str) -> str:
    """The rename of one name that FAT/exFAT/NTFS accept; ``name`` itself if it is fine.

    Each forbidden or control character and each trailing dot or space becomes ``_``; a device
    name gets ``_`` after its first part (``CON.txt`` → ``CON_.txt``)."""
    out = "".join("_" if _unportable_char(c) else c for c in name)
    kept = out.rstrip(_TRAILING)
    out = kept + "_" * (len(out) - len(kept))
    if not out:
        return "_"
    if _is_device(out):
        stem, dot, ext = out.partition(".")
        out = f"{stem}_{dot}{ext}"
    return out


def fold(name: str) -> str:
    """The key under which case-insensitive file systems see a name (NFC of the case fold)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def numbered(name: str, n: int, *, folder: bool) -> str:
    """``Lesson.pdf`` → ``Lesson (2).pdf``; a folder (or a name without extension) gets the
    number at the end.  The stem is shortened so the result fits :data:`MAX_NAME_BYTES`."""
    dot = -1 if folder else name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    tag = f" ({n})"
    room = MAX_NAME_BYTES - len((tag + ext).encode("utf-8"))
    stem = stem.encode("utf-8")[:max(room, 1)].decode("utf-8", errors="ignore") or "_"
    return f"{stem}{tag}{ext}"


def _sort_key(path: str) -> tuple[tuple[bool, bytes], ...]:
    """Folder by folder: names that need no rename first (so they keep their names), then
    UTF-8 byte order."""
    return tuple((portable_problem(n) is not None, n.encode("utf-8")) for n in path.split("/"))


@dataclass(frozen=True, slots=True)
class Conflict:
    """One reason the paths cannot be written as they are; ``paths`` are resource paths."""
    kind: str                  # "name", "duplicate", "file-and-folder", "case"
    paths: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Where each given path goes on a portable file system, in the order given."""
    targets: tuple[tuple[str, str], ...]     # (resource path, path to write)
    conflicts: tuple[Conflict, ...]

    @property
    def renamed(self) -> tuple[tuple[str, str], ...]:
        return tuple((p, t) for p, t in self.targets if p != t)

    def describe(self, limit: int = 5) -> str:
        """The conflicts as one sentence (the first ``limit``, then how many more)."""
        shown = "; ".join(c.message for c in self.conflicts[:limit])
        more = len(self.conflicts) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


def plan_writes(paths: list[str], *, reserved: tuple[str, ...] = ()) -> WritePlan:
    """Plan writing ``paths`` (valid resource paths; duplicates and a name used both as file
    and folder are possible in a hostile directory) into one folder.

    Returns every conflict with the names as given and a portable target for every path:
    in each folder, names that need no rename come first, then UTF-8 byte order (duplicates in
    the order given); the first holder of a name (compared with :func:`fold`) keeps it, later
    ones get `` (2)``, `` (3)``… before the extension.  ``reserved`` names at the top are
    held before any path (e.g. a note file).
    """
    conflicts: list[Conflict] = []
    # target folder → {fold(name): (resource path that holds it, is a folder)}
    taken: dict[str, dict[str, tuple[str, bool]]] = {"": {}}
    for r in reserved:
        taken[""][fold(r)] = ("", False)
    folders: dict[str, str] = {"": ""}         # resource folder path → target folder path

    def place(parent_src: str, parent_dst: str, name: str, is_folder: bool) -> str:
        src = f"{parent_src}{name}"
        problem = portable_problem(name)
        if problem:
            conflicts.append(Conflict("name", (src,), f"{src!r} {problem}"))
        want = portable_name(name)
        names = taken.setdefault(parent_dst, {})
        holder = names.get(fold(want))
        if holder is not None:
            _collision(conflicts, holder, (src, is_folder))
        n, got = 1, want
        while fold(got) in names:
            n += 1
            got = numbered(want, n, folder=is_folder)
        names[fold(got)] = (src, is_folder)
        return f"{parent_dst}{got}"

    order = sorted(range(len(paths)), key=lambda i: (_sort_key(paths[i]), i))
    targets: list[str] = [""] * len(paths)
    for i in order:
        parts = paths[i].split("/")
        src_dir, dst_dir = "", ""
        for name in parts[:-1]:
            here = f"{src_dir}{name}"
            if here not in folders:
                folders[here] = place(src_dir, dst_dir, name, True)
            src_dir, dst_dir = here + "/", folders[here] + "/"
        targets[i] = place(src_dir, dst_dir, parts[-1], False)
    return WritePlan(tuple(zip(paths, targets)), tuple(conflicts))


def _collision(conflicts: list[Conflict], holder: tuple[str, bool],
               new: tuple[str, bool]) -> None:
    """Report a clash of two names in one folder (their parents are the same folder)."""
    (a, a_folder), (b, b_folder) = holder, new
    if not a or fold(a) != fold(b):
        return  # a reserved name, or a clash made by a rename already reported as "name"
    if a_folder != b_folder:
        folder, file = (a, b) if a_folder else (b, a)
        conflicts.append(Conflict(
            "file-and-folder", (file, folder),
            f"{file!r} is both a file and a folder" if file == folder else
            f"file {file!r} and folder {folder!r} differ only in letter case"))
    elif a == b:
        conflicts.append(Conflict("duplicate", (a,), f"{a!r} is in the resource twice"))
    else:
        conflicts.append(Conflict("case", (a, b),
                                  f"{a!r} and {b!r} differ only in letter case"))
