"""Signed feed entries and the resource records they carry (specs/records.md).

Every entry is a canonical msgpack map signed by its feed's key under the domain
``feed-entry``.  Decoding checks, in order: size, canonical bytes, field types and limits,
version, signature — and only then the kind-specific body.  Nothing from outside is used before
the signature holds.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from crypto import (
    BadCID, BadSignature, PublicKey, SchoolKey, cid_codec, cid_to_str, sha256,
)
from crypto.cid import CID_DAG_PB, CID_SIZE

from . import codec, courses, decisions, studio, teachers, vocab
from .decisions import (  # noqa: F401  (the kinds are part of this module's interface)
    COMMUNITY_KINDS, KIND_CERTIFICATE, KIND_CHARTER, KIND_LINK, KIND_MODERATION, KIND_REVOCATION,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .fields import TEXT_LIMITS  # noqa: F401  (part of this module's interface)
from .fields import text as _text
from .paths import check_path

VERSION = 1
ENTRY_DOMAIN = "feed-entry"
ENTRY_FIELDS = frozenset({"v", "feed", "seq", "prev", "time", "kind", "body", "sig"})
MAX_SEQ = 2**53            # far beyond any school's lifetime of entries; keeps JSON exact
MAX_KIND_LEN = 64
MAX_FILES = 10_000         # files in one resource version (the record size limit binds first)

KIND_PROFILE = "profile"
KIND_PUBLISH = "resource.publish"
KIND_UPDATE = "resource.update"
KIND_RETRACT = "resource.retract"
KIND_REQUEST = "request"       # a teacher asks the community for a resource
KIND_FEEDBACK = "feedback"     # a teacher tells an author how a resource went in class
KIND_HOLDINGS = "holdings"     # the content roots a school keeps (specs/oversight.md §2)
HOLDINGS_DIGEST = 6            # bytes of each root's SHA-256 digest in a holdings summary
HOLDINGS_MAX = 150_000         # roots in one summary (900,000 bytes: under the record limit)
ROLES = ("school", "demonstration")

REQUEST_DESCRIPTION_MAX = 2000   # characters in a request's description
RATING_MIN, RATING_MAX = 1, 5
LIST_LIMITS = {"about": (20, 100), "keywords": (30, 100), "educationalLevel": (9, 32),
               "isBasedOn": (10, 64), "fulfils": (10, 64)}


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEntry:
    feed: bytes          # author's Ed25519 public key
    seq: int
    prev: bytes | None   # sha256 of the previous entry's bytes; None for seq 1
    time: int            # author's clock, ms since the Unix epoch (informational)
    kind: str
    body: dict[str, Any]
    sig: bytes
    raw: bytes = field(repr=False)   # the canonical encoding, signature included

    @property
    def hash(self) -> bytes:
        return sha256(self.raw)

    @property
    def school_id(self) -> str:
        return PublicKey(self.feed).school_id


def _unsigned(feed: bytes, seq: int, prev: bytes | None, time: int, kind: str,
              body: dict[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "feed": feed, "seq": seq, "prev": prev, "time": time, "kind": kind,
            "body": body}


def sign_entry(key: SchoolKey, *, seq: int, prev: bytes | None, time: int, kind: str,
               body: dict[str, Any]) -> FeedEntry:
    """Build and sign an entry; the body is validated first (LocalProtocolError if bad)."""
    if seq < 1 or seq > MAX_SEQ or (seq == 1) != (prev is None):
        raise LocalProtocolError("seq starts at 1 and only entry 1 has no prev")
    validate_body(kind, body, local=True)
    unsigned = _unsigned(key.public.raw, seq, prev, time, kind, body)
    sig = key.sign(ENTRY_DOMAIN, codec.encode(unsigned))
    raw = codec.encode({**unsigned, "sig": sig})
    return FeedEntry(feed=key.public.raw, seq=seq, prev=prev, time=time, kind=kind,
                     body=body, sig=sig, raw=raw)


def decode_entry(data: bytes) -> FeedEntry:
    """Decode and verify an entry from outside; RemoteProtocolError if anything is wrong."""
    m = codec.decode(data)
    if not isinstance(m, dict) or set(m) != ENTRY_FIELDS:
        raise RemoteProtocolError("feed entry must have exactly the fields "
                                  + ", ".join(sorted(ENTRY_FIELDS)))
    if not codec.is_int(m["v"], VERSION):
        raise RemoteProtocolError(f"unknown feed entry version {m['v']!r}")
    feed, seq, prev, time, kind, body, sig = (
        m["feed"], m["seq"], m["prev"], m["time"], m["kind"], m["body"], m["sig"])
    if not isinstance(feed, bytes) or len(feed) != 32:
        raise RemoteProtocolError("feed must be a 32-byte key")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise RemoteProtocolError("seq out of range")
    if seq == 1:
        if prev is not None:
            raise RemoteProtocolError("entry 1 must have prev = nil")
    elif not isinstance(prev, bytes) or len(prev) != 32:
        raise RemoteProtocolError("prev must be a 32-byte hash")
    if type(time) is not int or not 0 <= time < 2**63:
        raise RemoteProtocolError("time out of range")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_LEN:
        raise RemoteProtocolError("kind must be a short text")
    if not isinstance(body, dict):
        raise RemoteProtocolError("body must be a map")
    if not isinstance(sig, bytes) or len(sig) != 64:
        raise RemoteProtocolError("sig must be 64 bytes")
    unsigned = codec.encode(_unsigned(feed, seq, prev, time, kind, body))
    try:
        PublicKey(feed).verify(ENTRY_DOMAIN, unsigned, sig)
    except BadSignature as exc:
        raise RemoteProtocolError(f"feed entry {seq}: {exc}") from None
    try:
        validate_body(kind, body, local=False)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"feed entry {seq} ({kind}): {exc}") from None
    return FeedEntry(feed=feed, seq=seq, prev=prev, time=time, kind=kind, body=body,
                     sig=sig, raw=bytes(data))


def check_chain(previous: FeedEntry | None, entry: FeedEntry) -> None:
    """Raise RemoteProtocolError unless ``entry`` directly follows ``previous`` in its feed."""
    if previous is None:
        if entry.seq != 1:
            raise RemoteProtocolError(f"gap in feed: expected entry 1, got {entry.seq}")
        return
    if entry.feed != previous.feed:
        raise RemoteProtocolError("entry belongs to another feed")
    if entry.seq != previous.seq + 1:
        raise RemoteProtocolError(
            f"gap in feed: expected entry {previous.seq + 1}, got {entry.seq}")
    if entry.prev != previous.hash:
        raise RemoteProtocolError(f"broken chain at entry {entry.seq}: prev does not match")


def resource_id_of(entry: FeedEntry) -> str:
    """A resource's stable id: derived from the hash of the entry that first published it."""
    if entry.kind != KIND_PUBLISH:
        raise LocalProtocolError("only a resource.publish entry defines a resource id")
    return "r" + base64.b32encode(entry.hash[:16]).decode("ascii").rstrip("=").lower()


