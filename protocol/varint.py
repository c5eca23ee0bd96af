"""Unsigned LEB128 varints: protobuf's base-128 integers and multiformats' unsigned-varint.

Decoding is strict: a varint must be minimal (no trailing 0x80 0x00 padding) and fit in 64 bits.
Every encoder we interoperate with (protobuf, multiformats, it-length-prefixed) writes minimal
varints; refusing the others keeps one valid encoding per value.
"""

from __future__ import annotations

from .errors import LocalProtocolError, RemoteProtocolError

MAX_VARINT_BYTES = 10  # 64 bits; protobuf writes negative int32/int64 values as 10 bytes


def encode_uvarint(n: int) -> bytes:
    if n < 0:
        raise LocalProtocolError("negative varint")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode the varint at ``buf[pos]``; return (value, position after it)."""
    got = decode_uvarint_prefix(buf, pos)
    if got is None:
        raise RemoteProtocolError("truncated varint")
    return got


def decode_uvarint_prefix(buf: bytes | bytearray | memoryview, pos: int = 0,
                          end: int | None = None, *, max_bytes: int = MAX_VARINT_BYTES
                          ) -> tuple[int, int] | None:
    """Like :func:`decode_uvarint` for stream framing: None while the buffer (up to ``end``)
    ends inside the varint; RemoteProtocolError once it is longer than ``max_bytes``, not
    minimal, or larger than 64 bits."""
    end = len(buf) if end is None else end
    result = shift = 0
    start = pos
    while True:
        if pos >= end:
            return None
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if pos - start >= max_bytes:
            raise RemoteProtocolError(f"varint longer than {max_bytes} bytes")
    if pos - start > 1 and b == 0:
        raise RemoteProtocolError("non-minimal varint")
    if result >> 64:
        raise RemoteProtocolError("varint larger than 64 bits")
    return result, pos
