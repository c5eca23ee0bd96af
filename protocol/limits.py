"""Bandwidth limits without I/O (specs/limits.md): parsing and validation of rates, sizes and
time-of-day schedules, the settings object, the rate in force at a given local time, and a
token bucket. No clock inside: every function that needs the time is given it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import time as dtime
from typing import Any

from .errors import LocalProtocolError

MIN_RATE = 1024                 # bytes/s; below 1 KiB/s keep-alives and handshakes time out
MAX_RATE = 100 * 1024 ** 3      # bytes/s; 100 GiB/s: more than any school link, so absurd
MIN_BUDGET = 1_000_000          # bytes; a monthly budget below 1 MB cannot carry a catalog
MAX_BUDGET = 1024 ** 5          # bytes; 1 PiB a month
MAX_WINDOWS = 48                # schedule windows (one per half hour is already excessive)
MIN_BURST = 16 * 1024           # bytes; the smallest bucket (one Noise frame fits)
BURST_SECONDS = 0.05            # a bucket holds this many seconds of its rate (or MIN_BURST)
MINUTES_PER_DAY = 24 * 60

RATE_FORM = ("a rate like 512KiB/s, 1MiB/s, 2MB/s, 256kbit/s or 10Mbit/s "
             f"(between 1KiB/s and 100GiB/s), or 'unlimited'")
SIZE_FORM = "a size like 500MB, 2GB or 2GiB (between 1MB and 1PiB)"
SCHEDULE_FORM = "HH:MM-HH:MM=RATE, e.g. 08:00-16:00=256KiB/s (windows may cross midnight)"

_BYTE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000 ** 2,
               "mb": 1000 ** 2, "mib": 1024 ** 2, "g": 1000 ** 3, "gb": 1000 ** 3,
               "gib": 1024 ** 3, "t": 1000 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4,
               "pb": 1000 ** 5, "pib": 1024 ** 5}
_BIT_UNITS = {"bit": 1, "kbit": 1000, "kibit": 1024, "mbit": 1000 ** 2, "mibit": 1024 ** 2,
              "gbit": 1000 ** 3, "gibit": 1024 ** 3}
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
_CLOCK = re.compile(r"(\d{2}):(\d{2})")


class LimitsError(LocalProtocolError):
    """A setting is malformed or out of range; the message names the allowed form."""


# -- parsing --------------------------------------------------------------------------------

def parse_rate(text: str) -> int | None:
    """Bytes per second, or None for 'unlimited'."""
    s = text.strip()
    if s.lower() == "unlimited":
        return None
    if not s.lower().endswith("/s"):
        raise LimitsError(f"bad rate {text!r}: expected {RATE_FORM}")
    m = _NUMBER.fullmatch(s[:-2])
    unit = m.group(2).lower() if m else ""
    if m is None or (unit not in _BYTE_UNITS and unit not in _BIT_UNITS):
        raise LimitsError(f"bad rate {text!r}: expected {RATE_FORM}")
    value = float(m.group(1))
    rate = value * _BIT_UNITS[unit] / 8 if unit in _BIT_UNITS else value * _BYTE_UNITS[unit]
    if not MIN_RATE <= rate <= MAX_RATE:
        raise LimitsError(f"rate {text!r} out of range: expected {RATE_FORM}")
    return int(rate)


def parse_size(text: str) -> int:
    m = _NUMBER.fullmatch(text)
    if m is None or m.group(2).lower() not in _BYTE_UNITS:
        raise LimitsError(f"bad size {text!r}: expected {SIZE_FORM}")
    size = float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()]
    if not MIN_BUDGET <= size <= MAX_BUDGET:
        raise LimitsError(f"size {text!r} out of range: expected {SIZE_FORM}")
    return int(size)


def _minute(text: str, whole: str) -> int:
    m = _CLOCK.fullmatch(text.strip())
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise LimitsError(f"bad schedule {whole!r}: expected {SCHEDULE_FORM}")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """From ``start`` to ``end`` (minutes after local midnight; end < start crosses midnight)
    the rate in both directions is ``rate`` (bytes/s, None: unlimited)."""
    start: int
    end: int
    rate: int | None

    def __post_init__(self) -> None:
        if not (0 <= self.start < MINUTES_PER_DAY and 0 <= self.end < MINUTES_PER_DAY):
            raise LimitsError(f"schedule times must be 00:00-23:59: expected {SCHEDULE_FORM}")
        if self.start == self.end:
            raise LimitsError(f"an empty schedule window: expected {SCHEDULE_FORM}")

    def spans(self) -> list[tuple[int, int]]:
        """Half-open minute intervals within one day."""
        if self.start < self.end:
            return [(self.start, self.end)]
        return [(self.start, MINUTES_PER_DAY), (0, self.end)]

    def contains(self, minute: float) -> bool:
        return any(a <= minute < b for a, b in self.spans())

    def __str__(self) -> str:
        return (f"{self.start // 60:02d}:{self.start % 60:02d}-"
                f"{self.end // 60:02d}:{self.end % 60:02d}={format_rate(self.rate)}")


def parse_window(text: str) -> Window:
    times, sep, rate = text.partition("=")
    start, dash, end = times.partition("-")
    if not sep or not dash:
        raise LimitsError(f"bad schedule {text!r}: expected {SCHEDULE_FORM}")
    return Window(start=_minute(start, text), end=_minute(end, text), rate=parse_rate(rate))


def format_rate(rate: int | None) -> str:
    if rate is None:
        return "unlimited"
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if rate % size == 0:
            return f"{rate // size}{unit}/s"
    return f"{rate}B/s"


def format_size(size: int) -> str:
    for unit, n in (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2),
                    ("TB", 1000 ** 4), ("GB", 1000 ** 3), ("MB", 1000 ** 2)):
        if size % n == 0:
            return f"{size // n}{unit}"
    return f"{size}B"


# -- settings -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    up: int | None = None               # bytes/s, None: unlimited
    down: int | None = None
    schedule: tuple[Window, ...] = ()
    monthly_budget: int | None = None   # bytes per calendar month (both directions), None: none
    lan_unlimited: bool = True          # peers on private/loopback addresses are not limited

    def __post_init__(self) -> None:
        for r in (self.up, self.down):
            if r is not None and not MIN_RATE <= r <= MAX_RATE:
                raise LimitsError(f"rate out of range: expected {RATE_FORM}")
        if self.monthly_budget is not None and \
                not MIN_BUDGET <= self.monthly_budget <= MAX_BUDGET:
            raise LimitsError(f"monthly budget out of range: expected {SIZE_FORM}")
        if len(self.schedule) > MAX_WINDOWS:
            raise LimitsError(f"at most {MAX_WINDOWS} schedule windows")
        spans = sorted((a, b, str(w)) for w in self.schedule for a, b in w.spans())
        for (_, b1, w1), (a2, _, w2) in zip(spans, spans[1:]):
            if a2 < b1:
                raise LimitsError(f"schedule windows {w1} and {w2} overlap: each time of day "
                                  f"may have one rate ({SCHEDULE_FORM})")

    def to_json(self) -> str:
        return json.dumps({"up": self.up, "down": self.down,
                           "schedule": [str(w) for w in self.schedule],
                           "monthly_budget": self.monthly_budget,
                           "lan_unlimited": self.lan_unlimited}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Limits:
        """Settings written by :meth:`to_json`; LimitsError if the stored text is damaged."""
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise LimitsError(f"stored limits are not valid JSON: {exc}") from None
        if not isinstance(d, dict) or not _JSON_KEYS <= set(d):
            raise LimitsError(f"stored limits must be a map of {', '.join(sorted(_JSON_KEYS))}")
        for key in ("up", "down", "monthly_budget"):
            if d[key] is not None and type(d[key]) is not int:
                raise LimitsError(f"stored limits: {key} must be an integer or null")
        if not isinstance(d["schedule"], list) or \
                not all(isinstance(w, str) for w in d["schedule"]):
            raise LimitsError("stored limits: schedule must be a list of texts")
        if not isinstance(d["lan_unlimited"], bool):
            raise LimitsError("stored limits: lan_unlimited must be true or false")
        return cls(up=d["up"], down=d["down"],
                   schedule=tuple(parse_window(w) for w in d["schedule"]),
                   monthly_budget=d["monthly_budget"], lan_unlimited=d["lan_unlimited"])

    def describe(self) -> dict[str, Any]:
        """Human-readable values (what ``limits show --json`` prints)."""
        return {"up": format_rate(self.up), "down": format_rate(self.down),
                "schedule": [str(w) for w in self.schedule],
                "monthly_budget": None if self.monthly_budget is None
                else format_size(self.monthly_budget),
                "lan_unlimited": self.lan_unlimited}

    def to_config(self) -> str:
        """The settings as an editable config file (``key = value`` lines)."""
        lines = [f"up = {format_rate(self.up)}", f"down = {format_rate(self.down)}"]
        lines += [f"schedule = {w}" for w in self.schedule]
        lines.append("monthly_budget = " + ("none" if self.monthly_budget is None
                                            else format_size(self.monthly_budget)))
        lines.append(f"lan_unlimited = {'yes' if self.lan_unlimited else 'no'}")
        return "\n".join(lines) + "\n"


CONFIG_KEYS = ("up", "down", "schedule", "monthly_budget", "lan_unlimited")
_JSON_KEYS = frozenset(CONFIG_KEYS)


def parse_config(text: str) -> Limits:
    """Read a config file written by :meth:`Limits.to_config` (and edited by people):
    ``key = value`` lines, ``#`` comments; ``schedule`` may repeat; missing keys: defaults."""
    values: dict[str, Any] = {}
    schedule: list[Window] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, eq, value = (s.strip() for s in line.partition("="))
        if not eq or key not in CONFIG_KEYS:
            raise LimitsError(f"line {n}: expected 'KEY = VALUE' with KEY one of "
                              f"{', '.join(CONFIG_KEYS)}")
        if key == "schedule":
            schedule.append(parse_window(value))
        elif key in values:
            raise LimitsError(f"line {n}: {key} given twice")
        elif key in ("up", "down"):
            values[key] = parse_rate(value)
        elif key == "monthly_budget":
            values[key] = None if value.lower() == "none" else parse_size(value)
        else:
            if value.lower() not in ("yes", "no", "true", "false"):
                raise LimitsError(f"line {n}: lan_unlimited must be yes or no")
            values[key] = value.lower() in ("yes", "true")
    return Limits(schedule=tuple(schedule), **values)


