"""Master-teacher studios (specs/teachers.md §6): entry kinds, ids, invite codes.

Studio entries live in the feeds of the members' schools; each takes effect only with a
``teacher.signature`` of the same feed naming it (the teacher who acts).  Bodies are checked
here; who may do what (the master teacher sets tasks, members submit, ...) is decided over all
entries by node/studio.py's pure ``fold``.
"""

from __future__ import annotations

import base64
from typing import Any

import msgpack

from crypto import BadSignature, PublicKey, SchoolKey, sha256

from .errors import LocalProtocolError
from .fields import text as _text

KIND_STUDIO_FOUND = "studio.found"
KIND_STUDIO_INVITE = "studio.invite"
KIND_STUDIO_JOIN = "studio.join"
KIND_STUDIO_COMMENT = "studio.comment"
KIND_STUDIO_TASK = "studio.task"
KIND_STUDIO_SUBMIT = "studio.submit"
KIND_STUDIO_REVIEW = "studio.review"
KIND_STUDIO_PAIR = "studio.pair"
KIND_STUDIO_LOG = "studio.log"
STUDIO_KINDS = frozenset({KIND_STUDIO_FOUND, KIND_STUDIO_INVITE, KIND_STUDIO_JOIN,
                          KIND_STUDIO_COMMENT, KIND_STUDIO_TASK, KIND_STUDIO_SUBMIT,
                          KIND_STUDIO_REVIEW, KIND_STUDIO_PAIR, KIND_STUDIO_LOG})
TEXT_MAX = 2000               # characters of a comment, task description or log note
SECRET_SIZE = 16
INVITE_KEY_DOMAIN = b"schoolmesh/v1/studio-invite-key\0"
JOIN_DOMAIN = "studio-join"
LOG_KINDS = ("observed", "advice")
CODE_PREFIX = "SMS1-"
MAX_CODE_SEEDS = 4
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _id(prefix: str, entry_hash: bytes) -> str:
    return prefix + base64.b32encode(entry_hash[:16]).decode("ascii").rstrip("=").lower()


def studio_id_of(entry_hash: bytes) -> str:
    return _id("s", entry_hash)


def task_id_of(entry_hash: bytes) -> str:
    return _id("t", entry_hash)


def _is_id(value: Any, prefix: str) -> bool:
    return (isinstance(value, str) and len(value) == 27 and value[0] == prefix
            and all(c in _B32 for c in value[1:]) and value[-1] in _B32[::4])


def is_studio_id(value: Any) -> bool:
    return _is_id(value, "s")


def is_task_id(value: Any) -> bool:
    return _is_id(value, "t")


def invite_key(secret: bytes) -> SchoolKey:
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        raise LocalProtocolError(f"an invite secret is exactly {SECRET_SIZE} bytes")
    return SchoolKey.from_seed(sha256(INVITE_KEY_DOMAIN + secret))


def join_message(studio: str, teacher: bytes) -> bytes:
    return studio.encode("ascii") + teacher


def join_proof(secret: bytes, studio: str, teacher: bytes) -> bytes:
    return invite_key(secret).sign(JOIN_DOMAIN, join_message(studio, teacher))


def proof_ok(verifier: bytes, studio: str, teacher: bytes, proof: bytes) -> bool:
    try:
        PublicKey(verifier).verify(JOIN_DOMAIN, join_message(studio, teacher), proof)
    except (BadSignature, ValueError):
        return False
    return True


def encode_code(studio: str, school_id: str, secret: bytes, seeds: list[str]) -> str:
    raw = msgpack.packb({"s": studio, "k": school_id, "x": secret, "a": seeds[:MAX_CODE_SEEDS]})
    return CODE_PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=")


def decode_code(code: str) -> dict[str, Any]:
    """studio, school (the founder's school id), secret, seeds; LocalProtocolError if bad."""
    code = "".join(code.split())
    if not code.upper().startswith(CODE_PREFIX):
        raise LocalProtocolError(f"a studio invite code starts with {CODE_PREFIX}")
    b32 = code[len(CODE_PREFIX):].upper()
    try:
        m = msgpack.unpackb(base64.b32decode(b32 + "=" * (-len(b32) % 8)))
        studio, school, secret, seeds = m["s"], m["k"], m["x"], m["a"]
        PublicKey.from_school_id(school)
    except Exception:  # noqa: BLE001 - any damage is one error for the user
        raise LocalProtocolError("this studio invite code is damaged or mistyped") from None
    if not is_studio_id(studio) or not isinstance(secret, bytes) or len(secret) != SECRET_SIZE \
            or not isinstance(seeds, list) or not all(isinstance(a, str) for a in seeds):
        raise LocalProtocolError("this studio invite code is damaged or mistyped")
    return {"studio": studio, "school": school, "secret": secret, "seeds": seeds}