def is_resource_id(text: str) -> bool:
    return (len(text) == 27 and text[0] == "r"
            and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in text[1:]))


def request_id_of(entry: FeedEntry) -> str:
    """A request's id: like a resource id, from the hash of its ``request`` entry, prefix q."""
    if entry.kind != KIND_REQUEST:
        raise LocalProtocolError("only a request entry defines a request id")
    return "q" + base64.b32encode(entry.hash[:16]).decode("ascii").rstrip("=").lower()


def is_request_id(text: str) -> bool:
    return (len(text) == 27 and text[0] == "q"
            and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in text[1:]))


# -- bodies ----------------------------------------------------------------------------------

def _text_list(meta: dict, key: str) -> list[str]:
    v = meta.get(key)
    if v is None:
        return []
    count, length = LIST_LIMITS[key]
    if not isinstance(v, list) or not v or not all(isinstance(s, str) and s.strip() for s in v):
        raise LocalProtocolError(f"{key} must be a non-empty list of non-empty texts")
    if len(v) > count or any(len(s) > length for s in v):
        raise LocalProtocolError(f"{key}: at most {count} items of {length} characters")
    if len(set(v)) != len(v):
        raise LocalProtocolError(f"{key} has duplicates")
    return v


META_FIELDS = frozenset({
    "title", "description", "inLanguage", "about", "educationalLevel", "learningResourceType",
    "license", "creator", "keywords", "timeRequired", "isBasedOn", "supply", "classroom",
    "fulfils", "tool", "grade", "volume", "edition", "unit", "lesson", "basedOnLicense"})
# meta.tool: the tool a resource was made with (specs/records.md §5.2)
TOOL_FIELDS = frozenset({"name", "version", "instructionsHash"})
TOOL_OPTIONAL = frozenset({"model"})
HEX = frozenset("0123456789abcdef")


def _validate_tool(tool: Any) -> None:
    if not isinstance(tool, dict) or not TOOL_FIELDS <= set(tool) <= TOOL_FIELDS | TOOL_OPTIONAL:
        raise LocalProtocolError("tool must be a map of name, version, instructionsHash and "
                                 "optionally model")
    for key in ("name", "version", "model"):
        _text(tool, key)
    digest = tool["instructionsHash"]
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= HEX:
        raise LocalProtocolError("tool instructionsHash must be 64 lowercase hex digits "
                                 "(SHA-256)")


