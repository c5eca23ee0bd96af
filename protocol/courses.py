"""Courses (specs/courses.md): the ``course.*`` entry bodies, course outlines, and the sans-IO
logic of adopting one — the date of every lesson from a weekly timetable, and whether each
lesson's resources are ready in time.

Nothing here does I/O: the node (node/courses.py) reads the database and hands this module
plain values, so the computation is tested and benchmarked on its own (bench/courses.py).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import LocalProtocolError
from .fields import text as _text

KIND_COURSE_PUBLISH = "course.publish"
KIND_COURSE_UPDATE = "course.update"
KIND_COURSE_RETRACT = "course.retract"
COURSE_KINDS = (KIND_COURSE_PUBLISH, KIND_COURSE_UPDATE, KIND_COURSE_RETRACT)

GRADES = ("学前", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")
VOLUMES = ("上册", "下册", "全一册")
MAX_UNITS = 50
MAX_LESSONS_PER_UNIT = 100
MAX_LESSONS = 500            # in one course, over all its units
MAX_RESOURCES_PER_LESSON = 20
MAX_PERIODS = 20             # periods one lesson may take
MAX_NUMBER = 999             # unit and lesson numbers
EDITION_MAX = 100            # characters of a textbook edition
COURSE_META = frozenset({"title", "subject", "grade", "volume", "edition", "description"})
COURSE_META_REQUIRED = frozenset({"title", "subject", "grade"})
_B32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def course_id_of(entry: Any) -> str:
    """A course's stable id: "k" + base32 of the first 16 bytes of its publish entry's hash."""
    if entry.kind != KIND_COURSE_PUBLISH:
        raise LocalProtocolError("only a course.publish entry defines a course id")
    return "k" + base64.b32encode(entry.hash[:16]).decode("ascii").rstrip("=").lower()


def is_course_id(text: Any) -> bool:
    return (isinstance(text, str) and len(text) == 27 and text[0] == "k"
            and set(text[1:]) <= _B32)


def _is_resource_id(text: Any) -> bool:
    return (isinstance(text, str) and len(text) == 27 and text[0] == "r"
            and set(text[1:]) <= _B32)


def _exact(body: dict, fields: set[str], optional: Iterable[str] = ()) -> None:
    if not fields <= set(body) <= fields | set(optional):
        raise LocalProtocolError(
            f"body fields must be {', '.join(sorted(fields))}"
            + (f" (optionally {', '.join(sorted(optional))})" if optional else "")
            + f" (got {', '.join(sorted(body))})")


def _number(value: Any, what: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_NUMBER:
        raise LocalProtocolError(f"{what} must be an integer 1-{MAX_NUMBER}")
    return value


def validate_course_meta(meta: Any, *, local: bool) -> None:
    """Course metadata: unknown fields refused when we build, ignored from outside."""
    if not isinstance(meta, dict):
        raise LocalProtocolError("meta must be a map")
    unknown = set(meta) - COURSE_META
    if unknown and local:
        raise LocalProtocolError(f"unknown course field(s): {', '.join(sorted(unknown))}")
    _text(meta, "title", required=True)
    _text(meta, "subject", required=True)
    _text(meta, "description")
    grade = _text(meta, "grade", required=True)
    if grade not in GRADES:
        raise LocalProtocolError(f"grade must be one of {', '.join(GRADES)} (got {grade!r})")
    volume = _text(meta, "volume")
    if volume is not None and volume not in VOLUMES:
        raise LocalProtocolError(f"volume must be one of {', '.join(VOLUMES)} (got {volume!r})")
    edition = meta.get("edition")
    if edition is not None and (not isinstance(edition, str) or not edition.strip()
                                or len(edition) > EDITION_MAX):
        raise LocalProtocolError(f"edition must be non-empty text of at most {EDITION_MAX} "
                                 "characters")


def validate_units(units: Any) -> None:
    if not isinstance(units, list) or not 1 <= len(units) <= MAX_UNITS:
        raise LocalProtocolError(f"a course has 1-{MAX_UNITS} units")
    total = 0
    unit_numbers: set[int] = set()
    for u in units:
        if not isinstance(u, dict) or set(u) != {"number", "title", "lessons"}:
            raise LocalProtocolError("each unit is a map of number, title and lessons")
        n = _number(u["number"], "unit number")
        if n in unit_numbers:
            raise LocalProtocolError(f"unit number {n} appears twice")
        unit_numbers.add(n)
        _text(u, "title", required=True)
        lessons = u["lessons"]
        if not isinstance(lessons, list) or not 1 <= len(lessons) <= MAX_LESSONS_PER_UNIT:
            raise LocalProtocolError(f"unit {n}: a unit has 1-{MAX_LESSONS_PER_UNIT} lessons")
        total += len(lessons)
        if total > MAX_LESSONS:
            raise LocalProtocolError(f"a course has at most {MAX_LESSONS} lessons")
        numbers: set[int] = set()
        for le in lessons:
            if not isinstance(le, dict) or set(le) != {"number", "title", "periods",
                                                        "resources"}:
                raise LocalProtocolError(f"unit {n}: each lesson is a map of number, title, "
                                         "periods and resources")
            ln = _number(le["number"], f"unit {n}: lesson number")
            if ln in numbers:
                raise LocalProtocolError(f"unit {n}: lesson number {ln} appears twice")
            numbers.add(ln)
            _text(le, "title", required=True)
            p = le["periods"]
            if type(p) is not int or not 1 <= p <= MAX_PERIODS:
                raise LocalProtocolError(f"unit {n} lesson {ln}: periods must be an integer "
                                         f"1-{MAX_PERIODS}")
            rs = le["resources"]
            if not isinstance(rs, list) or len(rs) > MAX_RESOURCES_PER_LESSON:
                raise LocalProtocolError(f"unit {n} lesson {ln}: at most "
                                         f"{MAX_RESOURCES_PER_LESSON} resources")
            if not all(_is_resource_id(r) for r in rs):
                raise LocalProtocolError(f"unit {n} lesson {ln}: resources must be resource "
                                         "ids")
            if len(set(rs)) != len(rs):
                raise LocalProtocolError(f"unit {n} lesson {ln}: a resource appears twice")


def validate_body(kind: str, body: Any, *, local: bool) -> None:
    """Validate a ``course.*`` body (LocalProtocolError)."""
    if not isinstance(body, dict):
        raise LocalProtocolError("body must be a map")
    if kind in (KIND_COURSE_PUBLISH, KIND_COURSE_UPDATE):
        fields = {"version", "meta", "units"}
        if kind == KIND_COURSE_UPDATE:
            fields.add("course")
            if not is_course_id(body.get("course")):
                raise LocalProtocolError("course must be a course id")
        _exact(body, fields)
        version = body["version"]
        if type(version) is not int or not 1 <= version <= 2**53:
            raise LocalProtocolError("version out of range")
        if (kind == KIND_COURSE_PUBLISH) != (version == 1):
            raise LocalProtocolError("version 1 is published, later versions are updates")
        validate_course_meta(body["meta"], local=local)
        validate_units(body["units"])
    elif kind == KIND_COURSE_RETRACT:
        _exact(body, {"course"}, ("reason",))
        if not is_course_id(body.get("course")):
            raise LocalProtocolError("course must be a course id")
        _text(body, "reason")
    else:
        raise LocalProtocolError(f"not a course kind: {kind!r}")


# -- outlines (what a teacher writes) --------------------------------------------------------

_GRADE_WORDS = {"学前": "学前", "一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6",
                "七": "7", "八": "8", "九": "9", "十": "10", "十一": "11", "十二": "12"}
_RID = re.compile(r"^r[a-z2-7]{26}$")
_PERIODS = re.compile(r"[(（]\s*([0-9]{1,6})\s*(?:课时|periods?)?\s*[)）]\s*$")
_NUMBERED = re.compile(r"^([0-9]{1,6})[.、:：\s]\s*(.+)$")


def normalize_grade(value: Any) -> str:
    """3, "3", "三年级", "3年级", "grade 3", "学前" → the grade as records carry it."""
    text = str(value).strip()
    text = re.sub(r"^(grade|年级)\s*", "", text, flags=re.I)
    text = re.sub(r"\s*年级$", "", text)
    text = _GRADE_WORDS.get(text, text)
    if text not in GRADES:
        raise LocalProtocolError(f"grade must be 学前 or 1-12 (got {value!r})")
    return text


def _numbered(text: str, what: str, default: int) -> tuple[int, str]:
    m = _NUMBERED.match(text.strip())
    if m:
        return int(m.group(1)), m.group(2).strip()
    if not text.strip():
        raise LocalProtocolError(f"{what} needs a title")
    return default, text.strip()


def parse_text_outline(text: str) -> dict[str, Any]:
    """The simple text outline (specs/courses.md §4)::

        title: 三年级音乐
        subject: 音乐
        grade: 3
        # 1 欢乐的一天
        - 1 我们的学校 (2): r...  r...

    Returns ``{"meta": ..., "units": ...}`` (validated by the caller)."""
    meta: dict[str, Any] = {}
    units: list[dict[str, Any]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        where = f"line {lineno}"
        if line.startswith("#"):
            n, title = _numbered(line.lstrip("#"), f"{where}: a unit", len(units) + 1)
            units.append({"number": n, "title": title, "lessons": []})
        elif line[0] in "-*":
            if not units:
                raise LocalProtocolError(f"{where}: a lesson before the first unit (# ...)")
            words = line[1:].split()
            rids: list[str] = []
            while words and _RID.match(words[-1].rstrip(",，")):
                rids.insert(0, words.pop().rstrip(",，"))
            rest = " ".join(words).rstrip(":：").strip()
            periods = 1
            m = _PERIODS.search(rest)
            if m:
                periods = int(m.group(1))
                rest = rest[:m.start()].strip()
            lessons = units[-1]["lessons"]
            n, title = _numbered(rest, f"{where}: a lesson", len(lessons) + 1)
            lessons.append({"number": n, "title": title, "periods": periods,
                            "resources": rids})
        elif ":" in line or "：" in line:
            if units:
                raise LocalProtocolError(f"{where}: course fields (key: value) come before the "
                                         "first unit")
            key, _, value = line.replace("：", ":", 1).partition(":")
            key = {"标题": "title", "课程": "title", "学科": "subject", "年级": "grade",
                   "册": "volume", "册次": "volume", "版本": "edition", "教材版本": "edition",
                   "简介": "description", "说明": "description"}.get(key.strip(), key.strip())
            meta[key] = value.strip()
        else:
            raise LocalProtocolError(f"{where}: expected 'key: value', '# unit' or '- lesson' "
                                     f"(got {line[:40]!r})")
    return _outline(meta, units)


def _outline(meta: dict[str, Any], units: list[dict[str, Any]]) -> dict[str, Any]:
    meta = {k: v for k, v in meta.items() if v not in (None, "")}
    if "grade" in meta:
        meta["grade"] = normalize_grade(meta["grade"])
    for k in ("title", "subject", "edition", "description", "volume"):
        if k in meta:
            meta[k] = str(meta[k]).strip()
    validate_course_meta(meta, local=True)
    validate_units(units)
    return {"meta": meta, "units": units}


def outline_from_mapping(data: Any) -> dict[str, Any]:
    """A YAML outline (already loaded): course fields and ``units`` → lessons."""
    if not isinstance(data, dict):
        raise LocalProtocolError("a YAML outline is a mapping of course fields and units")
    data = dict(data)
    raw_units = data.pop("units", None)
    if not isinstance(raw_units, list):
        raise LocalProtocolError("a YAML outline needs a list 'units'")
    units = []
    for i, u in enumerate(raw_units, 1):
        if not isinstance(u, dict) or not isinstance(u.get("lessons"), list):
            raise LocalProtocolError(f"unit {i}: a mapping with title and a list 'lessons'")
        lessons = []
        for j, le in enumerate(u["lessons"], 1):
            if not isinstance(le, dict):
                raise LocalProtocolError(f"unit {i} lesson {j}: a mapping with title, periods, "
                                         "resources")
            res = le.get("resources") or []
            if isinstance(res, str):
                res = res.replace(",", " ").split()
            lessons.append({"number": le.get("number", j), "title": str(le.get("title", "")),
                            "periods": le.get("periods", 1), "resources": list(res)})
        units.append({"number": u.get("number", i), "title": str(u.get("title", "")),
                      "lessons": lessons})
    return _outline(data, units)


def outline_to_text(meta: dict[str, Any], units: list[dict[str, Any]]) -> str:
    """The text outline of a course (the inverse of :func:`parse_text_outline`)."""
    lines = [f"{k}: {meta[k]}" for k in ("title", "subject", "grade", "volume", "edition",
                                          "description") if k in meta]
    for u in units:
        lines += ["", f"# {u['number']} {u['title']}"]
        for le in u["lessons"]:
            lines.append(f"- {le['number']} {le['title']} ({le['periods']})"
                         + (": " + " ".join(le["resources"]) if le["resources"] else ""))
    return "\n".join(lines) + "\n"


# -- timetable: the date of every lesson -----------------------------------------------------

WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7,
            "周一": 1, "周二": 2, "周三": 3, "周四": 4, "周五": 5, "周六": 6, "周日": 7,
            "星期一": 1, "星期二": 2, "星期三": 3, "星期四": 4, "星期五": 5, "星期六": 6,
            "星期日": 7, "周天": 7}
MAX_SLOTS_PER_WEEK = 60
MAX_SKIPPED = 400
MAX_PERIOD_OF_DAY = 12


@dataclass(frozen=True, slots=True)
class Timetable:
    """When a class has the course: (ISO weekday 1-7, period 1-12) slots every week."""
    slots: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not self.slots:
            raise LocalProtocolError("a timetable needs at least one weekly slot")
        if len(self.slots) > MAX_SLOTS_PER_WEEK:
            raise LocalProtocolError(f"at most {MAX_SLOTS_PER_WEEK} slots a week")
        for d, p in self.slots:
            if type(d) is not int or not 1 <= d <= 7 or type(p) is not int \
                    or not 1 <= p <= MAX_PERIOD_OF_DAY:
                raise LocalProtocolError("a slot is a weekday 1-7 and a period 1-12")
        if len(set(self.slots)) != len(self.slots):
            raise LocalProtocolError("a timetable slot appears twice")

    @classmethod
    def parse(cls, text: str) -> Timetable:
        """``mon:1,wed:3`` / ``周一:1 周三:3,4`` / ``1:1,3:3`` (weekday:period[,period…])."""
        slots: list[tuple[int, int]] = []
        for part in re.split(r"[\s;；]+", text.strip()):
            if not part:
                continue
            day, sep, periods = part.replace("：", ":").partition(":")
            day_n = WEEKDAYS.get(day.strip().lower()) or (
                int(day) if re.fullmatch(r"\s*[0-9]\s*", day) else None)
            if not sep or day_n is None:
                raise LocalProtocolError(f"timetable: {part!r} is not weekday:period "
                                         "(e.g. mon:1 or 周三:2)")
            for p in re.split(r"[,，]", periods):
                if not re.fullmatch(r"\s*[0-9]{1,2}\s*", p):
                    raise LocalProtocolError(f"timetable: {part!r}: periods are numbers")
                slots.append((day_n, int(p)))
        return cls(tuple(sorted(set(slots))) if len(set(slots)) == len(slots)
                   else tuple(slots))

    def __str__(self) -> str:
        names = {v: k for k, v in WEEKDAYS.items() if k.isascii()}
        by_day: dict[int, list[int]] = {}
        for d, p in sorted(self.slots):
            by_day.setdefault(d, []).append(p)
        return " ".join(f"{names[d]}:{','.join(map(str, ps))}" for d, ps in by_day.items())


def parse_skipped(text: str) -> tuple[dt.date, ...]:
    """``2026-10-01..2026-10-07, 2026-12-25`` → the dates (ranges inclusive)."""
    out: set[dt.date] = set()
    for part in re.split(r"[\s,，;；]+", text.strip()):
        if not part:
            continue
        a, sep, b = part.partition("..")
        try:
            start = dt.date.fromisoformat(a)
            end = dt.date.fromisoformat(b) if sep else start
        except ValueError:
            raise LocalProtocolError(f"skipped dates: {part!r} is not YYYY-MM-DD or "
                                     "YYYY-MM-DD..YYYY-MM-DD") from None
        if end < start or (end - start).days > MAX_SKIPPED:
            raise LocalProtocolError(f"skipped dates: {part!r} is not a range of at most "
                                     f"{MAX_SKIPPED} days")
        out.update(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
        if len(out) > MAX_SKIPPED:
            raise LocalProtocolError(f"at most {MAX_SKIPPED} skipped dates")
    return tuple(sorted(out))


@dataclass(slots=True)
class Lesson:
    unit: int
    unit_title: str
    number: int
    title: str
    periods: int
    resources: tuple[str, ...]


@dataclass(slots=True)
class Scheduled:
    lesson: Lesson
    date: dt.date                     # the day of its first period
    slots: tuple[tuple[dt.date, int], ...]   # every (date, period) it takes


def lessons_of(units: Sequence[dict[str, Any]]) -> list[Lesson]:
    """The lessons of a course in teaching order (units, then lessons, as listed)."""
    return [Lesson(u["number"], u["title"], le["number"], le["title"], le["periods"],
                   tuple(le["resources"]))
            for u in units for le in u["lessons"]]


def _slots(start: int, timetable: Timetable, skip: frozenset[int]) -> Iterator[tuple[int, int]]:
    """The (day ordinal, period) slots from day ordinal ``start`` on, in time order, week by
    week (ordinal 1, 0001-01-01, is a Monday)."""
    weekly = sorted((d - 1, p) for d, p in timetable.slots)
    week = start - (start - 1) % 7
    last = start + 366 * 20      # skipped dates cannot empty every week for twenty years
    while week <= last:
        for off, p in weekly:
            day = week + off
            if day >= start and day not in skip:
                yield day, p
        week += 7
    raise LocalProtocolError("the timetable leaves no day for the lessons")


def schedule(lessons: Sequence[Lesson], start: dt.date, timetable: Timetable,
             skipped: Iterable[dt.date] = ()) -> list[Scheduled]:
    """The date of every lesson: the timetable's slots from ``start`` on, in order of day and
    period, skipping ``skipped`` days; a lesson of k periods takes the next k slots."""
    slots = _slots(start.toordinal(), timetable, frozenset(d.toordinal() for d in skipped))
    fromordinal = dt.date.fromordinal
    out: list[Scheduled] = []
    append = out.append
    for lesson in lessons:
        o, p = next(slots)
        first = fromordinal(o)
        if lesson.periods == 1:
            append(Scheduled(lesson, first, ((first, p),)))
            continue
        taken = [(first, p)]
        for _ in range(lesson.periods - 1):
            o2, p2 = next(slots)
            taken.append((first if o2 == o else fromordinal(o2), p2))
        append(Scheduled(lesson, first, tuple(taken)))
    return out


# -- readiness ------------------------------------------------------------------------------

READY, FETCHING, MISSING = "ready", "fetching", "missing"
# why a resource is not ready
NOT_IN_CATALOG = "unknown"     # no feed we hold describes it (its school is not replicated)
NO_PROVIDER = "no-provider"    # no connected or known school holds it
BUDGET = "budget"              # this month's transfer budget is spent
TOO_SLOW = "too-slow"          # at the current rates it arrives after the lesson
NOT_QUEUED = "not-queued"      # not due yet (beyond the horizon), or not asked for
FAILED = "failed"              # the transfer failed or was cancelled


@dataclass(slots=True)
class ResourceState:
    """What the node knows of one resource (the node fills it from its tables)."""
    held: bool = False                  # every block is here
    known: bool = True                  # in the catalog
    title: str | None = None
    size: int = 0                       # bytes of its files
    transfer: str | None = None         # state of its latest transfer, if any
    bytes_done: int = 0
    error: str | None = None            # the transfer's last error


@dataclass(slots=True)
class ResourceStatus:
    resource: str
    status: str
    why: str | None = None
    bytes_done: int = 0
    size: int = 0
    eta: int | None = None              # ms: estimated arrival at the current rates


@dataclass(slots=True)
class LessonStatus:
    scheduled: Scheduled
    status: str
    resources: list[ResourceStatus] = field(default_factory=list)

    @property
    def why(self) -> list[str]:
        return sorted({r.why for r in self.resources if r.why})


def arrival_times(amounts: Sequence[int], now: dt.datetime,
                  rate_at: Any, *, horizon_days: int = 60) -> list[dt.datetime | None]:
    """When each of the cumulative byte ``amounts`` (ascending) will have arrived, if bytes
    flow at ``rate_at(local datetime)`` bytes/s (None: unlimited). Walks the schedule in
    15-minute steps (its windows start and end on minutes); None: beyond the horizon."""
    out: list[dt.datetime | None] = []
    if not amounts:
        return out
    step = dt.timedelta(minutes=15)
    t = now
    moved = 0.0
    i = 0
    end = now + dt.timedelta(days=horizon_days)
    rates: dict[tuple[int, int], Any] = {}
    while i < len(amounts) and t < end:
        tod = (t.hour, t.minute)
        rate = rates[tod] if tod in rates else rates.setdefault(tod, rate_at(t))
        if rate is None:
            out.extend([t] * (len(amounts) - i))
            return out
        nxt = t + step
        gain = rate * step.total_seconds()
        while i < len(amounts) and amounts[i] <= moved + gain:
            need = amounts[i] - moved
            out.append(t + dt.timedelta(seconds=need / rate if rate else 0))
            i += 1
        moved += gain
        t = nxt
    out.extend([None] * (len(amounts) - i))
    return out


def readiness(scheduled: Sequence[Scheduled], states: dict[str, ResourceState], *,
              now: dt.datetime, budget_spent: bool, rate_at: Any,
              lesson_start: dt.time = dt.time(8, 0)) -> list[LessonStatus]:
    """Per lesson: ready (every resource held), fetching, or missing — and for each resource
    not ready, why (see :func:`readiness_many`)."""
    return readiness_many([scheduled], states, now=now, budget_spent=budget_spent,
                          rate_at=rate_at, lesson_start=lesson_start)[0]


_MOVING = frozenset({"queued", "running"})   # transfers whose bytes are on their way


def readiness_many(groups: Sequence[Sequence[Scheduled]], states: dict[str, ResourceState], *,
                   now: dt.datetime, budget_spent: bool, rate_at: Any,
                   lesson_start: dt.time = dt.time(8, 0)) -> list[list[LessonStatus]]:
    """Readiness of the lessons of several adoptions, which share one transfer queue.
    Estimated arrivals assume the bytes still to come move in the order the lessons need them
    at the scheduled rates (``rate_at``); a resource arriving after its lesson's start
    (``lesson_start`` local time on the lesson's day) is ``too-slow``."""
    order: list[tuple[dt.date, str, int]] = []
    seen: set[str] = set()
    for group in groups:
        for s in group:
            for rid in s.lesson.resources:
                if rid in seen:
                    continue
                seen.add(rid)
                st = states.get(rid)
                if st is not None and not st.held and st.known and st.transfer in _MOVING:
                    order.append((s.date, rid, max(0, st.size - st.bytes_done)))
    order.sort()
    cumulative: list[int] = []
    total = 0
    for _, _, n in order:
        total += n
        cumulative.append(total)
    arrivals = dict(zip((r for _, r, _ in order), arrival_times(cumulative, now, rate_at),
                        strict=True))
    unknown = ResourceState(known=False)
    out = []
    for group in groups:
        statuses = []
        for s in group:
            rs: list[ResourceStatus] = []
            any_missing = all_ready = False
            all_ready = True
            for rid in s.lesson.resources:
                st = states.get(rid, unknown)
                if st.held:
                    rs.append(ResourceStatus(rid, READY, None, st.size, st.size))
                    continue
                all_ready = False
                r = ResourceStatus(rid, MISSING, None, st.bytes_done, st.size)
                tr = st.transfer
                if not st.known:
                    r.why = NOT_IN_CATALOG
                elif tr == "queued" or tr == "running":
                    r.status = FETCHING
                    eta = arrivals.get(rid)
                    r.eta = None if eta is None else int(eta.timestamp() * 1000)
                    if budget_spent:
                        r.why = BUDGET
                    elif eta is None or eta > dt.datetime.combine(s.date, lesson_start):
                        r.why = TOO_SLOW
                elif tr == "waiting":
                    r.why = BUDGET if budget_spent or (st.error and "budget" in st.error) \
                        else NO_PROVIDER
                elif tr == "paused":
                    r.status, r.why = FETCHING, "paused"
                elif tr in ("failed", "cancelled"):
                    r.why = FAILED
                else:
                    r.why = NOT_QUEUED
                any_missing = any_missing or r.status == MISSING
                rs.append(r)
            status = READY if all_ready else MISSING if any_missing else FETCHING
            statuses.append(LessonStatus(s, status, rs))
        out.append(statuses)
    return out


def due(scheduled: Sequence[Scheduled], today: dt.date, days: int) -> list[Scheduled]:
    """The lessons from ``today`` up to ``days`` days ahead (inclusive of today)."""
    dates = [s.date for s in scheduled]
    lo = bisect.bisect_left(dates, today)
    hi = bisect.bisect_right(dates, today + dt.timedelta(days=days))
    return list(scheduled[lo:hi])
