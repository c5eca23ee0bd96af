"""Feed sync (``/schoolmesh/feed/1.0.0``) and signed feed heads (specs/feedsync.md). Sans-IO.

One request and one response per stream, each a frame: unsigned LEB128 length, then a
canonical msgpack map. Entries travel as their signed bytes and are verified by the receiver
(records.decode_entry + chain) before anything is stored; the server is never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crypto import BadSignature, PublicKey, SchoolKey, sha256

from . import codec, framing, records
from .errors import LocalProtocolError, RemoteProtocolError

PROTOCOL_ID = "/schoolmesh/feed/1.0.0"
HEAD_DOMAIN = "feed-head"
MAX_FRAME = 4 * 1024 * 1024        # one frame; an entry is at most codec.MAX_RECORD_SIZE (1 MiB)
MAX_ENTRIES_PER_RESPONSE = 256
RESPONSE_SOFT_BYTES = 2 * 1024 * 1024  # servers stop adding entries past this (always >= 1)
MAX_FEEDS_PER_REQUEST = 1024
MAX_HEAD_ENTRY = 32 * 1024         # a head carries its entry only up to this size


def encode_body(msg: dict[str, Any]) -> bytes:
    """One message's canonical bytes (the payload of its frame)."""
    body = codec.encode(msg)
    if len(body) > MAX_FRAME:
        raise LocalProtocolError("frame too large")
    return body


def encode_frame(msg: dict[str, Any]) -> bytes:
    return framing.encode_frame(encode_body(msg))


def decode_body(payload: bytes | memoryview) -> dict[str, Any]:
    """One frame's payload as a message map (not yet parsed into a message type)."""
    msg = codec.decode(bytes(payload), max_size=MAX_FRAME)
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise RemoteProtocolError("a message is a map with a text field t")
    return msg


