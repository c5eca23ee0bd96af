"""Hypothesis strategies shared by tests/test_properties_*.py (tahoe-lafs keeps its own in
``allmydata/test/strategies.py``): msgpack-shaped values, valid protocol values, and mutations
of valid maps that keep them encodable, so decoders see inputs close to the real ones.
"""

from __future__ import annotations

import base64
import unicodedata
from typing import Any

from hypothesis import strategies as st

from crypto import CID_DAG_PB, CID_RAW, SchoolKey
from protocol import vocab
from protocol.errors import ProtocolError
from protocol.paths import check_name, check_path

B32 = "abcdefghijklmnopqrstuvwxyz234567"

# A few fixed keys: Ed25519 signing is deterministic, so examples replay exactly.
KEYS = tuple(SchoolKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
keys = st.sampled_from(KEYS)

# Values that other types compare equal to, or that decoders often mistake for each other.
CONFUSABLE = (True, False, 0, 1, -1, 2**53, 2**64 - 1, -(2**63), None, b"", "", [], {}, "1",
              b"\x00" * 32, [1], {"": 0})

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.binary(max_size=40) | st.text(max_size=20))


def msgpack_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Anything codec.decode can return: nil, bool, int, bytes, text, lists, text-keyed maps."""
    return st.recursive(
        scalars | st.sampled_from(CONFUSABLE),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=max_leaves)


msgpack_maps = st.dictionaries(st.text(max_size=8), msgpack_values(), max_size=6)
any_value = msgpack_values()


def _twin(value: Any) -> Any:
    """A value that Python finds equal to ``value`` but msgpack encodes differently (True for
    1, 0 for False...): a decoder comparing with ``==`` takes one for the other."""
    if isinstance(value, bool):
        return int(value)
    if value in (0, 1) and isinstance(value, int):
        return bool(value)
    return value


def _spots(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place inside ``value`` (paths of keys / indexes), the value itself included."""
    out = [path]
    if isinstance(value, dict):
        for k in sorted(value):
            out += _spots(value[k], (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _spots(v, (*path, i))
    return out


def _edit(value: Any, path: tuple, draw: Any) -> Any:
    """A copy of ``value`` with one random edit at ``path``."""
    if path:
        head, rest = path[0], path[1:]
        out = dict(value) if isinstance(value, dict) else list(value)
        out[head] = _edit(value[head], rest, draw)
        return out
    op = draw(st.sampled_from(("replace", "twin", "delete", "add")))
    if op == "twin":
        return _twin(value)
    if op == "delete" and isinstance(value, (dict, list)) and value:
        out = dict(value) if isinstance(value, dict) else list(value)
        del out[draw(st.sampled_from(sorted(out) if isinstance(out, dict) else range(len(out))))]
        return out
    if op == "add" and isinstance(value, dict):
        return {**value, draw(st.text(max_size=8)): draw(any_value)}
    if op == "add" and isinstance(value, list):
        return [*value, draw(st.sampled_from(value) if value else any_value)]
    return draw(st.sampled_from(CONFUSABLE) | any_value)


def _put(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    out = dict(value) if isinstance(value, dict) else list(value)
    out[path[0]] = _put(value[path[0]], path[1:], new)
    return out


def twin_edits(value: Any) -> list[Any]:
    """Every copy of ``value`` with exactly one field swapped for its twin (1 ↔ true, 0 ↔
    false), at every place that has one: a decoder must refuse each."""
    out = []
    for path in _spots(value):
        old = value
        for k in path:
            old = old[k]
        if type(_twin(old)) is not type(old):
            out.append(_put(value, path, _twin(old)))
    return out


@st.composite
def mutated(draw: Any, valid: Any, max_edits: int = 2) -> Any:
    """A value drawn from ``valid`` (a strategy, or a value) with 0..max_edits random edits."""
    value = draw(valid) if isinstance(valid, st.SearchStrategy) else valid
    for _ in range(draw(st.integers(0, max_edits))):
        value = _edit(value, draw(st.sampled_from(_spots(value))), draw)
    return value


@st.composite
def chunked(draw: Any, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (as a stream delivers it)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


# -- valid protocol values ---------------------------------------------------------------------

digests = st.binary(min_size=32, max_size=32)
raw_cids = digests.map(lambda d: bytes([1, CID_RAW, 0x12, 0x20]) + d)
dagpb_cids = digests.map(lambda d: bytes([1, CID_DAG_PB, 0x12, 0x20]) + d)
cids = raw_cids | dagpb_cids
resource_ids = st.text(B32, min_size=26, max_size=26).map(lambda s: "r" + s)
request_ids = st.text(B32, min_size=26, max_size=26).map(lambda s: "q" + s)
# a community id is the base32 of 16 bytes (its last 2 bits are zero)
community_ids = st.binary(min_size=16, max_size=16).map(
    lambda b: "c" + base64.b32encode(b).decode("ascii").rstrip("=").lower())
school_ids = st.binary(min_size=32, max_size=32).map(lambda s: SchoolKey.from_seed(s).school_id)
times = st.integers(0, 2**63 - 1)


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=max_size).filter(lambda s: bool(s.strip()))


def _valid(check: Any) -> Any:
    def ok(value: Any) -> bool:
        try:
            check(value)
        except ProtocolError:
            return False
        return True
    return ok


names = (st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
         .map(lambda s: unicodedata.normalize("NFC", s)).filter(_valid(check_name)))
paths = st.lists(names, min_size=1, max_size=4).map("/".join).filter(_valid(check_path))
levels = st.sampled_from(sorted(vocab.LEVELS))
languages = st.sampled_from(("zh-CN", "en", "bo", "ug-Arab-CN", "zh-Hans-CN", "en-GB"))


def unique_sorted(strategy: st.SearchStrategy[Any], max_size: int = 4, min_size: int = 0
                  ) -> st.SearchStrategy[list]:
    return st.lists(strategy, min_size=min_size, max_size=max_size, unique=True).map(sorted)


# -- feed entry bodies (specs/records.md §5, specs/communities.md) ---------------------------

def _optional(draw: Any, out: dict, key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


@st.composite
def metas(draw: Any) -> dict[str, Any]:
    m = {"title": draw(texts(30)), "inLanguage": draw(languages),
         "license": draw(st.sampled_from(vocab.LICENSES))}
    _optional(draw, m, "description", texts(40))
    _optional(draw, m, "creator", texts(20))
    _optional(draw, m, "about", st.lists(texts(10), min_size=1, max_size=3, unique=True))
    _optional(draw, m, "keywords", st.lists(texts(10), min_size=1, max_size=3, unique=True))
    _optional(draw, m, "educationalLevel", st.lists(levels, min_size=1, max_size=3, unique=True))
    _optional(draw, m, "isBasedOn", st.lists(resource_ids, min_size=1, max_size=2, unique=True))
    _optional(draw, m, "fulfils", st.lists(request_ids, min_size=1, max_size=2, unique=True))
    _optional(draw, m, "learningResourceType", st.sampled_from(vocab.RESOURCE_TYPES))
    _optional(draw, m, "timeRequired", st.sampled_from(("PT40M", "PT1H30M", "P2D")))
    _optional(draw, m, "supply", st.sampled_from(vocab.SUPPLY))
    _optional(draw, m, "classroom", st.sampled_from(vocab.CLASSROOM))
    return m


@st.composite
def file_lists(draw: Any) -> list[dict[str, Any]]:
    ps = draw(st.lists(paths, min_size=1, max_size=3, unique_by=lambda p: p.encode("utf-8")))
    return [{"path": p, "cid": draw(cids), "size": draw(st.integers(0, 2**53 - 1))}
            for p in sorted(ps, key=lambda p: p.encode("utf-8"))]


@st.composite
def bodies(draw: Any) -> tuple[str, dict[str, Any]]:
    """(kind, body) of every kind this version knows, valid."""
    kind = draw(st.sampled_from((
        "profile", "resource.publish", "resource.update", "resource.retract", "request",
        "feedback", "community.charter", "community.certificate", "community.revocation",
        "community.link")))
    b: dict[str, Any]
    if kind == "profile":
        b = {"name": draw(texts(30)), "role": draw(st.sampled_from(("school", "demonstration")))}
    elif kind in ("resource.publish", "resource.update"):
        b = {"version": 1, "content": draw(dagpb_cids), "files": draw(file_lists()),
             "meta": draw(metas())}
        if kind == "resource.update":
            b["version"] = draw(st.integers(2, 2**53))
            b["resource"] = draw(resource_ids)
    elif kind == "resource.retract":
        b = {"resource": draw(resource_ids)}
        _optional(draw, b, "reason", texts(30))
    elif kind == "request":
        b = {"subject": draw(texts(20)), "level": draw(levels), "description": draw(texts(40))}
    elif kind == "feedback":
        b = {"resource": draw(resource_ids), "used": draw(st.booleans()),
             "rating": draw(st.integers(1, 5))}
        _optional(draw, b, "comment", texts(30))
    elif kind == "community.charter":
        b = {"name": draw(texts(30))}
        _optional(draw, b, "description", texts(30))
    elif kind == "community.certificate":
        issued = draw(st.integers(0, 2**62))
        b = {"community": draw(community_ids), "school": draw(school_ids),
             "role": draw(st.sampled_from(("member", "demonstration"))), "issued": issued}
        _optional(draw, b, "expires", st.integers(issued + 1, 2**63 - 1))
        _optional(draw, b, "invite", st.binary(min_size=16, max_size=16))
    elif kind == "community.revocation":
        b = {"community": draw(community_ids), "school": draw(school_ids), "time": draw(times)}
        _optional(draw, b, "reason", texts(30))
    else:
        a, o = draw(st.lists(community_ids, min_size=2, max_size=2, unique=True))
        b = {"community": a, "other": o, "time": draw(times)}
    return kind, b
