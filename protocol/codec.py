"""Canonical msgpack: exactly one valid encoding per value (specs/records.md §2).

* maps: keys are text, sorted by their UTF-8 bytes, no duplicates
* integers: the shortest msgpack form (msgpack-python always packs minimally)
* byte strings: ``bin``; text: ``str`` (valid UTF-8)
* no floats, no extension types, no nil except where a field table allows it

Decoding is strict: sizes are capped *before* allocation, then the value is re-encoded and must
give back the very same bytes, which rejects every non-canonical form (unsorted or duplicate
keys, non-minimal integers, str8 where fixstr fits...).
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import LocalProtocolError, RemoteProtocolError

# Every encoded record is at most this large; a resource manifest listing a few thousand files
# fits (about 80 bytes a file).
MAX_RECORD_SIZE = 1024 * 1024
# Nested containers deeper than this are refused (no record needs more than 4).
MAX_DEPTH = 8


def _canonical(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise LocalProtocolError("value nested too deeply")
    if isinstance(value, bool) or value is None or isinstance(value, (bytes, str)):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise LocalProtocolError("integer out of msgpack range")
        return value
    if isinstance(value, (list, tuple)):
        return [_canonical(v, depth + 1) for v in value]
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise LocalProtocolError("map keys must be text")
            items.append((k.encode("utf-8"), k, _canonical(v, depth + 1)))
        items.sort()
        return {k: v for _, k, v in items}
    raise LocalProtocolError(f"type {type(value).__name__} has no canonical encoding")


def encode(value: Any, max_size: int = MAX_RECORD_SIZE) -> bytes:
    """Canonical bytes of ``value`` (dict, list, int, bool, None, bytes, str)."""
    data = msgpack.packb(_canonical(value), use_bin_type=True)
    if len(data) > max_size:
        raise LocalProtocolError(f"record is {len(data)} bytes; the limit is {max_size}")
    return data


def decode(data: bytes, max_size: int = MAX_RECORD_SIZE) -> Any:
    """Decode canonical bytes; raise :class:`RemoteProtocolError` for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RemoteProtocolError("record must be bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise RemoteProtocolError(f"record is {len(data)} bytes; the limit is {max_size}")
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True, timestamp=0,
            max_str_len=max_size, max_bin_len=max_size,
            max_array_len=max_size, max_map_len=max_size, max_ext_len=0,
            ext_hook=_no_ext,
        )
    except RemoteProtocolError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"malformed msgpack: {exc}") from None
    try:
        again = encode(value, max_size)
    except LocalProtocolError as exc:  # floats, too deep, ...: not canonical
        raise RemoteProtocolError(f"not canonical: {exc}") from None
    if again != data:
        raise RemoteProtocolError("not canonical msgpack (unsorted/duplicate keys or "
                                  "non-minimal encoding)")
    return value


def is_int(value: Any, expected: int) -> bool:
    """``value == expected`` for a decoded field, without taking ``true`` for 1 (or ``false``
    for 0): Python finds them equal, msgpack encodes them differently, so a check with ``==``
    lets two encodings (two hashes) through for one signed value."""
    return type(value) is int and value == expected


def _no_ext(code: int, data: bytes) -> Any:
    raise RemoteProtocolError("msgpack extension types are not allowed")
