"""Bitswap 1.2.0 messages (and 1.1.0 / 1.0.0): protobuf codec and length-prefixed framing.

Sans-IO: bytes in, messages out and back.  The wire format is boxo's
``bitswap/message/pb/message.proto``; @helia/bitswap's ``message.proto`` has the same field
numbers and types (it marks some fields ``optional``, which only changes whether a default value
may appear on the wire: the decoder accepts both).  Normative text: specs/bitswap.md.

    Message        1 wantlist: Wantlist   2 blocks: repeated bytes (1.0.0)
                   3 payload: repeated Block   4 blockPresences: repeated BlockPresence
                   5 pendingBytes: int32
    Wantlist       1 entries: repeated Entry   2 full: bool
    Entry          1 block: bytes (CID)   2 priority: int32   3 cancel: bool
                   4 wantType: enum {Block = 0, Have = 1}   5 sendDontHave: bool
    Block          1 prefix: bytes (CID without the digest)   2 data: bytes
    BlockPresence  1 cid: bytes   2 type: enum {Have = 0, DontHave = 1}

On a stream every message is preceded by its length as an unsigned varint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from crypto import CID_DAG_PB, CID_RAW, BadCID, cid_codec, make_cid

from . import framing
from .errors import LocalProtocolError, RemoteProtocolError
from .varint import decode_uvarint, encode_uvarint

PROTOCOL_1_2_0 = "/ipfs/bitswap/1.2.0"
PROTOCOL_1_1_0 = "/ipfs/bitswap/1.1.0"
PROTOCOL_1_0_0 = "/ipfs/bitswap/1.0.0"
PROTOCOLS = (PROTOCOL_1_2_0, PROTOCOL_1_1_0, PROTOCOL_1_0_0)  # most preferred first

# Largest message (protobuf bytes, without the length prefix) we send or accept: boxo's
# network.MessageSizeMax and Helia's DEFAULT_MAX_{INCOMING,OUTGOING}_MESSAGE_SIZE.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
# Largest block: the spec requires supporting blocks of up to 2 MiB; ours are at most 1 MiB.
MAX_BLOCK_SIZE = 2 * 1024 * 1024
# Per message, at most this many blocks, wantlist entries and block presences.  Our own
# messages stay far below (see node/p2p/bitswap.py); a message over a limit is rejected whole.
MAX_BLOCKS_PER_MESSAGE = 1024
MAX_ENTRIES_PER_MESSAGE = 8192
MAX_PRESENCES_PER_MESSAGE = 8192
MAX_CID_SIZE = 128     # bytes of a binary CID (ours are 36)
MAX_PREFIX_SIZE = 32   # bytes of a CID prefix (ours are 4)
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1

# CID prefixes: varints (version, codec, multihash code, digest length).
_SHA2_256, _DIGEST = 0x12, 32
CIDV0_PREFIX = bytes((0, CID_DAG_PB, _SHA2_256, _DIGEST))
_V0_MULTIHASH = bytes((_SHA2_256, _DIGEST))


class WantType(IntEnum):
    BLOCK = 0   # send me the block
    HAVE = 1    # tell me whether you have it


class PresenceType(IntEnum):
    HAVE = 0
    DONT_HAVE = 1


def _check_int32(name: str, value: int) -> None:
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise LocalProtocolError(f"{name} {value} is not an int32")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One wantlist entry: want (or cancel a want for) the block with this CID."""
    cid: bytes
    priority: int = 1
    cancel: bool = False
    want_type: WantType = WantType.BLOCK
    send_dont_have: bool = False

    def __post_init__(self) -> None:
        if not 0 < len(self.cid) <= MAX_CID_SIZE:
            raise LocalProtocolError(f"wantlist entry CID of {len(self.cid)} bytes")
        _check_int32("priority", self.priority)
        object.__setattr__(self, "want_type", WantType(self.want_type))


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """A block as carried in ``payload``: the CID prefix and the bytes (the digest is implied)."""
    prefix: bytes
    data: bytes

    def __post_init__(self) -> None:
        if not 0 < len(self.prefix) <= MAX_PREFIX_SIZE:
            raise LocalProtocolError(f"block prefix of {len(self.prefix)} bytes")
        if len(self.data) > MAX_BLOCK_SIZE:
            raise LocalProtocolError(f"block of {len(self.data)} bytes exceeds {MAX_BLOCK_SIZE}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence:
    """HAVE / DONT_HAVE for a CID (Bitswap 1.2.0)."""
    cid: bytes
    type: PresenceType

    def __post_init__(self) -> None:
        if not 0 < len(self.cid) <= MAX_CID_SIZE:
            raise LocalProtocolError(f"block presence CID of {len(self.cid)} bytes")
        object.__setattr__(self, "type", PresenceType(self.type))


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    wantlist: tuple[Entry, ...] = ()
    full: bool = False              # the wantlist replaces the previous one
    blocks: tuple[Block, ...] = ()
    presences: tuple[Presence, ...] = ()
    pending_bytes: int = 0          # bytes the sender still has queued for us (informative)

    def __post_init__(self) -> None:
        for name, items, limit in (("blocks", self.blocks, MAX_BLOCKS_PER_MESSAGE),
                                   ("wantlist entries", self.wantlist, MAX_ENTRIES_PER_MESSAGE),
                                   ("block presences", self.presences,
                                    MAX_PRESENCES_PER_MESSAGE)):
            if len(items) > limit:
                raise LocalProtocolError(f"{len(items)} {name} in one message (limit {limit})")
        _check_int32("pendingBytes", self.pending_bytes)


# -- CIDs on the wire ------------------------------------------------------------------------

def parse_prefix(prefix: bytes) -> tuple[int, int, int, int]:
    """(version, codec, multihash code, digest length) of a CID prefix."""
    values = []
    pos = 0
    for _ in range(4):
        v, pos = decode_uvarint(prefix, pos)
        values.append(v)
    if pos != len(prefix):
        raise RemoteProtocolError("trailing bytes after a CID prefix")
    return values[0], values[1], values[2], values[3]


def block_cid(block: Block) -> bytes | None:
    """Our binary CIDv1 of a received block, computed from its bytes; None if the prefix is
    not one we can verify (only sha2-256 raw / dag-pb, CIDv1 or CIDv0).  Hashes the data."""
    p = block.prefix
    if len(p) == 4 and p[2] == _SHA2_256 and p[3] == _DIGEST and (
            (p[0] == 1 and p[1] in (CID_RAW, CID_DAG_PB)) or (p[0] == 0 and p[1] == CID_DAG_PB)):
        return make_cid(p[1], block.data)
    return None


def normalize_cid(wire: bytes) -> bytes | None:
    """A CID as found on the wire → our binary CIDv1, or None if we cannot hold such blocks.
    CIDv0 (a bare sha2-256 multihash) is the same block as the CIDv1 dag-pb of that digest."""
    if len(wire) == 2 + _DIGEST and wire[:2] == _V0_MULTIHASH:
        return bytes((1, CID_DAG_PB)) + wire
    try:
        cid_codec(wire)
    except BadCID:
        return None
    return wire


def prefix_for(wire: bytes) -> bytes:
    """The block prefix to send for a CID that we hold (as given by the peer: v0 or v1)."""
    if len(wire) == 2 + _DIGEST and wire[:2] == _V0_MULTIHASH:
        return CIDV0_PREFIX
    return wire[:4]  # our CIDv1s: version, codec and multihash header are one byte each


# -- encoding --------------------------------------------------------------------------------

def _len_field_size(tag_size: int, n: int) -> int:
    return tag_size + len(encode_uvarint(n)) + n


def entry_size(e: Entry) -> int:
    """Bytes that ``e`` adds to a message's wantlist."""
    body = len(_entry_bytes(e, True))
    return _len_field_size(1, body)


def block_size(prefix_len: int, data_len: int) -> int:
    """Bytes that one payload block adds to a message."""
    return _len_field_size(1, _block_body_size(prefix_len, data_len))


def _block_body_size(prefix_len: int, data_len: int) -> int:
    # proto3: empty data (a valid block: the empty file) is left out, like any default value
    return _len_field_size(1, prefix_len) + (_len_field_size(1, data_len) if data_len else 0)


def presence_size(cid_len: int) -> int:
    """Bytes that one block presence adds to a message (at most)."""
    return _len_field_size(1, _len_field_size(1, cid_len) + 2)


# Room for the wantlist wrapper (tag, length, ``full``) and pendingBytes.
MESSAGE_OVERHEAD = 1 + 4 + 2 + 6


def _entry_bytes(e: Entry, v12: bool) -> bytes:
    out = bytearray(b"\x0a")
    out += encode_uvarint(len(e.cid))
    out += e.cid
    if e.priority:
        out += b"\x10"
        out += encode_uvarint(e.priority & 0xFFFFFFFFFFFFFFFF)
    if e.cancel:
        out += b"\x18\x01"
    if v12:
        if e.want_type:
            out += b"\x20"
            out += encode_uvarint(int(e.want_type))
        if e.send_dont_have:
            out += b"\x28\x01"
    return bytes(out)


def _put_len_field(out: bytearray, tag: bytes, payload: bytes) -> None:
    out += tag
    out += encode_uvarint(len(payload))
    out += payload


def encode_message(msg: Message, protocol: str = PROTOCOL_1_2_0) -> bytes:
    """Protobuf bytes of ``msg`` for a stream speaking ``protocol``.

    1.0.0 carries blocks in field 2 (data only: the receiver assumes CIDv0) and 1.0.0/1.1.0
    know neither want types nor presences, which are left out for them.
    """
    return b"".join(_message_parts(msg, protocol))


def encode_frame_parts(msg: Message, protocol: str = PROTOCOL_1_2_0) -> list[bytes]:
    """The length-prefixed frame of ``msg`` as a list of pieces whose concatenation is
    ``encode_frame(encode_message(msg, protocol))``; block data is referenced, not copied (a
    sender writes the pieces as they are, holding no second copy of a large message)."""
    parts = _message_parts(msg, protocol)
    size = sum(len(p) for p in parts)
    return [encode_uvarint(size), *parts]


def _message_parts(msg: Message, protocol: str) -> list[bytes]:
    if protocol not in PROTOCOLS:
        raise LocalProtocolError(f"unknown Bitswap protocol {protocol!r}")
    v12 = protocol == PROTOCOL_1_2_0
    parts: list[bytes] = []
    out = bytearray()       # small fields, flushed into ``parts`` before each block's data
    if msg.wantlist or msg.full:
        wl = bytearray()
        for e in msg.wantlist:
            _put_len_field(wl, b"\x0a", _entry_bytes(e, v12))
        if msg.full:
            wl += b"\x10\x01"
        _put_len_field(out, b"\x0a", bytes(wl))
    for b in msg.blocks:
        if protocol == PROTOCOL_1_0_0:
            out += b"\x12"
            out += encode_uvarint(len(b.data))
        else:
            out += b"\x1a"
            out += encode_uvarint(_block_body_size(len(b.prefix), len(b.data)))
            _put_len_field(out, b"\x0a", b.prefix)
            if not b.data:
                continue
            out += b"\x12"
            out += encode_uvarint(len(b.data))
        if b.data:
            parts.append(bytes(out))
            out.clear()
            parts.append(b.data)
    if v12:
        for p in msg.presences:
            body = bytearray()
            _put_len_field(body, b"\x0a", p.cid)
            if p.type:
                body += b"\x10" + encode_uvarint(int(p.type))
            _put_len_field(out, b"\x22", bytes(body))
    if msg.pending_bytes:
        out += b"\x28"
        out += encode_uvarint(msg.pending_bytes & 0xFFFFFFFFFFFFFFFF)
    if out:
        parts.append(bytes(out))
    size = sum(len(p) for p in parts)
    if size > MAX_MESSAGE_SIZE:
        raise LocalProtocolError(f"message of {size} bytes exceeds {MAX_MESSAGE_SIZE}")
    return parts


def encode_frame(payload: bytes) -> bytes:
    """Length-prefix one encoded message for a stream."""
    if len(payload) > MAX_MESSAGE_SIZE:
        raise LocalProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return framing.encode_frame(payload)


# -- decoding --------------------------------------------------------------------------------

def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int | memoryview]]:
    """Split ``buf[pos:end]`` into (field number, wire type, value) of wire types 0 and 2;
    fields of wire types 1 and 5 (which no Bitswap field uses) are skipped."""
    while pos < end:
        key, pos = decode_uvarint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise RemoteProtocolError("protobuf field number 0")
        if wire == 0:
            val, pos = decode_uvarint(buf, pos)
            if pos > end:
                raise RemoteProtocolError("truncated protobuf field")
            yield num, wire, val
        elif wire == 2:
            n, pos = decode_uvarint(buf, pos)
            if pos + n > end:
                raise RemoteProtocolError("truncated protobuf field")
            yield num, wire, buf[pos:pos + n]
            pos += n
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise RemoteProtocolError("truncated protobuf field")
        else:
            raise RemoteProtocolError(f"unsupported protobuf wire type {wire}")


