"""The bodies of community decision entries (specs/communities.md §2): a charter (a
demonstration school founds a community), certificates and revocations (a demonstration school
admits or removes a school), links (federation) and moderation (specs/oversight.md §3).
``records.validate_body`` calls :func:`validate_body` for these kinds; everything else about
communities (invite codes, the redeem messages, membership) is in :mod:`.membership`, which
builds on this module.
"""

from __future__ import annotations

from typing import Any

from crypto import PublicKey

from .errors import LocalProtocolError
from .fields import text

KIND_CHARTER = "community.charter"
KIND_CERTIFICATE = "community.certificate"
KIND_REVOCATION = "community.revocation"
KIND_LINK = "community.link"
COMMUNITY_KINDS = frozenset({KIND_CHARTER, KIND_CERTIFICATE, KIND_REVOCATION, KIND_LINK})
# A demonstration school hides (or shows again) a resource for its community (specs/oversight.md
# §3). Not a membership decision: membership resolution does not read it.
KIND_MODERATION = "community.moderation"
MODERATION_ACTIONS = ("hide", "unhide")

ROLE_MEMBER = "member"
ROLE_DEMONSTRATION = "demonstration"
CERT_ROLES = (ROLE_MEMBER, ROLE_DEMONSTRATION)
MAX_TIME = 2**63 - 1          # ms since the epoch; the entry field's range
INVITE_ID_SIZE = 16           # bytes of sha256(secret) used as the invite id
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def is_community_id(text: Any) -> bool:
    # 26 base32 characters carry 130 bits: the last 2 bits of a 16-byte id are zero, so its
    # last character is one of _B32[::4]; any other string names no community (and would
    # silently change into another id when an invite code carries its 16 bytes).
    return (isinstance(text, str) and len(text) == 27 and text[0] == "c"
            and all(c in _B32 for c in text[1:]) and text[-1] in _B32[::4])


def _check_school_id(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a school id")
    try:
        PublicKey.from_school_id(value)
    except ValueError:
        raise LocalProtocolError(f"{what} must be a school id") from None
    return value


def _check_time(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise LocalProtocolError(f"{what} must be a time in ms since the epoch")
    return value


def _check_community(value: Any, what: str = "community") -> str:
    if not is_community_id(value):
        raise LocalProtocolError(f"{what} must be a community id")
    return value


def _exact(body: dict, required: set[str], optional: set[str] = frozenset()) -> None:
    fields = set(body)
    if not required <= fields or not fields <= required | optional:
        want = ", ".join(sorted(required) + [f"[{o}]" for o in sorted(optional)])
        raise LocalProtocolError(f"body fields must be {want} (got {', '.join(sorted(body))})")


def validate_body(kind: str, body: dict[str, Any]) -> None:
    """Validate the body of a community kind; LocalProtocolError if it breaks a rule."""
    if kind == KIND_CHARTER:
        _exact(body, {"name"}, {"description"})
        text(body, "name", required=True)
        text(body, "description")
    elif kind == KIND_CERTIFICATE:
        _exact(body, {"community", "school", "role", "issued"}, {"expires", "invite"})
        _check_community(body["community"])
        _check_school_id(body["school"], "school")
        if body["role"] not in CERT_ROLES:
            raise LocalProtocolError(f"role must be one of {', '.join(CERT_ROLES)}")
        issued = _check_time(body["issued"], "issued")
        if "expires" in body and _check_time(body["expires"], "expires") <= issued:
            raise LocalProtocolError("expires must be after issued")
        if "invite" in body and (not isinstance(body["invite"], bytes)
                                 or len(body["invite"]) != INVITE_ID_SIZE):
            raise LocalProtocolError(f"invite must be a {INVITE_ID_SIZE}-byte invite id")
    elif kind == KIND_REVOCATION:
        _exact(body, {"community", "school", "time"}, {"reason"})
        _check_community(body["community"])
        _check_school_id(body["school"], "school")
        _check_time(body["time"], "time")
        text(body, "reason")
    elif kind == KIND_LINK:
        _exact(body, {"community", "other", "time"})
        _check_community(body["community"])
        _check_community(body["other"], "other")
        _check_time(body["time"], "time")
        if body["other"] == body["community"]:
            raise LocalProtocolError("a community cannot link to itself")
    elif kind == KIND_MODERATION:
        _exact(body, {"community", "resource", "action", "time"}, {"reason"})
        _check_community(body["community"])
        rid = body["resource"]
        if not (isinstance(rid, str) and len(rid) == 27 and rid[0] == "r"
                and all(c in _B32 for c in rid[1:])):
            raise LocalProtocolError("resource must be a resource id")
        if body["action"] not in MODERATION_ACTIONS:
            raise LocalProtocolError(f"action must be one of {', '.join(MODERATION_ACTIONS)}")
        _check_time(body["time"], "time")
        if body["action"] == "hide" and "reason" not in body:
            raise LocalProtocolError("hiding a resource needs a reason")
        text(body, "reason")
    else:
        raise LocalProtocolError(f"{kind!r} is not a community kind")
