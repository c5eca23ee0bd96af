"""Bundle records: the signed index of a CAR bundle, its pages, and the wants file
(specs/bundles.md §3–5).

All three are canonical msgpack maps (protocol/codec.py).  The index and the wants file are
signed by a school key under the domains ``bundle-index`` and ``wants``; index pages are not
signed themselves but are named by their CIDs in the signed index, so the signature covers
them.  Decoding checks, in order: size, canonical bytes, field set and types, version,
signature, and only then the meaning of the fields — as ``records.decode_entry`` does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crypto import (
    CID_DAG_PB, CID_RAW, BadCID, BadSignature, PublicKey, SchoolKey, cid_codec, make_cid,
)

from . import codec, dagpb, vocab
from .errors import LocalProtocolError, RemoteProtocolError
from .paths import BadPath, check_name
from .records import MAX_SEQ, is_resource_id
from .unixfs import MAX_DIRECTORY_ENTRIES

VERSION = 1
INDEX_DOMAIN = "bundle-index"
WANTS_DOMAIN = "wants"
INDEX_FIELDS = frozenset({"v", "exporter", "time", "feeds", "pages", "sig"})
PAGE_FIELDS = frozenset({"resources", "entries"})
WANTS_FIELDS = frozenset({"v", "school", "time", "feeds", "roots", "asks", "sig"})
ASKS_FIELDS = frozenset({"all", "subjects", "levels"})

# Every record is at most codec.MAX_RECORD_SIZE (1 MiB); these counts keep each one under it.
MAX_FEEDS = 5_000            # feed ranges in an index, feed heads in a wants file (~90 B each)
MAX_PAGES = 10_000           # index pages (38 B each)
MAX_PAGE_RESOURCES = 5_000   # resources on one page (~100 B each)
MAX_PAGE_ENTRIES = 10_000    # entry hashes on one page (34 B each)
MAX_WANTS_ROOTS = 20_000     # content roots held, in a wants file (38 B each)
MAX_SUBJECTS = 20            # as a resource's "about"
MAX_SUBJECT_LEN = 100
# File names in the library folder of a bundle: "<title> (<resource id>)"; the title part is
# cut to this many UTF-8 bytes so the name stays under paths.MAX_NAME_BYTES (255).
_VIEW_TITLE_BYTES = 180
_VIEW_UNSAFE = set('/\\:*?"<>|')


# -- shared field checks ---------------------------------------------------------------------

def _bin(m: dict, key: str, size: int) -> bytes:
    v = m[key]
    if not isinstance(v, bytes) or len(v) != size:
        raise RemoteProtocolError(f"{key} must be {size} bytes")
    return v


def _int(m: dict, key: str, lo: int, hi: int) -> int:
    v = m[key]
    if type(v) is not int or not lo <= v <= hi:
        raise RemoteProtocolError(f"{key} out of range")
    return v


def _list(m: dict, key: str, limit: int) -> list:
    v = m[key]
    if not isinstance(v, list) or len(v) > limit:
        raise RemoteProtocolError(f"{key} must be a list of at most {limit} items")
    return v


def _cid(value: Any, what: str, codecs: tuple[int, ...]) -> bytes:
    if not isinstance(value, bytes):
        raise RemoteProtocolError(f"{what} must be a binary CID")
    try:
        c = cid_codec(value)
    except BadCID as exc:
        raise RemoteProtocolError(f"{what}: {exc}") from None
    if c not in codecs:
        raise RemoteProtocolError(f"{what} has the wrong codec")
    return value


def _sorted_unique(keys: list[bytes], what: str) -> None:
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise RemoteProtocolError(f"{what} must be sorted and unique")


def _fields(m: Any, fields: frozenset[str], what: str) -> dict:
    if not isinstance(m, dict) or set(m) != fields:
        raise RemoteProtocolError(f"{what} must have exactly the fields "
                                  + ", ".join(sorted(fields)))
    return m


def _verify(key: bytes, domain: str, m: dict, what: str) -> None:
    if not isinstance(m["sig"], bytes) or len(m["sig"]) != 64:
        raise RemoteProtocolError("sig must be 64 bytes")
    unsigned = codec.encode({k: v for k, v in m.items() if k != "sig"})
    try:
        PublicKey(key).verify(domain, unsigned, m["sig"])
    except BadSignature:
        raise RemoteProtocolError(f"the {what} signature does not verify (tampered with, or "
                                  "signed by another school)") from None


def _remote(exc: LocalProtocolError) -> RemoteProtocolError:
    return RemoteProtocolError(str(exc))


def entry_cid(entry_hash: bytes) -> bytes:
    """The CID of a feed entry's block: CIDv1 raw sha2-256, whose digest *is* the entry hash
    (the hash of its canonical bytes, records.md §4)."""
    if len(entry_hash) != 32:
        raise LocalProtocolError("an entry hash is 32 bytes")
    return bytes([0x01, CID_RAW, 0x12, 0x20]) + entry_hash  # v1, raw, sha2-256, 32 bytes


# -- the index -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRange:
    """Entries ``first`` … ``last`` of ``feed`` are in the bundle; ``head`` is the hash of
    entry ``last``."""
    feed: bytes
    first: int
    last: int
    head: bytes

    def __post_init__(self) -> None:
        if len(self.feed) != 32 or len(self.head) != 32 or not 1 <= self.first <= self.last \
                or self.last > MAX_SEQ:
            raise LocalProtocolError("bad feed range")

    def to_map(self) -> dict[str, Any]:
        return {"feed": self.feed, "first": self.first, "last": self.last, "head": self.head}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRef:
    """Resource ``id`` at ``version``, whose content root ``content`` is in the bundle."""
    id: str
    version: int
    content: bytes

    def __post_init__(self) -> None:
        if not is_resource_id(self.id) or not 1 <= self.version <= MAX_SEQ:
            raise LocalProtocolError("bad resource reference")
        try:
            dag_pb = cid_codec(self.content) == CID_DAG_PB
        except BadCID:
            dag_pb = False
        if not dag_pb:
            raise LocalProtocolError("a resource's content root is a dag-pb CID")

    def to_map(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "content": self.content}


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleIndex:
    exporter: bytes                   # the exporting school's public key
    time: int                         # ms since the Unix epoch (informational)
    feeds: tuple[FeedRange, ...]
    pages: tuple[bytes, ...]          # CIDs (raw) of the index pages, in order
    sig: bytes
    raw: bytes = field(repr=False)    # canonical encoding, signature included

    @property
    def cid(self) -> bytes:
        return make_cid(CID_RAW, self.raw)

    @property
    def school_id(self) -> str:
        return PublicKey(self.exporter).school_id


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexPage:
    resources: tuple[ResourceRef, ...]
    entries: tuple[bytes, ...]        # entry hashes: each entry's block is raw with this digest


def encode_page(resources: Sequence[ResourceRef], entries: Sequence[bytes]) -> bytes:
    if len(resources) > MAX_PAGE_RESOURCES or len(entries) > MAX_PAGE_ENTRIES:
        raise LocalProtocolError("too many items for one index page")
    _check_unique([r.id.encode() for r in resources], "resources on a page")  # as decode_page
    _check_unique(list(entries), "entries on a page")
    return codec.encode({"resources": [r.to_map() for r in resources],
                         "entries": list(entries)})


def paginate(resources: Sequence[ResourceRef], entries: Sequence[bytes]) -> list[bytes]:
    """Split the lists over as many pages as needed (page i holds the i-th slice of each)."""
    n = max(-(-len(resources) // MAX_PAGE_RESOURCES), -(-len(entries) // MAX_PAGE_ENTRIES))
    return [encode_page(resources[i * MAX_PAGE_RESOURCES:(i + 1) * MAX_PAGE_RESOURCES],
                        entries[i * MAX_PAGE_ENTRIES:(i + 1) * MAX_PAGE_ENTRIES])
            for i in range(n)]


def decode_page(data: bytes) -> IndexPage:
    m = _fields(codec.decode(data), PAGE_FIELDS, "an index page")
    resources = []
    seen: set[str] = set()
    for r in _list(m, "resources", MAX_PAGE_RESOURCES):
        r = _fields(r, frozenset({"id", "version", "content"}), "a resource reference")
        if not isinstance(r["id"], str) or not is_resource_id(r["id"]) or r["id"] in seen:
            raise RemoteProtocolError("resource id missing, malformed or listed twice")
        seen.add(r["id"])
        resources.append(ResourceRef(id=r["id"], version=_int(r, "version", 1, MAX_SEQ),
                                     content=_cid(r["content"], "content", (CID_DAG_PB,))))
    entries = _list(m, "entries", MAX_PAGE_ENTRIES)
    if not all(isinstance(h, bytes) and len(h) == 32 for h in entries):
        raise RemoteProtocolError("entries must be 32-byte hashes")
    if len(set(entries)) != len(entries):
        raise RemoteProtocolError("an entry is listed twice")
    return IndexPage(resources=tuple(resources), entries=tuple(entries))


def sign_index(key: SchoolKey, *, time: int, feeds: Sequence[FeedRange],
               pages: Sequence[bytes]) -> BundleIndex:
    if len(feeds) > MAX_FEEDS or len(pages) > MAX_PAGES:
        raise LocalProtocolError("too many feeds or pages for one bundle index")
    feeds = sorted(feeds, key=lambda f: f.feed)
    _check_unique([f.feed for f in feeds], "feed ranges")
    _check_unique(list(pages), "index pages")  # decode_index refuses a page listed twice
    unsigned = {"v": VERSION, "exporter": key.public.raw, "time": time,
                "feeds": [f.to_map() for f in feeds], "pages": list(pages)}
    sig = key.sign(INDEX_DOMAIN, codec.encode(unsigned))
    raw = codec.encode({**unsigned, "sig": sig})
    return BundleIndex(exporter=key.public.raw, time=time, feeds=tuple(feeds),
                       pages=tuple(pages), sig=sig, raw=raw)


def _check_unique(keys: list[bytes], what: str) -> None:
    if len(set(keys)) != len(keys):
        raise LocalProtocolError(f"{what} must be unique")


def decode_index(data: bytes) -> BundleIndex:
    """Decode and verify a bundle index; RemoteProtocolError if anything is wrong."""
    m = _fields(codec.decode(data), INDEX_FIELDS, "a bundle index")
    if not codec.is_int(m["v"], VERSION):
        raise RemoteProtocolError(f"unknown bundle index version {m['v']!r}")
    exporter = _bin(m, "exporter", 32)
    time = _int(m, "time", 0, 2**63 - 1)
    feeds_in = _list(m, "feeds", MAX_FEEDS)
    pages_in = _list(m, "pages", MAX_PAGES)
    _verify(exporter, INDEX_DOMAIN, m, "bundle index")
    feeds = []
    for f in feeds_in:
        f = _fields(f, frozenset({"feed", "first", "last", "head"}), "a feed range")
        first, last = _int(f, "first", 1, MAX_SEQ), _int(f, "last", 1, MAX_SEQ)
        if first > last:
            raise RemoteProtocolError("a feed range ends before it starts")
        feeds.append(FeedRange(feed=_bin(f, "feed", 32), first=first, last=last,
                               head=_bin(f, "head", 32)))
    _sorted_unique([f.feed for f in feeds], "feed ranges")
    pages = tuple(_cid(p, "page", (CID_RAW,)) for p in pages_in)
    if len(set(pages)) != len(pages):
        raise RemoteProtocolError("an index page is listed twice")
    return BundleIndex(exporter=exporter, time=time, feeds=tuple(feeds), pages=pages,
                       sig=m["sig"], raw=bytes(data))


# -- wants -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """The receiving school holds ``feed`` up to entry ``seq``, whose hash is ``hash``."""
    feed: bytes
    seq: int
    hash: bytes

    def to_map(self) -> dict[str, Any]:
        return {"feed": self.feed, "seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, slots=True, kw_only=True)
class Asks:
    """What content the school asks for: everything, or resources matching the filters.
    No filter and not ``all`` asks for the catalog (feed entries) only."""
    all: bool = False
    subjects: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_asks(self.all, list(self.subjects), list(self.levels))

    def to_map(self) -> dict[str, Any]:
        return {"all": self.all, "subjects": list(self.subjects), "levels": list(self.levels)}

    def matches(self, meta: dict[str, Any]) -> bool:
        """Does a resource with this LRMI metadata match?  Subjects compare case-insensitively;
        a subject and a level filter must both match (any one value of each)."""
        if self.all:
            return True
        if not self.subjects and not self.levels:
            return False
        about = {s.casefold() for s in meta.get("about", [])}
        if self.subjects and not about & {s.casefold() for s in self.subjects}:
            return False
        return not self.levels or bool(set(self.levels) & set(meta.get("educationalLevel", [])))


def _check_asks(all_: Any, subjects: Any, levels: Any) -> None:
    if not isinstance(all_, bool):
        raise LocalProtocolError("asks.all must be true or false")
    if not isinstance(subjects, list) or not isinstance(levels, list):
        raise LocalProtocolError("asks.subjects and asks.levels must be lists")
    if all_ and (subjects or levels):
        raise LocalProtocolError("asking for all content excludes subject and level filters")
    if len(subjects) > MAX_SUBJECTS:
        raise LocalProtocolError(f"at most {MAX_SUBJECTS} subjects")
    for s in subjects:
        if not isinstance(s, str) or not s.strip() or len(s) > MAX_SUBJECT_LEN:
            raise LocalProtocolError(f"a subject is 1-{MAX_SUBJECT_LEN} characters")
    for lv in levels:
        vocab.check_choice("level", lv if isinstance(lv, str) else repr(lv), vocab.LEVELS)
    if len(set(subjects)) != len(subjects) or len(set(levels)) != len(levels):
        raise LocalProtocolError("asks has duplicates")


@dataclass(frozen=True, slots=True, kw_only=True)
class Wants:
    school: bytes                 # the receiving school's public key
    time: int
    feeds: tuple[Head, ...]       # sorted by feed
    roots: tuple[bytes, ...]      # content roots held in full, sorted
    asks: Asks
    sig: bytes
    raw: bytes = field(repr=False)

    @property
    def school_id(self) -> str:
        return PublicKey(self.school).school_id


def sign_wants(key: SchoolKey, *, time: int, feeds: Iterable[Head], roots: Iterable[bytes],
               asks: Asks) -> Wants:
    feeds = sorted(feeds, key=lambda h: h.feed)
    roots = sorted(set(roots))
    _check_unique([h.feed for h in feeds], "feed heads")
    if len(feeds) > MAX_FEEDS:
        raise LocalProtocolError(f"a wants file lists at most {MAX_FEEDS} feeds")
    if len(roots) > MAX_WANTS_ROOTS:
        raise LocalProtocolError(f"a wants file lists at most {MAX_WANTS_ROOTS} content roots")
    unsigned = {"v": VERSION, "school": key.public.raw, "time": time,
                "feeds": [h.to_map() for h in feeds], "roots": roots, "asks": asks.to_map()}
    sig = key.sign(WANTS_DOMAIN, codec.encode(unsigned))
    raw = codec.encode({**unsigned, "sig": sig})
    return Wants(school=key.public.raw, time=time, feeds=tuple(feeds), roots=tuple(roots),
                 asks=asks, sig=sig, raw=raw)


def decode_wants(data: bytes) -> Wants:
    """Decode and verify a wants file; RemoteProtocolError if anything is wrong."""
    m = _fields(codec.decode(data), WANTS_FIELDS, "a wants file")
    if not codec.is_int(m["v"], VERSION):
        raise RemoteProtocolError(f"unknown wants version {m['v']!r}")
    school = _bin(m, "school", 32)
    time = _int(m, "time", 0, 2**63 - 1)
    feeds_in = _list(m, "feeds", MAX_FEEDS)
    roots_in = _list(m, "roots", MAX_WANTS_ROOTS)
    asks_in = _fields(m["asks"], ASKS_FIELDS, "asks")
    _verify(school, WANTS_DOMAIN, m, "wants file")
    feeds = []
    for h in feeds_in:
        h = _fields(h, frozenset({"feed", "seq", "hash"}), "a feed head")
        feeds.append(Head(feed=_bin(h, "feed", 32), seq=_int(h, "seq", 1, MAX_SEQ),
                          hash=_bin(h, "hash", 32)))
    _sorted_unique([h.feed for h in feeds], "feed heads")
    roots = [_cid(r, "root", (CID_DAG_PB, CID_RAW)) for r in roots_in]
    _sorted_unique(roots, "roots")
    try:
        _check_asks(asks_in["all"], asks_in["subjects"], asks_in["levels"])  # lists, not 5/"ab"
        asks = Asks(all=asks_in["all"], subjects=tuple(asks_in["subjects"]),
                    levels=tuple(asks_in["levels"]))
    except LocalProtocolError as exc:
        raise _remote(exc) from None
    return Wants(school=school, time=time, feeds=tuple(feeds), roots=tuple(roots), asks=asks,
                 sig=m["sig"], raw=bytes(data))


# -- the library folder (what `ipfs-car unpack` writes) -------------------------------------

def view_name(title: str, resource_id: str) -> str:
    """A safe, unique folder name for a resource in a bundle's library folder:
    ``"<title> (<resource id>)"``, the title cleaned of characters no file system takes and
    cut to fit."""
    text = unicodedata.normalize("NFC", title)
    text = "".join("_" if c in _VIEW_UNSAFE or ord(c) < 0x20 or ord(c) == 0x7F else c
                   for c in text).strip().strip(".").strip()
    raw = text.encode("utf-8")[:_VIEW_TITLE_BYTES]
    text = raw.decode("utf-8", "ignore").rstrip()
    name = f"{text} ({resource_id})" if text else resource_id
    try:
        check_name(name)
    except BadPath:  # e.g. a title that is a device name: "CON (r...)" is fine, but be safe
        name = resource_id
    return name


def library_folder(items: Sequence[tuple[str, bytes, int]]
                   ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The UnixFS folder ``ipfs-car unpack`` writes from ``(name, content root, total size)``:
    one sub-folder per resource; above 1,000 resources they are grouped in folders of 1,000
    named 0001, 0002, ...  Returns the root CID and the folder blocks (root first)."""
    def folder(links: list[dagpb.Link]) -> tuple[bytes, bytes, int]:
        data = dagpb.encode_node(links, dagpb.UnixFSData(dagpb.DIRECTORY))
        return dagpb.node_cid(data), data, len(data) + sum(link.tsize for link in links)

    links = [dagpb.Link(cid, name, size) for name, cid, size in items]
    blocks: list[tuple[bytes, bytes]] = []
    if len(links) > MAX_DIRECTORY_ENTRIES:
        groups = []
        for i in range(0, len(links), MAX_DIRECTORY_ENTRIES):
            cid, data, size = folder(links[i:i + MAX_DIRECTORY_ENTRIES])
            blocks.append((cid, data))
            groups.append(dagpb.Link(cid, f"{i // MAX_DIRECTORY_ENTRIES + 1:04d}", size))
        links = groups
    cid, data, _ = folder(links)
    return cid, [(cid, data), *blocks]
