"""Field rules shared by the record bodies of every kind (records.py, decisions.py)."""

from __future__ import annotations

from .errors import LocalProtocolError

# Text limits, in characters.
TEXT_LIMITS = {
    "name": 200, "title": 200, "description": 5000, "creator": 200, "reason": 1000,
    "subject": 100, "comment": 500, "version": 64, "model": 200,
    "edition": 100,
}


def text(body: dict, key: str, *, required: bool = False) -> str | None:
    v = body.get(key)
    if v is None:
        if required:
            raise LocalProtocolError(f"{key} is required")
        return None
    if not isinstance(v, str) or not v.strip():
        raise LocalProtocolError(f"{key} must be non-empty text")
    if len(v) > TEXT_LIMITS.get(key, 200):
        raise LocalProtocolError(f"{key} is longer than {TEXT_LIMITS.get(key, 200)} characters")
    return v
