"""Read byte ranges of UnixFS files straight from the block store (HTTP Range, zip).

A zip is unpacked on Windows or onto a USB stick (FAT/exFAT/NTFS), so its entry names are the
portable renames of ``protocol.paths.plan_writes`` and a note lists what was renamed.

A file is a raw leaf or a balanced tree of dag-pb File nodes whose ``blocksizes`` say how many
bytes each child holds, so a range maps to the few leaves that cover it: seeking in a 2 GiB
video reads one tree node per level and the leaves it needs, never the whole file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator

from protocol.paths import plan_writes
from protocol.unixfs import iter_file_range as iter_range  # re-exported for the web routes

GetBlock = Callable[[bytes], bytes]
MAX_RANGE_DIGITS = 19           # 10**19 bytes is more than any file: longer numbers are
                                # malformed, refused before int() (no huge-number arithmetic)
_UNIT = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(.*)", re.DOTALL)  # token "=" range-set
_SPEC = re.compile(r"([0-9]{0,%d})-([0-9]{0,%d})" % (MAX_RANGE_DIGITS, MAX_RANGE_DIGITS))


class BadRange(ValueError):
    """The Range header is malformed or cannot be satisfied (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) for a single byte range; None: send the whole file.

    RFC 9110 §14: an unknown unit and a well-formed set of several ranges are ignored (the
    whole file is sent); anything malformed, or a single range that cannot be satisfied, is
    :class:`BadRange`.
    """
    if header is None:
        return None
    unit = _UNIT.fullmatch(header.strip(" \t"))
    if unit is None:
        raise BadRange(header)
    if unit.group(1).lower() != "bytes":
        return None  # an unknown unit is ignored (RFC 9110 §14.2)
    specs = [_SPEC.fullmatch(part.strip(" \t")) for part in unit.group(2).split(",")]
    if any(m is None or m.group(0) == "-" for m in specs):
        raise BadRange(header)
    if len(specs) > 1:
        return None  # several ranges: the whole file, as RFC 9110 allows
    first, last = specs[0].groups()  # type: ignore[union-attr]
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise BadRange(header)
        return max(0, size - n), size
    start = int(first)
    if start >= size or (last and int(last) < start):
        raise BadRange(header)
    return start, size if not last else min(int(last) + 1, size)


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose output is taken by the zip generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


RENAMED_NOTE = "renamed-files.txt"  # in a zip whose entries had to be renamed


def portable_entries(files: list[tuple[str, bytes, int]]
                     ) -> tuple[list[tuple[str, bytes, int]], list[tuple[str, str]]]:
    """``(path, root cid, size)`` with every path renamed for FAT/exFAT/NTFS, and the renames
    (sorted by resource path); :data:`RENAMED_NOTE` is kept free for the note."""
    plan = plan_writes([path for path, _, _ in files], reserved=(RENAMED_NOTE,))
    entries = [(target, cid, size) for (_, target), (_, cid, size) in zip(plan.targets, files)]
    return entries, sorted(plan.renamed, key=lambda pt: pt[0].encode("utf-8"))


def renamed_note(renamed: list[tuple[str, str]]) -> bytes:
    """The note put in a zip with renamed entries, in Chinese and English (UTF-8 with BOM and
    CRLF, so Windows Notepad shows it right)."""
    lines = ["有些文件名不能在 Windows 电脑或 U 盘（FAT/exFAT/NTFS）上使用，"
             "在这个压缩包里已改名：",
             "Some file names cannot be used on Windows or USB sticks (FAT/exFAT/NTFS); "
             "they were renamed in this zip:", ""]
    lines += [f"{path}  ->  {target}" for path, target in renamed]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def iter_zip(files: list[tuple[str, bytes, int]], get_block: GetBlock,
             prefix: str = "", note: tuple[str, bytes] | None = None) -> Iterator[bytes]:
    """A zip (stored, zip64, data descriptors) of ``(path, root cid, size)``, streamed; ``note``
    is a small ``(name, bytes)`` entry put first."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        if note is not None:
            zf.writestr(zipfile.ZipInfo(prefix + note[0], date_time=(2000, 1, 1, 0, 0, 0)),
                        note[1])
            yield sink.take()
        for path, root, size in files:
            info = zipfile.ZipInfo(prefix + path, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=size >= 2**31) as out:
                for chunk in iter_range(root, get_block, 0, size):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