def _validate_part(part: Any, what: str) -> None:
    """``unit`` / ``lesson``: a map of an optional number and an optional title, not empty."""
    if not isinstance(part, dict) or not part or not set(part) <= {"number", "title"}:
        raise LocalProtocolError(f"{what} must be a map of number and/or title")
    if "number" in part:
        n = part["number"]
        if type(n) is not int or not 1 <= n <= vocab.NUMBER_MAX:
            raise LocalProtocolError(f"{what} number must be an integer 1-{vocab.NUMBER_MAX}")
    _text(part, "title")


def validate_curriculum(meta: dict) -> None:
    """The textbook fields of ``meta`` (specs/records.md §5.3)."""
    if "grade" in meta:
        g = meta["grade"]
        if type(g) is not int or not vocab.GRADE_MIN <= g <= vocab.GRADE_MAX:
            raise LocalProtocolError(
                f"grade must be an integer {vocab.GRADE_MIN}-{vocab.GRADE_MAX} (0: preschool)")
    if "volume" in meta:
        vocab.check_choice("volume", meta["volume"], vocab.VOLUMES)
    _text(meta, "edition")
    for what in ("unit", "lesson"):
        if what in meta:
            _validate_part(meta[what], what)
    if "basedOnLicense" in meta:
        lics = meta["basedOnLicense"]
        based = meta.get("isBasedOn")
        if not isinstance(lics, list) or not isinstance(based, list) or len(lics) != len(based):
            raise LocalProtocolError("basedOnLicense must list one licence per isBasedOn id")
        for lic in lics:
            vocab.check_choice("license", lic, vocab.LICENSES)


def validate_meta(meta: Any, *, local: bool = True) -> None:
    """Check metadata. Fields this version does not know are refused when we build a record
    and ignored (kept, not interpreted) when a record comes from outside, so adding a field
    later does not cut old schools off from new ones."""
    if not isinstance(meta, dict):
        raise LocalProtocolError("meta must be a map")
    unknown = set(meta) - META_FIELDS
    if unknown and local:
        raise LocalProtocolError(f"unknown metadata field(s): {', '.join(sorted(unknown))}")
    _text(meta, "title", required=True)
    _text(meta, "description")
    _text(meta, "creator")
    vocab.check_language(_text(meta, "inLanguage", required=True) or "")
    vocab.check_choice("license", _text(meta, "license", required=True) or "", vocab.LICENSES)
    _text_list(meta, "about")
    _text_list(meta, "keywords")
    for level in _text_list(meta, "educationalLevel"):
        vocab.check_choice("level", level, vocab.LEVELS)
    for rid in _text_list(meta, "isBasedOn"):
        if not is_resource_id(rid):
            raise LocalProtocolError(f"isBasedOn: {rid!r} is not a resource id")
    for qid in _text_list(meta, "fulfils"):
        if not is_request_id(qid):
            raise LocalProtocolError(f"fulfils: {qid!r} is not a request id")
    if "learningResourceType" in meta:
        vocab.check_choice("type", _text(meta, "learningResourceType") or "",
                           vocab.RESOURCE_TYPES)
    if "timeRequired" in meta:
        vocab.check_duration(_text(meta, "timeRequired") or "")
    if "supply" in meta:
        vocab.check_choice("supply", _text(meta, "supply") or "", vocab.SUPPLY)
    if "classroom" in meta:
        vocab.check_choice("classroom", _text(meta, "classroom") or "", vocab.CLASSROOM)
    if "tool" in meta:
        _validate_tool(meta["tool"])
    validate_curriculum(meta)


def _check_cid(value: Any, what: str, *, directory: bool = False) -> bytes:
    if not isinstance(value, bytes) or len(value) != CID_SIZE:
        raise LocalProtocolError(f"{what} must be a binary CID")
    try:
        codec_ = cid_codec(value)
    except BadCID as exc:
        raise LocalProtocolError(f"{what}: {exc}") from None
    if directory and codec_ != CID_DAG_PB:
        raise LocalProtocolError(f"{what} must be a dag-pb directory CID")
    return value


def _validate_files(files: Any) -> None:
    if not isinstance(files, list) or not files:
        raise LocalProtocolError("a resource needs at least one file")
    if len(files) > MAX_FILES:
        raise LocalProtocolError(f"at most {MAX_FILES} files per resource")
    last = b""
    for f in files:
        if not isinstance(f, dict) or set(f) != {"path", "cid", "size"}:
            raise LocalProtocolError("each file is a map of path, cid and size")
        path = f["path"]
        if not isinstance(path, str):
            raise LocalProtocolError("file path must be text")
        check_path(path)
        key = path.encode("utf-8")
        if key <= last:
            raise LocalProtocolError("files must be sorted by path, without duplicates")
        last = key
        _check_cid(f["cid"], f"file {path!r} cid")
        if type(f["size"]) is not int or not 0 <= f["size"] < 2**53:
            raise LocalProtocolError(f"file {path!r} size out of range")


