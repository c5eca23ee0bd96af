"""Portable teacher identities (specs/teachers.md): certificates, revocations, signatures.

A teacher has an Ed25519 key of their own.  A school vouches for a teacher with a
``teacher.certificate`` entry in its feed and stops vouching with ``teacher.revocation``; a
teacher puts their name to another entry of the same feed with a ``teacher.signature`` entry,
which carries the teacher's signature over that entry's hash.  The bodies are checked here
(pure, like every record); whether a signature is admitted depends on the feed's earlier
entries and is decided by :func:`check_signature` (used by node/feeds.py ``append``).
"""

from __future__ import annotations

from typing import Any

from crypto import BadSignature, PublicKey

from .errors import LocalProtocolError
from .fields import text as _text

KIND_TEACHER_CERTIFICATE = "teacher.certificate"
KIND_TEACHER_REVOCATION = "teacher.revocation"
KIND_TEACHER_SIGNATURE = "teacher.signature"
TEACHER_KINDS = frozenset({KIND_TEACHER_CERTIFICATE, KIND_TEACHER_REVOCATION,
                           KIND_TEACHER_SIGNATURE})
SIGNATURE_DOMAIN = "teacher-entry"   # a teacher signs an entry's hash under this domain
MAX_SUBJECTS = 20
SUBJECT_CHARS = 100


def _exact(body: dict, required: set[str], optional: frozenset[str] = frozenset()) -> None:
    if not required <= set(body) <= required | optional:
        raise LocalProtocolError(
            f"body fields must be {', '.join(sorted(required))}"
            + (f" (optionally {', '.join(sorted(optional))})" if optional else "")
            + f" (got {', '.join(sorted(body))})")


def _key(body: dict, field: str) -> bytes:
    v = body.get(field)
    if not isinstance(v, bytes) or len(v) != 32:
        raise LocalProtocolError(f"{field} must be a 32-byte Ed25519 public key")
    try:
        PublicKey(v)
    except ValueError as exc:
        raise LocalProtocolError(f"{field}: {exc}") from None
    return v


def check_subjects(subjects: Any) -> list[str]:
    if not isinstance(subjects, list) or len(subjects) > MAX_SUBJECTS:
        raise LocalProtocolError(f"subjects must be a list of at most {MAX_SUBJECTS} texts")
    for s in subjects:
        if not isinstance(s, str) or not s.strip() or len(s) > SUBJECT_CHARS:
            raise LocalProtocolError(f"each subject is non-empty text of at most "
                                     f"{SUBJECT_CHARS} characters")
    if len(set(subjects)) != len(subjects):
        raise LocalProtocolError("subjects has duplicates")
    return subjects


def validate_body(kind: str, body: dict[str, Any]) -> None:
    if kind == KIND_TEACHER_CERTIFICATE:
        _exact(body, {"teacher", "name", "subjects", "school"})
        _key(body, "teacher")
        _text(body, "name", required=True)
        check_subjects(body["subjects"])
        if not isinstance(body["school"], str) or not body["school"].strip() \
                or len(body["school"]) > 200:
            raise LocalProtocolError("school must be non-empty text of at most 200 characters")
    elif kind == KIND_TEACHER_REVOCATION:
        _exact(body, {"teacher"}, frozenset({"reason"}))
        _key(body, "teacher")
        _text(body, "reason")
    elif kind == KIND_TEACHER_SIGNATURE:
        _exact(body, {"entry", "teacher", "sig"})
        if not isinstance(body["entry"], bytes) or len(body["entry"]) != 32:
            raise LocalProtocolError("entry must be a 32-byte entry hash")
        teacher = _key(body, "teacher")
        sig = body["sig"]
        if not isinstance(sig, bytes) or len(sig) != 64:
            raise LocalProtocolError("sig must be 64 bytes")
        try:
            PublicKey(teacher).verify(SIGNATURE_DOMAIN, body["entry"], sig)
        except BadSignature:
            raise LocalProtocolError("the teacher's signature does not verify") from None
    else:  # pragma: no cover - callers dispatch on TEACHER_KINDS
        raise LocalProtocolError(f"not a teacher kind: {kind!r}")


def signature_body(teacher_key: Any, entry_hash: bytes) -> dict[str, Any]:
    """The body of a ``teacher.signature`` entry: ``teacher_key`` (a crypto SchoolKey — the same
    Ed25519 key type) signs the hash of an entry of the school's feed."""
    return {"entry": entry_hash, "teacher": teacher_key.public.raw,
            "sig": teacher_key.sign(SIGNATURE_DOMAIN, entry_hash)}


# Kinds a teacher may sign: what a teacher makes or says (not the school's own decisions).
SIGNABLE_KINDS = frozenset({"resource.publish", "resource.update", "resource.retract",
                            "request", "feedback"})


def check_signature(body: dict[str, Any], signed_kind: str | None, signed_seq: int | None,
                    seq: int, certified: bool, already_signed: bool) -> None:
    """The feed rules of specs/teachers.md §4 for a ``teacher.signature`` at ``seq``: the entry
    it names is an earlier entry of the same feed of a signable kind (or a studio kind), not
    signed before, and the teacher holds a certificate of this feed not revoked before ``seq``.
    Raises LocalProtocolError naming the broken rule."""
    from .studio import STUDIO_KINDS
    if signed_kind is None or signed_seq is None or signed_seq >= seq:
        raise LocalProtocolError("the signed entry is not an earlier entry of this feed")
    if signed_kind not in SIGNABLE_KINDS and signed_kind not in STUDIO_KINDS:
        raise LocalProtocolError(f"a teacher does not sign {signed_kind} entries")
    if already_signed:
        raise LocalProtocolError("that entry already has a teacher's signature")
    if not certified:
        raise LocalProtocolError("the teacher holds no unrevoked certificate of this school")
