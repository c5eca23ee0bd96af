"""CARv1 (content-addressable archive) framing, sans-IO (specs/bundles.md §2).

A CARv1 is ``varint(len(header)) || header`` followed by sections
``varint(len(cid) + len(data)) || cid || data``; the header is dag-cbor
``{"roots": [CID, ...], "version": 1}`` with every CID as CBOR tag 42 over ``0x00 || binary
CID``.  Varints are unsigned LEB128 (multiformats ``unsigned-varint``: minimal, at most 9 bytes).

:class:`CarReader` is an incremental reader in the style of h11: feed it bytes with
:meth:`~CarReader.receive_data` (``b""`` marks the end of input) and pull events with
:meth:`~CarReader.next_event` — a :class:`Header`, then one :class:`Section` per block, then
:data:`END`, or :data:`NEED_DATA`.  The caller may decline a section's bytes (``want``); the
reader then discards them as they arrive, or the caller skips them in its source
(:meth:`~CarReader.skip_input`), which lets a seekable file be scanned without reading the big
blocks.  Buffered input is bounded by :data:`MAX_SECTION_SIZE` plus what the caller feeds at once.

Every problem in the bytes is a :class:`RemoteProtocolError`.  CIDs are returned in binary
CIDv1 form (a CIDv0 is converted to CIDv1 dag-pb); which codecs and hashes are acceptable is
for the caller to decide (``crypto.cid_codec``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cbor2

from .errors import LocalProtocolError, RemoteProtocolError
from .varint import decode_uvarint_prefix, encode_uvarint

CAR_VERSION = 1
# A header lists the roots; about 41 bytes a root, so this allows ~25,000 roots.
MAX_HEADER_SIZE = 1024 * 1024
# The largest block we accept: dag-pb nodes are at most 2 MiB (dagpb.MAX_NODE_SIZE, Bitswap's
# limit); raw leaves are at most 1 MiB.
MAX_BLOCK_SIZE = 2 * 1024 * 1024
# A binary CID: version, codec and hash varints, digest length and a digest of at most 64 bytes.
MAX_CID_SIZE = 96
MAX_SECTION_SIZE = MAX_BLOCK_SIZE + MAX_CID_SIZE
MAX_DIGEST_SIZE = 64
_MAX_VARINT_BYTES = 9          # unsigned-varint: at most 63 bits
_CID_TAG = 42
_DAG_PB = 0x70
_SHA2_256 = 0x12


# -- varints (multiformats unsigned-varint: minimal, at most 9 bytes) -------------------------

def encode_varint(n: int) -> bytes:
    if not 0 <= n < 2**63:
        raise LocalProtocolError("varint out of range")
    return encode_uvarint(n)


def decode_varint(buf: bytes | bytearray | memoryview, pos: int,
                  end: int | None = None) -> tuple[int, int] | None:
    """(value, position after it), or None if the buffer ends inside the varint."""
    return decode_uvarint_prefix(buf, pos, end, max_bytes=_MAX_VARINT_BYTES)


# -- CIDs ------------------------------------------------------------------------------------

def decode_cid(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[bytes, int]:
    """Parse one binary CID in ``buf[pos:end]``; return (binary CIDv1, position after it).

    Raises RemoteProtocolError if the bytes are not a whole CID (a CID must fit before
    ``end``)."""
    if end - pos >= 2 and buf[pos] == _SHA2_256 and buf[pos + 1] == 32:
        if end - pos < 34:
            raise RemoteProtocolError("truncated CIDv0")
        return bytes([1, _DAG_PB]) + bytes(buf[pos:pos + 34]), pos + 34
    start = pos
    fields = []
    for _ in range(4):  # version, codec, multihash code, digest length
        got = decode_varint(buf, pos, end)
        if got is None:
            raise RemoteProtocolError("truncated CID")
        value, pos = got
        fields.append(value)
    version, _codec, _code, size = fields
    if version != 1:
        raise RemoteProtocolError(f"unsupported CID version {version}")
    if size > MAX_DIGEST_SIZE:
        raise RemoteProtocolError(f"CID digest of {size} bytes is too long")
    if pos + size > end:
        raise RemoteProtocolError("truncated CID")
    pos += size
    if pos - start > MAX_CID_SIZE:
        raise RemoteProtocolError("CID too long")
    return bytes(buf[start:pos]), pos


def _whole_cid(raw: bytes) -> bytes:
    cid, pos = decode_cid(raw, 0, len(raw))
    if pos != len(raw):
        raise RemoteProtocolError("trailing bytes after a CID")
    return cid


# -- header ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    version: int
    roots: tuple[bytes, ...]   # binary CIDv1s
    size: int                  # bytes of the header, its length prefix included

    def __post_init__(self) -> None:
        if self.version != CAR_VERSION:
            raise LocalProtocolError("only CARv1 headers exist here")


class _CidLink:
    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _tag_hook(tag: cbor2.CBORTag, immutable: bool) -> object:
    if tag.tag != _CID_TAG:
        raise RemoteProtocolError(f"unexpected CBOR tag {tag.tag} in CAR header")
    value = tag.value
    if not isinstance(value, bytes) or not value.startswith(b"\x00"):
        raise RemoteProtocolError("a CID link must be bytes starting with 0x00")
    return _CidLink(value[1:])


def _reject_tag(decoder: object, *args: object) -> object:
    raise RemoteProtocolError("unexpected CBOR tag in CAR header")


# cbor2 decodes these tags itself (dates, bignums, sets, self-describe...) without calling
# the tag hook: refuse them too, so tag 42 is the only tag a header may hold.
_BUILTIN_TAGS = {t: _reject_tag for t in (*range(64), 100, 256, 258, 259, 260, 261, 262, 1004,
                                          1040, 55799) if t != _CID_TAG}


def encode_header(roots: Sequence[bytes]) -> bytes:
    """The header with its length prefix (canonical dag-cbor: "roots" sorts before "version")."""
    for r in roots:
        _whole_cid(r)
    body = cbor2.dumps({"roots": [cbor2.CBORTag(_CID_TAG, b"\x00" + bytes(r)) for r in roots],
                        "version": CAR_VERSION}, canonical=True)
    if len(body) > MAX_HEADER_SIZE:
        raise LocalProtocolError(f"CAR header of {len(body)} bytes is over the limit")
    return encode_varint(len(body)) + body


def decode_header(body: bytes) -> tuple[int, tuple[bytes, ...]]:
    """(version, roots) of a header body (without its length prefix).

    The version is checked first, so a CARv2 file (whose first bytes are a CARv1-style header
    ``{"version": 2}``) is reported as such."""
    fp = io.BytesIO(body)
    try:
        value = cbor2.CBORDecoder(fp, tag_hook=_tag_hook, semantic_decoders=_BUILTIN_TAGS,
                                  allow_duplicate_keys=False, allow_indefinite=False,
                                  max_depth=4).decode()
    except RemoteProtocolError:
        raise
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise RemoteProtocolError(f"malformed CAR header: {exc}") from None
    if fp.tell() != len(body):
        raise RemoteProtocolError("trailing bytes in the CAR header")
    if not isinstance(value, dict):
        raise RemoteProtocolError("the CAR header is not a map")
    version = value.get("version")
    if type(version) is not int:
        raise RemoteProtocolError("the CAR header has no integer version")
    if version != CAR_VERSION:
        raise RemoteProtocolError(f"unsupported CAR version {version} (CARv1 is supported)")
    if set(value) != {"roots", "version"}:
        raise RemoteProtocolError("a CARv1 header has exactly the keys roots and version")
    roots = value["roots"]
    if not isinstance(roots, list) or not all(isinstance(r, _CidLink) for r in roots):
        raise RemoteProtocolError("CAR header roots must be a list of CIDs")
    return version, tuple(_whole_cid(r.raw) for r in roots)


# -- sections --------------------------------------------------------------------------------

def section_head(cid: bytes, length: int) -> bytes:
    """The bytes before a block's data: ``varint(len(cid) + length) || cid``."""
    if length > MAX_BLOCK_SIZE:
        raise LocalProtocolError(f"block of {length} bytes is over the {MAX_BLOCK_SIZE} limit")
    return encode_varint(len(cid) + length) + cid