class FrameDecoder:
    """Feed bytes as they arrive; take complete, decoded messages out (the frames are cut by
    protocol/framing.py, the one frame decoder of every stream protocol)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._frames = framing.FrameDecoder(max_frame)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._frames.receive_data(data)
        out = []
        while (frame := self._frames.next_frame()) is not None:
            out.append(decode_body(frame))
        return out

    @property
    def pending(self) -> int:
        return self._frames.buffered


# -- messages --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class HeadsRequest:
    feeds: tuple[bytes, ...]            # empty: every feed the server holds

    def to_msg(self) -> dict[str, Any]:
        return {"t": "heads?", "feeds": list(self.feeds)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    feed: bytes
    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Heads:
    heads: tuple[Head, ...]

    def to_msg(self) -> dict[str, Any]:
        return {"t": "heads", "heads": [{"feed": h.feed, "seq": h.seq, "hash": h.hash}
                                        for h in self.heads]}


@dataclass(frozen=True, slots=True, kw_only=True)
class EntriesRequest:
    feed: bytes
    after: int
    limit: int = MAX_ENTRIES_PER_RESPONSE

    def to_msg(self) -> dict[str, Any]:
        return {"t": "entries?", "feed": self.feed, "after": self.after, "limit": self.limit}


@dataclass(frozen=True, slots=True, kw_only=True)
class Entries:
    feed: bytes
    entries: tuple[bytes, ...]          # signed entry bytes, consecutive seqs after `after`
    more: bool

    def to_msg(self) -> dict[str, Any]:
        return {"t": "entries", "feed": self.feed, "entries": list(self.entries),
                "more": self.more}


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    code: str
    message: str

    def to_msg(self) -> dict[str, Any]:
        return {"t": "error", "code": self.code, "message": self.message}


Message = HeadsRequest | Heads | EntriesRequest | Entries | Error


def _key(v: Any, what: str) -> bytes:
    if not isinstance(v, bytes) or len(v) != 32:
        raise RemoteProtocolError(f"{what} must be 32 bytes")
    return v


def _int(v: Any, what: str, lo: int = 0, hi: int = 2**53) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise RemoteProtocolError(f"{what} out of range")
    return v


def _fields(m: dict[str, Any], names: set[str]) -> None:
    if set(m) != names | {"t"}:
        raise RemoteProtocolError(f"{m['t']} must have fields {', '.join(sorted(names))}")


def parse(m: dict[str, Any]) -> Message:
    """A decoded frame → a typed message; RemoteProtocolError for anything malformed."""
    t = m.get("t")
    if t == "heads?":
        _fields(m, {"feeds"})
        if not isinstance(m["feeds"], list) or len(m["feeds"]) > MAX_FEEDS_PER_REQUEST:
            raise RemoteProtocolError("feeds must be a list of at most "
                                      f"{MAX_FEEDS_PER_REQUEST} keys")
        return HeadsRequest(feeds=tuple(_key(f, "feed") for f in m["feeds"]))
    if t == "heads":
        _fields(m, {"heads"})
        if not isinstance(m["heads"], list) or len(m["heads"]) > MAX_FEEDS_PER_REQUEST:
            raise RemoteProtocolError("too many heads")
        heads = []
        for h in m["heads"]:
            if not isinstance(h, dict) or set(h) != {"feed", "seq", "hash"}:
                raise RemoteProtocolError("a head is a map of feed, seq and hash")
            heads.append(Head(feed=_key(h["feed"], "feed"), seq=_int(h["seq"], "seq", 1),
                              hash=_key(h["hash"], "hash")))
        return Heads(heads=tuple(heads))
    if t == "entries?":
        _fields(m, {"feed", "after", "limit"})
        return EntriesRequest(feed=_key(m["feed"], "feed"), after=_int(m["after"], "after"),
                              limit=_int(m["limit"], "limit", 1, MAX_ENTRIES_PER_RESPONSE))
    if t == "entries":
        _fields(m, {"feed", "entries", "more"})
        es = m["entries"]
        if not isinstance(es, list) or len(es) > MAX_ENTRIES_PER_RESPONSE or \
                not all(isinstance(e, bytes) for e in es):
            raise RemoteProtocolError("entries must be a list of byte strings")
        if not isinstance(m["more"], bool):
            raise RemoteProtocolError("more must be a boolean")
        return Entries(feed=_key(m["feed"], "feed"), entries=tuple(es), more=m["more"])
    if t == "error":
        _fields(m, {"code", "message"})
        if not isinstance(m["code"], str) or not isinstance(m["message"], str):
            raise RemoteProtocolError("error code and message must be text")
        return Error(code=m["code"][:64], message=m["message"][:500])
    raise RemoteProtocolError(f"unknown message type {t!r}")


# -- signed heads (gossip) -------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class SignedHead:
    feed: bytes
    seq: int
    hash: bytes
    time: int
    raw: bytes
    entry: bytes | None = None  # the entry at ``seq`` itself (hash-checked), if small


_HEAD_FIELDS = {"v", "feed", "seq", "hash", "time", "sig"}


def sign_head(key: SchoolKey, *, seq: int, hash: bytes, time: int,
              entry: bytes | None = None) -> SignedHead:
    """Sign a head; ``entry`` (the entry at ``seq``) rides along when at most MAX_HEAD_ENTRY
    bytes, so a follower one entry behind needs no round trip."""
    unsigned = {"v": 1, "feed": key.public.raw, "seq": seq, "hash": hash, "time": time}
    sig = key.sign(HEAD_DOMAIN, codec.encode(unsigned))
    carried = entry if entry is not None and len(entry) <= MAX_HEAD_ENTRY else None
    msg = {**unsigned, "sig": sig}
    if carried is not None:
        msg["entry"] = carried
    return SignedHead(feed=key.public.raw, seq=seq, hash=hash, time=time,
                      raw=codec.encode(msg), entry=carried)


def decode_head(data: bytes) -> SignedHead:
    """Verify a head announcement; RemoteProtocolError unless well-formed and signed by feed.

    A carried entry must hash to ``hash`` and be the entry at (``feed``, ``seq``) itself, with
    a valid signature: a head cannot smuggle another feed's entry (or another seq's) past the
    receiver's follow set and cutoffs.  Its chain is checked when it is appended."""
    m = codec.decode(data, max_size=MAX_HEAD_ENTRY + 1024)
    if not isinstance(m, dict) or set(m) - {"entry"} != _HEAD_FIELDS:
        raise RemoteProtocolError("a head has exactly v, feed, seq, hash, time, sig "
                                  "(and optionally entry)")
    if not codec.is_int(m["v"], 1):
        raise RemoteProtocolError("unknown head version")
    feed = _key(m["feed"], "feed")
    seq = _int(m["seq"], "seq", 1)
    hash_ = _key(m["hash"], "hash")
    time = _int(m["time"], "time", 0, 2**63 - 1)
    sig = m["sig"]
    if not isinstance(sig, bytes):
        raise RemoteProtocolError("sig must be bytes")
    unsigned = {k: v for k, v in m.items() if k not in ("sig", "entry")}
    try:
        PublicKey(feed).verify(HEAD_DOMAIN, codec.encode(unsigned), sig)
    except BadSignature:
        raise RemoteProtocolError("head signature does not verify") from None
    entry = m.get("entry")
    if "entry" in m:  # present means bytes: nil would be a second encoding of the same head
        if not isinstance(entry, bytes) or len(entry) > MAX_HEAD_ENTRY or \
                sha256(entry) != hash_:
            raise RemoteProtocolError("carried entry does not match the head hash")
        carried = records.decode_entry(entry)
        if carried.feed != feed or carried.seq != seq:
            raise RemoteProtocolError("carried entry is not the entry at the head's feed and seq")
    return SignedHead(feed=feed, seq=seq, hash=hash_, time=time, raw=bytes(data), entry=entry)