def validate_body(kind: str, body: Any, *, local: bool) -> None:
    """Validate a body of a kind this version knows; unknown kinds are left alone when they
    come from outside (a newer school may use them) and refused when we build them."""
    if not isinstance(body, dict):
        raise LocalProtocolError("body must be a map")
    if kind == KIND_PROFILE:
        _exact(body, {"name", "role"})
        _text(body, "name", required=True)
        vocab.check_choice("role", body["role"], ROLES)
    elif kind in (KIND_PUBLISH, KIND_UPDATE):
        fields = {"version", "content", "files", "meta"}
        if kind == KIND_UPDATE:
            fields.add("resource")
            if not isinstance(body.get("resource"), str) or not is_resource_id(body["resource"]):
                raise LocalProtocolError("resource must be a resource id")
        _exact(body, fields)
        version = body["version"]
        if type(version) is not int or not 1 <= version <= MAX_SEQ:
            raise LocalProtocolError("version out of range")
        if (kind == KIND_PUBLISH) != (version == 1):
            raise LocalProtocolError("version 1 is published, later versions are updates")
        _check_cid(body["content"], "content", directory=True)
        _validate_files(body["files"])
        validate_meta(body["meta"], local=local)
    elif kind == KIND_RETRACT:
        _exact(body, {"resource", "reason"} if "reason" in body else {"resource"})
        if not isinstance(body.get("resource"), str) or not is_resource_id(body["resource"]):
            raise LocalProtocolError("resource must be a resource id")
        _text(body, "reason")
    elif kind == KIND_REQUEST:
        _exact(body, {"subject", "level", "description"})
        _text(body, "subject", required=True)
        vocab.check_choice("level", _text(body, "level", required=True) or "", vocab.LEVELS)
        d = body["description"]
        if not isinstance(d, str) or not d.strip():
            raise LocalProtocolError("description must be non-empty text")
        if len(d) > REQUEST_DESCRIPTION_MAX:
            raise LocalProtocolError(
                f"description is longer than {REQUEST_DESCRIPTION_MAX} characters")
    elif kind == KIND_FEEDBACK:
        _exact(body, {"resource", "used", "rating", "comment"} if "comment" in body
               else {"resource", "used", "rating"})
        if not isinstance(body.get("resource"), str) or not is_resource_id(body["resource"]):
            raise LocalProtocolError("resource must be a resource id")
        if not isinstance(body["used"], bool):
            raise LocalProtocolError("used must be true or false")
        rating = body["rating"]
        if type(rating) is not int or not RATING_MIN <= rating <= RATING_MAX:
            raise LocalProtocolError(f"rating must be an integer {RATING_MIN}-{RATING_MAX}")
        _text(body, "comment")
    elif kind == KIND_HOLDINGS:
        _exact(body, {"roots"})
        roots = body["roots"]
        if not isinstance(roots, bytes) or len(roots) % HOLDINGS_DIGEST:
            raise LocalProtocolError(f"roots must be bytes, a multiple of {HOLDINGS_DIGEST}")
        if len(roots) > HOLDINGS_MAX * HOLDINGS_DIGEST:
            raise LocalProtocolError(f"at most {HOLDINGS_MAX} roots in a holdings summary")
        d = HOLDINGS_DIGEST
        if any(roots[i - d:i] >= roots[i:i + d] for i in range(d, len(roots), d)):
            raise LocalProtocolError("roots must be sorted ascending, without duplicates")
    elif kind in COMMUNITY_KINDS or kind == KIND_MODERATION:
        decisions.validate_body(kind, body)
    elif kind in teachers.TEACHER_KINDS:
        teachers.validate_body(kind, body)
    elif kind in studio.STUDIO_KINDS:
        studio.validate_body(kind, body)
    elif kind in courses.COURSE_KINDS:
        courses.validate_body(kind, body, local=local)
    elif local:
        raise LocalProtocolError(f"unknown entry kind {kind!r}")


def _exact(body: dict, fields: set[str]) -> None:
    if set(body) != fields:
        raise LocalProtocolError(
            f"body fields must be {', '.join(sorted(fields))} (got {', '.join(sorted(body))})")


def entry_to_json(entry: FeedEntry) -> dict[str, Any]:
    """A JSON-friendly view of an entry (binary values as CID strings / hex)."""
    def conv(v: Any, key: str = "") -> Any:
        if isinstance(v, bytes):
            if key in ("content", "cid"):
                return cid_to_str(v)
            return v.hex()
        if isinstance(v, dict):
            return {k: conv(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x, key) for x in v]
        return v
    return {"school_id": entry.school_id, "seq": entry.seq, "hash": entry.hash.hex(),
            "prev": entry.prev.hex() if entry.prev else None, "time": entry.time,
            "kind": entry.kind, "body": conv(entry.body), "sig": entry.sig.hex()}
