"""Bandwidth limits without I/O (specs/limits.md): the settings object and its validation,
time-of-day schedules, the rate in force at a given local time, and a token bucket. Rates and
sizes are parsed by :mod:`protocol.units`. No clock inside: every function that needs the time
is given it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import time as dtime
from typing import Any

from .units import (MAX_RATE, MIN_RATE, SIZE_FORM, Rate, UnitsError, format_rate, format_size,
                    parse_rate, parse_size, per_second, rate_from_bytes)

__all__ = ["MAX_RATE", "MIN_RATE", "Rate", "UnitsError", "format_rate", "format_size",
           "parse_rate", "parse_budget", "per_second"]

MIN_BUDGET = 1_000_000          # bytes; a monthly budget below 1 MB cannot carry a catalog
MAX_BUDGET = 1024 ** 5          # bytes; 1 PiB a month
MAX_WINDOWS = 48                # schedule windows (one per half hour is already excessive)
MIN_BURST = 16 * 1024           # bytes; the smallest bucket (one Noise frame fits)
BURST_SECONDS = 0.05            # a bucket holds this many seconds of its rate (or MIN_BURST)
MINUTES_PER_DAY = 24 * 60

SCHEDULE_FORM = ("H:MM-H:MM=RATE, e.g. 08:00-16:00=2Mbit/s or 22:00-6:00=unlimited (windows "
                 "may cross midnight)")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


class LimitsError(UnitsError):
    """A setting is malformed or out of range; the message names the allowed form."""


def _as_rate(rate: Rate | int | None) -> Rate | None:
    if isinstance(rate, Rate) and not MIN_RATE <= rate.bits / 8 <= MAX_RATE or \
            isinstance(rate, int) and not MIN_RATE <= rate <= MAX_RATE:
        raise LimitsError("rate out of range: between 1KiB/s and 100GiB/s")
    if not (rate is None or isinstance(rate, (Rate, int))):
        raise LimitsError(f"a rate must be a Rate, bytes/s or None, not {type(rate).__name__}")
    return rate_from_bytes(rate) if isinstance(rate, int) else rate


# -- parsing --------------------------------------------------------------------------------

def parse_budget(text: str) -> int | None:
    """A monthly budget in bytes (``none``: no budget); the sizes of :mod:`protocol.units`."""
    if text.strip().lower() == "none":
        return None
    return parse_size(text, minimum=MIN_BUDGET, maximum=MAX_BUDGET, what="monthly budget")


def _minute(text: str, whole: str) -> int:
    m = _CLOCK.fullmatch(text.strip())
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise LimitsError(f"bad schedule {whole!r}: expected {SCHEDULE_FORM}")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """From ``start`` to ``end`` (minutes after local midnight; end < start crosses midnight)
    the rate in both directions is ``rate`` (None: unlimited)."""
    start: int
    end: int
    rate: Rate | None           # an int is taken as bytes/s

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _as_rate(self.rate))
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


# -- settings -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    up: Rate | None = None              # None: unlimited; an int is taken as bytes/s
    down: Rate | None = None
    schedule: tuple[Window, ...] = ()
    monthly_budget: int | None = None   # bytes per calendar month (both directions), None: none
    lan_unlimited: bool = True          # peers on private/loopback addresses are not limited

    def __post_init__(self) -> None:
        object.__setattr__(self, "up", _as_rate(self.up))
        object.__setattr__(self, "down", _as_rate(self.down))
        if self.monthly_budget is not None and \
                not MIN_BUDGET <= self.monthly_budget <= MAX_BUDGET:
            raise LimitsError(f"monthly budget out of range: expected {SIZE_FORM} "
                              "between 1MB and 1PiB")
        if len(self.schedule) > MAX_WINDOWS:
            raise LimitsError(f"at most {MAX_WINDOWS} schedule windows")
        spans = sorted((a, b, str(w)) for w in self.schedule for a, b in w.spans())
        for (_, b1, w1), (a2, _, w2) in zip(spans, spans[1:]):
            if a2 < b1:
                raise LimitsError(f"schedule windows {w1} and {w2} overlap: each time of day "
                                  f"may have one rate ({SCHEDULE_FORM})")

    def to_json(self) -> str:
        return json.dumps({"up": format_rate(self.up), "down": format_rate(self.down),
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
        if d["monthly_budget"] is not None and type(d["monthly_budget"]) is not int:
            raise LimitsError("stored limits: monthly_budget must be an integer or null")
        if not isinstance(d["schedule"], list) or \
                not all(isinstance(w, str) for w in d["schedule"]):
            raise LimitsError("stored limits: schedule must be a list of texts")
        if not isinstance(d["lan_unlimited"], bool):
            raise LimitsError("stored limits: lan_unlimited must be true or false")
        return cls(up=_stored_rate(d["up"], "up"), down=_stored_rate(d["down"], "down"),
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


def _stored_rate(value: Any, key: str) -> Rate | None:
    """A rate as stored: its text (``"10Mbit/s"``, ``"unlimited"``), or — written before
    rates kept their unit — an integer of bytes/s or null."""
    if value is None:
        return None
    if type(value) is int:
        return rate_from_bytes(value)
    if isinstance(value, str):
        return parse_rate(value)
    raise LimitsError(f"stored limits: {key} must be a rate text, an integer or null")


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
            values[key] = parse_budget(value)
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
    """Bytes per second in force (None: unlimited), for the token buckets."""
    up: int | None
    down: int | None


def _minute_of(local_time: dtime) -> float:
    return local_time.hour * 60 + local_time.minute + \
        (local_time.second + local_time.microsecond / 1e6) / 60


def effective_rate(limits: Limits, local_time: dtime) -> Rates:
    """The rates at ``local_time``: a schedule window in force overrides both base rates."""
    w = window_in_force(limits, local_time)
    if w is not None:
        return Rates(per_second(w.rate), per_second(w.rate))
    return Rates(per_second(limits.up), per_second(limits.down))


def window_in_force(limits: Limits, local_time: dtime) -> Window | None:
    minute = _minute_of(local_time)
    return next((w for w in limits.schedule if w.contains(minute)), None)


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