def update(limits: Limits, **changes: Any) -> Limits:
    """A copy with ``changes`` applied and validated (the original is untouched)."""
    return replace(limits, **changes)


# -- the rate in force ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Rates:
    up: int | None
    down: int | None


def _minute_of(local_time: dtime) -> float:
    return local_time.hour * 60 + local_time.minute + \
        (local_time.second + local_time.microsecond / 1e6) / 60


def effective_rate(limits: Limits, local_time: dtime) -> Rates:
    """The rates at ``local_time``: a schedule window in force overrides both base rates."""
    minute = _minute_of(local_time)
    for w in limits.schedule:
        if w.contains(minute):
            return Rates(w.rate, w.rate)
    return Rates(limits.up, limits.down)


def seconds_to_next_boundary(limits: Limits, local_time: dtime) -> float:
    """Seconds from ``local_time`` until a schedule window opens or closes (inf: never)."""
    minute = _minute_of(local_time)
    best = math.inf
    for w in limits.schedule:
        for edge in (w.start, w.end):
            ahead = (edge - minute) % MINUTES_PER_DAY
            best = min(best, ahead if ahead > 0 else MINUTES_PER_DAY)
    return best * 60


# -- token bucket -----------------------------------------------------------------------------

def default_burst(rate: int | None) -> int:
    return MIN_BURST if rate is None else max(MIN_BURST, int(rate * BURST_SECONDS))