def section_size(cid: bytes, length: int) -> int:
    n = len(cid) + length
    return len(encode_varint(n)) + n


def encode_section(cid: bytes, data: bytes) -> bytes:
    return section_head(cid, len(data)) + data


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    cid: bytes               # binary CIDv1
    offset: int              # where the block's bytes start in the stream
    length: int              # the block's size in bytes
    data: bytes | None       # None when the caller declined it (``want`` returned False)


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
END = _Sentinel("END")
Event = Header | Section | _Sentinel
Want = Callable[[bytes, int], bool]
_COMPACT_AT = 64 * 1024


class CarReader:
    """Incremental CARv1 reader (see the module docstring)."""

    def __init__(self, *, max_header_size: int = MAX_HEADER_SIZE,
                 max_section_size: int = MAX_SECTION_SIZE) -> None:
        self.max_header_size = max_header_size
        self.max_section_size = max_section_size
        self.header: Header | None = None
        self._buf = bytearray()
        self._pos = 0          # first unconsumed byte in _buf
        self._base = 0         # stream offset of _buf[0]
        self._eof = False
        self._done = False
        self._discard = 0      # bytes of a declined section still to drop
        # the section being read: (cid, data length, head length, keep its data?)
        self._head: tuple[bytes, int, int, bool] | None = None

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet consumed."""
        return self._base + self._pos

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("data received after the end of input")
        if self._pos >= _COMPACT_AT or self._pos == len(self._buf):
            del self._buf[:self._pos]
            self._base += self._pos
            self._pos = 0
        if self._discard:
            drop = min(self._discard, len(data))
            self._discard -= drop
            self._base += drop
            data = data[drop:]
        self._buf += data

    def skip_input(self) -> int:
        """After a declined :class:`Section`: how many bytes the caller may now skip in its
        source instead of feeding them.  The reader counts them as consumed, so a caller that
        skips must itself check that its source really held them (a seek past the end of a
        truncated file succeeds)."""
        n, self._discard = self._discard, 0
        del self._buf[:self._pos]
        self._base += self._pos + n
        self._pos = 0
        return n

    def _truncated(self, what: str) -> RemoteProtocolError:
        return RemoteProtocolError(f"truncated CAR: {what} at byte {self.offset} is cut short")

    def next_event(self, want: Want | None = None) -> Event:
        """The next event.  ``want(cid, length)`` is asked once per section, as soon as its
        CID is read; if it returns False the section's bytes are not kept and its event comes
        at once, with ``data=None``."""
        if self._done:
            return END
        if self._discard:
            drop = min(self._discard, len(self._buf) - self._pos)
            self._pos += drop
            self._discard -= drop
            if self._discard:
                if self._eof:
                    raise self._truncated("a skipped block")
                return NEED_DATA
        if self.header is None:
            return self._read_header()
        return self._read_section(want)

    def _read_header(self) -> Event:
        got = decode_varint(self._buf, self._pos)
        if got is None:
            if self._eof:
                raise self._truncated("the header length")
            return NEED_DATA
        n, start = got
        if n == 0 or n > self.max_header_size:
            raise RemoteProtocolError(f"CAR header length {n} is not allowed "
                                      f"(limit {self.max_header_size})")
        if len(self._buf) - start < n:
            if self._eof:
                raise self._truncated("the header")
            return NEED_DATA
        version, roots = decode_header(bytes(self._buf[start:start + n]))
        self._pos = start + n
        self.header = Header(version=version, roots=roots, size=self._pos + self._base)
        return self.header

    def _read_section(self, want: Want | None) -> Event:
        buf, pos = self._buf, self._pos
        if self._head is None:
            if pos == len(buf):
                if self._eof:
                    self._done = True
                    return END
                return NEED_DATA
            got = decode_varint(buf, pos)
            if got is None:
                if self._eof:
                    raise self._truncated("a section length")
                return NEED_DATA
            n, start = got
            if n == 0:
                raise RemoteProtocolError(f"empty CAR section at byte {self.offset}")
            if n > self.max_section_size:
                raise RemoteProtocolError(f"CAR section of {n} bytes at byte {self.offset} is "
                                          f"over the {self.max_section_size}-byte limit")
            need = min(n, MAX_CID_SIZE)
            if len(buf) - start < need:
                if self._eof:
                    raise self._truncated("a section")
                return NEED_DATA
            cid, after = decode_cid(buf, start, start + need)
            length = n - (after - start)
            keep = want is None or want(cid, length)
            self._head = (cid, length, after - pos, keep)
        cid, length, head_len, keep = self._head
        data_at = pos + head_len
        offset = self._base + data_at
        if not keep:
            self._head = None
            drop = min(length, len(buf) - data_at)
            self._pos = data_at + drop
            self._discard = length - drop
            return Section(cid=cid, offset=offset, length=length, data=None)
        if len(buf) - data_at < length:
            if self._eof:
                raise self._truncated("a block")
            return NEED_DATA
        data = bytes(buf[data_at:data_at + length])
        self._head = None
        self._pos = data_at + length
        return Section(cid=cid, offset=offset, length=length, data=data)


def read_car(data: bytes) -> tuple[Header, list[Section]]:
    """Whole-buffer convenience: the header and every section (tests, vectors)."""
    reader = CarReader()
    reader.receive_data(data)
    reader.receive_data(b"")
    header = reader.next_event()
    if not isinstance(header, Header):
        raise RemoteProtocolError("no CAR header")
    sections = []
    while isinstance(ev := reader.next_event(), Section):
        sections.append(ev)
    return header, sections
