"""Metadata vocabularies (specs/records.md §5). Values are the identifiers stored in records."""

from __future__ import annotations

import re
from typing import Any

from .errors import LocalProtocolError

# Kolibri's grade-level vocabulary (le_utils.constants.labels.levels), as kebab-case names;
# the value is Kolibri's own id, kept for export to Kolibri channels.
LEVELS = {
    "preschool": "b#GEd",
    "lower-primary": "by0beT",
    "upper-primary": "bSQdiJ",
    "lower-secondary": "svpsy",
    "upper-secondary": "dn4KHz",
    "tertiary": "b&jDyf",
    "professional": "dnezU7",
    "work-skills": "dp73Sn",
    "basic-skills": "chRJoI",
}

# Kolibri's resource types (le_utils.constants.labels.resource_type) plus three that schools
# publish most and Kolibri lacks: worksheet, courseware and micro-lecture (short video lesson).
RESOURCE_TYPES = (
    "lesson-plan", "lesson", "worksheet", "exercise", "courseware", "micro-lecture", "media",
    "textbook", "book", "tutorial", "activity", "game", "guide",
)

# SPDX identifiers of the licences schools use for open educational resources.
LICENSES = (
    "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0", "CC0-1.0", "CC-PDDC", "GFDL-1.3-or-later", "MIT", "Apache-2.0",
    "LicenseRef-All-Rights-Reserved",
)
DEFAULT_LICENSE = "CC-BY-4.0"

# Textbook curriculum (specs/records.md §5.3): grades 0 (学前, preschool) to 12, volumes, and
# the editions offered as suggestions (the edition itself is free text).
GRADE_MIN, GRADE_MAX = 0, 12
VOLUMES = ("first", "second", "single")        # 上册, 下册, 全一册
COMMON_EDITIONS = ("人教版", "北师大版", "统编版", "部编版", "苏教版", "外研版", "沪教版",
                   "湘教版", "冀教版", "青岛版", "浙教版", "译林版", "教科版", "粤教版")
NUMBER_MAX = 999                              # unit and lesson numbers


VOLUME_WORDS = {"上册": "first", "下册": "second", "全一册": "single", "上": "first",
                "下": "second"}
GRADE_WORDS = {"学前": 0, "preschool": 0}
_PART = re.compile(r"^\s*(?:第\s*)?(\d+)\s*(?:单元|课|[.、:：)）]|\s|$)\s*(.*)$", re.S)


def parse_grade(text: str) -> int:
    """``3``, ``学前`` or ``preschool`` → the record's grade (0–12)."""
    t = text.strip()
    g = GRADE_WORDS.get(t.casefold(), GRADE_WORDS.get(t))
    if g is None and t.isdigit() and t.isascii():
        g = int(t)
    if g is None or not GRADE_MIN <= g <= GRADE_MAX:
        raise LocalProtocolError(f"grade {text!r}: give 学前 (preschool) or 1-12")
    return g


def parse_volume(text: str) -> str:
    """``上册``/``下册``/``全一册`` or ``first``/``second``/``single`` → the identifier."""
    t = text.strip()
    v = VOLUME_WORDS.get(t, t.casefold())
    if v not in VOLUMES:
        raise LocalProtocolError(f"volume {text!r}: give 上册, 下册 or 全一册 "
                                 "(first, second, single)")
    return v


def parse_part(text: str, what: str = "unit") -> dict[str, Any]:
    """``"5 时、分、秒"`` → ``{"number": 5, "title": "时、分、秒"}``; a number or a title alone
    gives only that key (``第5单元``, ``1. 认识钟表`` work too)."""
    t = text.strip()
    if not t:
        raise LocalProtocolError(f"{what}: give a number, a title or both (\"5 时、分、秒\")")
    m = _PART.match(t)
    out: dict[str, Any] = {}
    if m:
        n = int(m.group(1))
        if not 1 <= n <= NUMBER_MAX:
            raise LocalProtocolError(f"{what} number must be 1-{NUMBER_MAX}")
        out["number"] = n
        t = m.group(2).strip()
    if t:
        if len(t) > 200:
            raise LocalProtocolError(f"{what} title is longer than 200 characters")
        out["title"] = t
    return out


def part_label(part: Any) -> str:
    """``{"number": 5, "title": "时、分、秒"}`` → ``"5 时、分、秒"``."""
    if not isinstance(part, dict):
        return ""
    return " ".join(str(part[k]) for k in ("number", "title") if k in part)


def level_of_grade(grade: int) -> str:
    """The Kolibri level a school grade belongs to (China: 6 primary, 3 + 3 secondary)."""
    if grade == 0:
        return "preschool"
    return ("lower-primary" if grade <= 3 else "upper-primary" if grade <= 6
            else "lower-secondary" if grade <= 9 else "upper-secondary")


# Who pays for / provides the material (the seed's supply models).
SUPPLY = ("government", "market", "public-welfare", "school")
# How the material reaches a classroom (the seed's three classroom forms).
CLASSROOM = ("specialised-delivery", "master-teacher", "elite-school")

# RFC 5646 well-formed tag, without grandfathered/private-use-only forms.
_BCP47 = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(-[A-WY-Za-wy-z0-9](-[A-Za-z0-9]{2,8})+)*"
    r"(-[xX](-[A-Za-z0-9]{1,8})+)?$")
# ISO 8601 duration as used by LRMI timeRequired, e.g. PT40M, PT1H30M, P2D.
_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


# The checks take values straight from decoded records, so any type may arrive: anything but
# text is refused with the same error as an unknown text (and never reaches ``in`` or ``re``).

def check_choice(field: str, value: str, allowed: tuple[str, ...] | dict[str, str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise LocalProtocolError(
            f"unknown {field} {value!r}; allowed: {', '.join(allowed)}")
    return value


def check_language(tag: str) -> str:
    if not isinstance(tag, str) or not _BCP47.match(tag):
        raise LocalProtocolError(
            f"language {tag!r} is not a BCP 47 tag (examples: zh-CN, en, bo, ug-Arab-CN)")
    return tag


def check_duration(text: str) -> str:
    if not isinstance(text, str) or not _DURATION.match(text):
        raise LocalProtocolError(
            f"time required {text!r} is not an ISO 8601 duration (examples: PT40M, PT1H30M)")
    return text