@dataclass(slots=True)
class TokenBucket:
    """``rate`` bytes/s (None: unlimited) with at most ``burst`` bytes saved up; starts full.

    ``take(n, now)`` admits ``n`` bytes at once (the bucket may go into debt) and returns how
    many seconds the caller must wait before using them: the time until the debt is paid off.
    ``take(0, now)`` asks again how much of that wait remains (after a rate change, say).
    """
    rate: int | None
    burst: int = 0
    tokens: float = field(default=-1.0)
    last: float | None = None
    admitted: int = 0     # bytes admitted so far (accounting, for tests and statistics)

    def __post_init__(self) -> None:
        if self.burst <= 0:
            self.burst = default_burst(self.rate)
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def _refill(self, now: float) -> None:
        if self.last is not None and self.rate is not None and now > self.last:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now

    def set_rate(self, rate: int | None, now: float) -> None:
        """Change the rate from ``now`` on (tokens earned or owed so far are kept; a change to
        unlimited forgives any debt)."""
        self._refill(now)
        self.rate = rate
        self.burst = default_burst(rate)
        self.tokens = float(self.burst) if rate is None else min(self.tokens, float(self.burst))

    def take(self, n: int, now: float) -> float:
        self._refill(now)
        self.admitted += n
        if self.rate is None:
            return 0.0
        self.tokens -= n
        return max(0.0, -self.tokens / self.rate)
