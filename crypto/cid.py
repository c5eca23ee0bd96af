"""Content identifiers: CIDv1 with sha2-256, for raw (0x55) and dag-pb (0x70) blocks.

Internally a CID is its binary form (bytes); strings are multibase base32 (``b...``) like
ipfs-car and Helia print. Parsing accepts any valid CID string (also CIDv0 ``Qm...``).

Our own base32 form is encoded and decoded directly (``base64.b32*``, ~10 µs); the
``multiformats`` library, which validates types at run time (~0.9 ms a call), is used only to
parse other multibase forms and CIDv0.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

CID_RAW = 0x55
CID_DAG_PB = 0x70
_SHA2_256 = 0x12
_DIGEST_SIZE = 32
_CODECS = {CID_RAW: "raw", CID_DAG_PB: "dag-pb"}
# Binary CIDv1 prefixes: version 1, codec varint (0x55 / 0x70 fit in one byte), sha2-256, 32 bytes.
_PREFIX = {codec: bytes([0x01, codec, _SHA2_256, _DIGEST_SIZE]) for codec in _CODECS}
CID_SIZE = 4 + _DIGEST_SIZE


class BadCID(ValueError):
    """Not a CID we can use, or a block that does not match its CID."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def make_cid(codec: int, data: bytes) -> bytes:
    """The binary CIDv1 (sha2-256) of a block."""
    return _PREFIX[codec] + hashlib.sha256(data).digest()


def cid_codec(cid: bytes) -> int:
    _check(cid)
    return cid[1]


def cid_digest(cid: bytes) -> bytes:
    _check(cid)
    return cid[4:]


def _check(cid: bytes) -> None:
    if len(cid) != CID_SIZE or cid[:4] not in (_PREFIX[CID_RAW], _PREFIX[CID_DAG_PB]):
        raise BadCID("only CIDv1 raw/dag-pb with sha2-256 is supported")


def verify_block(cid: bytes, data: bytes) -> None:
    """Raise :class:`BadCID` unless ``data`` hashes to ``cid``."""
    _check(cid)
    if hashlib.sha256(data).digest() != cid[4:]:
        raise BadCID(f"block does not match its CID {cid_to_str(cid)}")


def cid_to_str(cid: bytes) -> str:
    _check(cid)
    return "b" + base64.b32encode(cid).decode("ascii").rstrip("=").lower()


def cid_from_str(text: str) -> bytes:
    """Parse a CID string (any multibase, v0 or v1) into our binary CIDv1 form."""
    text = text.strip()
    if text.startswith("b") and len(text) == 59:  # base32 CIDv1 with a 36-byte binary form
        try:
            cid = base64.b32decode(text[1:].upper() + "=" * (-(len(text) - 1) % 8))
        except binascii.Error:
            raise BadCID(f"not a CID: {text!r}") from None
        _check(cid)
        return cid
    from multiformats import CID as _CID  # slow import and calls: only for other forms
    try:
        c = _CID.decode(text)
    except Exception as exc:  # multiformats raises a variety of errors for garbage
        raise BadCID(f"not a CID: {text!r}") from None
    if c.hashfun.name != "sha2-256" or c.codec.name not in ("raw", "dag-pb"):
        raise BadCID(f"unsupported CID {text!r}: only raw/dag-pb with sha2-256")
    return bytes(c.set(version=1))
