"""dag-pb (PBNode/PBLink) and UnixFS ``Data`` messages: strict encode and decode.

Encoding follows the dag-pb spec's canonical form (Links before Data, link fields in order
Hash, Name, Tsize, links sorted by the bytes of their names) and @ipld/unixfs's choices of which
optional UnixFS fields are present, so CIDs equal those of ipfs-car and Helia
(specs/content.md).  Hand-written because neither message may be encoded in protobuf's default
field order (Data would come first) and the decoder must refuse anything non-canonical.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto import CID_DAG_PB, CID_RAW, BadCID, cid_codec, make_cid

from .errors import RemoteProtocolError
from .varint import decode_uvarint, encode_uvarint

# UnixFS Data.DataType
RAW, DIRECTORY, FILE, METADATA, SYMLINK, HAMT_SHARD = range(6)

# A dag-pb node we accept is at most this large (1 MiB of data + links; bitswap's limit is 2 MiB).
MAX_NODE_SIZE = 2 * 1024 * 1024
MAX_LINKS = 65536


@dataclass(frozen=True, slots=True)
class Link:
    cid: bytes
    name: str
    tsize: int


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Node:
    links: tuple[Link, ...]
    unixfs: UnixFSData


# -- protobuf primitives ---------------------------------------------------------------------

_varint = encode_uvarint
_read_varint = decode_uvarint


def _field(tag: int, payload: bytes) -> bytes:
    return _varint(tag) + _varint(len(payload)) + payload


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (field number, wire type, value)."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _read_varint(buf, pos)
            out.append((num, wire, val))
        elif wire == 2:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise RemoteProtocolError("truncated field")
            out.append((num, wire, buf[pos:pos + n]))
            pos += n
        else:
            raise RemoteProtocolError(f"unsupported protobuf wire type {wire}")
    return out


# -- encoding --------------------------------------------------------------------------------

def encode_unixfs(d: UnixFSData) -> bytes:
    out = bytearray(b"\x08" + _varint(d.type))
    if d.data is not None:
        out += _field(0x12, d.data)
    if d.filesize is not None:
        out += b"\x18" + _varint(d.filesize)
    for size in d.blocksizes:
        out += b"\x20" + _varint(size)
    return bytes(out)


def _link_sort_key(link: Link) -> bytes:
    return link.name.encode("utf-8")


def encode_node(links: list[Link] | tuple[Link, ...], unixfs: UnixFSData) -> bytes:
    """Canonical dag-pb bytes; links are sorted by name bytes (stable for equal names)."""
    out = bytearray()
    for link in sorted(links, key=_link_sort_key):
        body = _field(0x0A, link.cid) + _field(0x12, link.name.encode("utf-8"))
        body += b"\x18" + _varint(link.tsize)
        out += _field(0x12, body)
    out += _field(0x0A, encode_unixfs(unixfs))
    return bytes(out)


# -- decoding --------------------------------------------------------------------------------

def decode_node(block: bytes) -> Node:
    """Decode a dag-pb UnixFS node; reject non-canonical or unsupported forms."""
    if len(block) > MAX_NODE_SIZE:
        raise RemoteProtocolError("dag-pb node too large")
    links: list[Link] = []
    data: bytes | None = None
    for num, wire, val in _fields(block):
        if num == 2 and wire == 2 and data is None:
            if len(links) >= MAX_LINKS:
                raise RemoteProtocolError("too many links")
            links.append(_decode_link(val))  # type: ignore[arg-type]
        elif num == 1 and wire == 2 and data is None:
            data = val  # type: ignore[assignment]
        else:
            raise RemoteProtocolError("unexpected or misordered field in dag-pb node")
    if data is None:
        raise RemoteProtocolError("dag-pb node without UnixFS data")
    names = [_link_sort_key(link) for link in links]
    if names != sorted(names):
        raise RemoteProtocolError("dag-pb links not sorted by name")
    return Node(tuple(links), _decode_unixfs(data))


def _decode_link(buf: bytes) -> Link:
    fields = _fields(buf)
    got = [(num, wire) for num, wire, _ in fields]
    if got != [(1, 2), (2, 2), (3, 0)]:
        raise RemoteProtocolError("dag-pb link must have Hash, Name and Tsize in order")
    cid, name, tsize = (f[2] for f in fields)
    try:
        cid_codec(cid)  # type: ignore[arg-type]
    except BadCID as exc:
        raise RemoteProtocolError(str(exc)) from None
    try:
        text = name.decode("utf-8")  # type: ignore[union-attr]
    except UnicodeDecodeError:
        raise RemoteProtocolError("link name is not UTF-8") from None
    return Link(cid, text, tsize)  # type: ignore[arg-type]


def _decode_unixfs(buf: bytes) -> UnixFSData:
    kind = None
    data = filesize = None
    sizes: list[int] = []
    order = []
    for num, wire, val in _fields(buf):
        order.append(num)
        if num == 1 and wire == 0:
            kind = val
        elif num == 2 and wire == 2:
            data = val
        elif num == 3 and wire == 0:
            filesize = val
        elif num == 4 and wire == 0:
            sizes.append(val)  # type: ignore[arg-type]
        else:
            raise RemoteProtocolError(f"unsupported UnixFS field {num}")
    if order != sorted(order) or order.count(1) != 1 or order.count(2) > 1 or order.count(3) > 1:
        raise RemoteProtocolError("malformed UnixFS data")
    if kind not in (FILE, DIRECTORY, RAW):
        raise RemoteProtocolError(f"unsupported UnixFS type {kind}")
    return UnixFSData(kind, data, filesize, tuple(sizes))  # type: ignore[arg-type]


def node_cid(block: bytes) -> bytes:
    return make_cid(CID_DAG_PB, block)


def leaf_cid(chunk: bytes) -> bytes:
    return make_cid(CID_RAW, chunk)