def _exact(body: dict, required: set[str], optional: frozenset[str] = frozenset()) -> None:
    if not required <= set(body) <= required | optional:
        raise LocalProtocolError(f"body fields must be {', '.join(sorted(required))}"
                                 + (f" [{', '.join(sorted(optional))}]" if optional else "")
                                 + f" (got {', '.join(sorted(body))})")


def _long_text(body: dict, key: str, *, required: bool) -> None:
    v = body.get(key)
    if v is None and not required:
        return
    if not isinstance(v, str) or not v.strip() or len(v) > TEXT_MAX:
        raise LocalProtocolError(f"{key} must be non-empty text of at most {TEXT_MAX} "
                                 "characters")


def _bytes(body: dict, key: str, size: int) -> None:
    if not isinstance(body.get(key), bytes) or len(body[key]) != size:
        raise LocalProtocolError(f"{key} must be {size} bytes")


def _time(body: dict, key: str) -> None:
    if type(body.get(key)) is not int or not 0 <= body[key] < 2**63:
        raise LocalProtocolError(f"{key} must be a time in ms since the epoch")


def _studio(body: dict) -> None:
    if not is_studio_id(body.get("studio")):
        raise LocalProtocolError("studio must be a studio id")


def _resource(body: dict, key: str = "resource") -> None:
    # a resource id (records.is_resource_id, not imported: records imports this module)
    v = body.get(key)
    if not (isinstance(v, str) and len(v) == 27 and v[0] == "r"
            and all(c in _B32 for c in v[1:])):
        raise LocalProtocolError(f"{key} must be a resource id")


def validate_body(kind: str, body: dict[str, Any]) -> None:
    if kind == KIND_STUDIO_FOUND:
        _exact(body, {"name"}, frozenset({"about"}))
        _text(body, "name", required=True)
        _long_text(body, "about", required=False)
        return
    _studio(body)
    if kind == KIND_STUDIO_INVITE:
        _exact(body, {"studio", "school", "verifier", "expires"})
        if not isinstance(body["school"], str):
            raise LocalProtocolError("school must be a school id")
        try:
            PublicKey.from_school_id(body["school"])
        except ValueError:
            raise LocalProtocolError("school must be a school id") from None
        _bytes(body, "verifier", 32)
        _time(body, "expires")
    elif kind == KIND_STUDIO_JOIN:
        _exact(body, {"studio", "teacher", "proof"})
        _bytes(body, "teacher", 32)
        _bytes(body, "proof", 64)
    elif kind == KIND_STUDIO_COMMENT:
        _exact(body, {"studio", "resource", "text"}, frozenset({"replyTo"}))
        _resource(body)
        _long_text(body, "text", required=True)
        if "replyTo" in body:
            _bytes(body, "replyTo", 32)
    elif kind == KIND_STUDIO_TASK:
        _exact(body, {"studio", "title", "due"}, frozenset({"description", "resource"}))
        _text(body, "title", required=True)
        _time(body, "due")
        _long_text(body, "description", required=False)
        if "resource" in body:
            _resource(body)
    elif kind == KIND_STUDIO_SUBMIT:
        _exact(body, {"studio", "task", "resource"})
        if not is_task_id(body["task"]):
            raise LocalProtocolError("task must be a task id")
        _resource(body)
    elif kind == KIND_STUDIO_REVIEW:
        _exact(body, {"studio", "submission", "rating"}, frozenset({"comment"}))
        _bytes(body, "submission", 32)
        if type(body["rating"]) is not int or not 1 <= body["rating"] <= 5:
            raise LocalProtocolError("rating must be an integer 1-5")
        _long_text(body, "comment", required=False)
    elif kind == KIND_STUDIO_PAIR:
        _exact(body, {"studio", "mentor", "apprentice"})
        _bytes(body, "mentor", 32)
        _bytes(body, "apprentice", 32)
        if body["mentor"] == body["apprentice"]:
            raise LocalProtocolError("a teacher cannot mentor themselves")
    elif kind == KIND_STUDIO_LOG:
        _exact(body, {"studio", "pair", "note", "text"}, frozenset({"resource"}))
        _bytes(body, "pair", 32)
        if body["note"] not in LOG_KINDS:
            raise LocalProtocolError(f"note must be one of {', '.join(LOG_KINDS)}")
        _long_text(body, "text", required=True)
        if "resource" in body:
            _resource(body)
    else:  # pragma: no cover
        raise LocalProtocolError(f"not a studio kind: {kind!r}")