def _int32(value: int) -> int:
    """A decoded int32: negative values arrive as 64-bit two's complement varints."""
    if value >= 1 << 63:
        value -= 1 << 64
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise RemoteProtocolError(f"{value} does not fit an int32")
    return value


def _expect(wire: int, want: int, what: str) -> None:
    if wire != want:
        raise RemoteProtocolError(f"{what} has the wrong protobuf wire type")


def _decode_entry(buf: memoryview) -> Entry:
    cid = b""
    priority, cancel, want_type, send_dont_have = 0, False, 0, False
    for num, wire, val in _fields(buf, 0, len(buf)):
        if num == 1:
            _expect(wire, 2, "entry.block")
            cid = bytes(val)  # type: ignore[arg-type]
        elif num == 2:
            _expect(wire, 0, "entry.priority")
            priority = _int32(val)  # type: ignore[arg-type]
        elif num == 3:
            _expect(wire, 0, "entry.cancel")
            cancel = bool(val)
        elif num == 4:
            _expect(wire, 0, "entry.wantType")
            want_type = val  # type: ignore[assignment]
        elif num == 5:
            _expect(wire, 0, "entry.sendDontHave")
            send_dont_have = bool(val)
    if want_type not in (WantType.BLOCK, WantType.HAVE):
        raise RemoteProtocolError(f"unknown want type {want_type}")
    return Entry(cid=cid, priority=priority, cancel=cancel, want_type=WantType(want_type),
                 send_dont_have=send_dont_have)


def _decode_block(buf: memoryview) -> Block:
    prefix = data = None
    for num, wire, val in _fields(buf, 0, len(buf)):
        if num == 1:
            _expect(wire, 2, "block.prefix")
            prefix = val
        elif num == 2:
            _expect(wire, 2, "block.data")
            data = val
    if prefix is None or not len(prefix):  # type: ignore[arg-type]
        raise RemoteProtocolError("payload block without a CID prefix")
    return Block(prefix=bytes(prefix), data=bytes(data) if data is not None else b"")  # type: ignore[arg-type]


def _decode_presence(buf: memoryview) -> Presence:
    cid = b""
    kind = 0
    for num, wire, val in _fields(buf, 0, len(buf)):
        if num == 1:
            _expect(wire, 2, "blockPresence.cid")
            cid = bytes(val)  # type: ignore[arg-type]
        elif num == 2:
            _expect(wire, 0, "blockPresence.type")
            kind = val  # type: ignore[assignment]
    if kind not in (PresenceType.HAVE, PresenceType.DONT_HAVE):
        raise RemoteProtocolError(f"unknown block presence type {kind}")
    return Presence(cid=cid, type=PresenceType(kind))


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Decode one message (without its length prefix). Raises RemoteProtocolError."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise RemoteProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    buf = memoryview(data)
    entries: list[Entry] = []
    blocks: list[Block] = []
    presences: list[Presence] = []
    full = False
    pending = 0
    try:
        for num, wire, val in _fields(buf, 0, len(buf)):
            if num == 1:
                _expect(wire, 2, "wantlist")
                for wnum, wwire, wval in _fields(val, 0, len(val)):  # type: ignore[arg-type]
                    if wnum == 1:
                        _expect(wwire, 2, "wantlist.entries")
                        entries.append(_decode_entry(wval))  # type: ignore[arg-type]
                        if len(entries) > MAX_ENTRIES_PER_MESSAGE:
                            raise RemoteProtocolError("too many wantlist entries in a message")
                    elif wnum == 2:
                        _expect(wwire, 0, "wantlist.full")
                        full = bool(wval)
            elif num == 2:  # Bitswap 1.0.0: block data, CIDv0 implied
                _expect(wire, 2, "blocks")
                blocks.append(Block(prefix=CIDV0_PREFIX, data=bytes(val)))  # type: ignore[arg-type]
            elif num == 3:
                _expect(wire, 2, "payload")
                blocks.append(_decode_block(val))  # type: ignore[arg-type]
            elif num == 4:
                _expect(wire, 2, "blockPresences")
                presences.append(_decode_presence(val))  # type: ignore[arg-type]
            elif num == 5:
                _expect(wire, 0, "pendingBytes")
                pending = _int32(val)  # type: ignore[arg-type]
            if len(blocks) > MAX_BLOCKS_PER_MESSAGE or len(presences) > MAX_PRESENCES_PER_MESSAGE:
                raise RemoteProtocolError("too many blocks or presences in a message")
        return Message(wantlist=tuple(entries), full=full, blocks=tuple(blocks),
                       presences=tuple(presences), pending_bytes=pending)
    except LocalProtocolError as exc:  # a constructor refused a decoded value
        raise RemoteProtocolError(str(exc)) from None


# -- framing ---------------------------------------------------------------------------------

class FrameDecoder(framing.FrameDecoder):
    """protocol/framing.py's decoder with Bitswap's message size limit."""

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        super().__init__(max_size)
