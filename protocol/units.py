"""Sizes and rates as operators type them (specs/limits.md §2): the one parser for every
command and the web, without I/O.

Sizes are bytes: ``G`` = ``GB`` = 10⁹, ``GiB`` = 2³⁰ (the same for K, M, T, P), a plain
number is bytes. Rates follow how lines are sold: a bare prefix (``10M``, ``512k``) and the
``bps`` forms (``10Mbps``) are **bits** per second, ``MB/s``/``MiB/s`` are bytes per second.
Spellings that people use for both (``1mb/s``, ``10M/s``) are refused, never guessed.

A :class:`Rate` keeps its exact value and a canonical text in the unit family the operator
chose (``10M`` → ``10Mbit/s``, ``2MiB/s`` → ``2MiB/s``), so it is echoed back as typed and
stored without rounding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from .errors import LocalProtocolError

MIN_RATE = 1024                 # bytes/s; below 1 KiB/s keep-alives and handshakes time out
MAX_RATE = 100 * 1024 ** 3      # bytes/s; 100 GiB/s: more than any school link, so absurd
MAX_SIZE = 1024 ** 5            # bytes; 1 PiB: the largest size any command accepts
MAX_TEXT = 40                   # characters; a size or rate longer than this is garbage

RATE_FORM = ("a rate like 10M, 10Mbps or 10Mbit/s (megabits per second, as lines are sold), "
             "512k or 512kbps (kilobits), 2MB/s or 2MiB/s (bytes), or 'unlimited'")
SIZE_FORM = "a size like 4000M, 500MB, 2G, 2GB (10⁹ bytes), 2GiB (2³⁰ bytes) or 1200000 (bytes)"

_PREFIX = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4, "p": 1000 ** 5,
           "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3, "ti": 1024 ** 4, "pi": 1024 ** 5}
_RATE_PREFIXES = ("", "k", "m", "g", "ki", "mi", "gi")
_BIT_TEXT = {"": "bit/s", "k": "kbit/s", "m": "Mbit/s", "g": "Gbit/s",
             "ki": "Kibit/s", "mi": "Mibit/s", "gi": "Gibit/s"}
_BYTE_TEXT = {"": "B/s", "k": "KB/s", "m": "MB/s", "g": "GB/s",
              "ki": "KiB/s", "mi": "MiB/s", "gi": "GiB/s"}
_NUMBER = re.compile(r"(\d{1,18}(?:\.\d{1,9})?)\s*(\S*)")
_SIZE_UNIT = re.compile(r"([kmgtp]i?)?b?", re.IGNORECASE)


class UnitsError(LocalProtocolError):
    """A size or rate that is malformed, ambiguous or out of range; names the accepted forms."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``bits`` per second, exactly; ``text`` is its canonical spelling (``10Mbit/s``)."""
    bits: Fraction
    text: str

    @property
    def bytes_per_second(self) -> int:
        return int(self.bits / 8)

    def __str__(self) -> str:
        return self.text


def _number(text: str) -> tuple[Decimal, str] | None:
    m = _NUMBER.fullmatch(text.strip()) if len(text) <= MAX_TEXT else None
    return None if m is None else (Decimal(m.group(1)), m.group(2))


def _plain(number: Decimal) -> str:
    """``010.50`` → ``10.5``; ``2.0`` → ``2`` (no exponent, no trailing zeros)."""
    s = format(number, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


class _Ambiguous(Exception):
    """The unit is written for bits and for bytes alike; carries its prefix."""


def _rate_unit(unit: str) -> tuple[str, bool]:
    """(prefix key, is_bits) for the unit part of a rate; ValueError if it is not one,
    _Ambiguous if people write it for both."""
    per = ""
    if unit.endswith("/s"):
        unit, per = unit[:-2], "/s"
    elif unit.lower().endswith("ps") and len(unit) > 2:
        unit, per = unit[:-2], "ps"
    low = unit.lower()
    if low.endswith("bit"):
        prefix, bits = low[:-3], True
    elif unit.endswith("B"):
        prefix, bits = low[:-1], False
    elif unit.endswith("b") and per == "/s" and unit[:1].islower():
        raise _Ambiguous(low[:-1])        # 'mb/s', 'kb/s': bytes to many, bits to the rest
    elif unit.endswith("b"):
        prefix, bits = low[:-1], True     # 'Mb/s', '10Mbps', '512kbps'
    elif low in ("k", "m", "g") and per == "/s":
        raise _Ambiguous(low)             # '10M/s': bits on a contract, bytes in a download
    elif low in ("k", "m", "g") and per == "":
        prefix, bits = low, True          # '10M', '512k': how ISPs sell lines
    else:
        raise ValueError(unit)
    if prefix not in _RATE_PREFIXES or (per == "" and (not bits or "i" in prefix)):
        raise ValueError(unit)
    return prefix, bits


def parse_rate(text: str) -> Rate | None:
    """A :class:`Rate`, or None for ``unlimited``; UnitsError naming the accepted forms."""
    if text.strip().lower() == "unlimited":
        return None
    parsed = _number(text)
    try:
        if parsed is None:
            raise ValueError(text)
        prefix, bits = _rate_unit(parsed[1])
    except ValueError:
        raise UnitsError(f"bad rate {text!r}: expected {RATE_FORM}") from None
    except _Ambiguous as amb:
        n, p = _plain(parsed[0]), amb.args[0]  # type: ignore[index]
        raise UnitsError(f"ambiguous rate {text!r}: write {n}{_BIT_TEXT[p]} (bits) or "
                         f"{n}{_BYTE_TEXT[p]} (bytes)") from None
    number = parsed[0]
    exact = Fraction(number) * _PREFIX[prefix] * (1 if bits else 8)
    if not MIN_RATE <= exact / 8 <= MAX_RATE:
        raise UnitsError(f"rate {text!r} out of range: between 1KiB/s (8.192kbit/s) and "
                         f"100GiB/s, or 'unlimited'")
    return Rate(exact, _plain(number) + (_BIT_TEXT if bits else _BYTE_TEXT)[prefix])


def rate_from_bytes(n: int) -> Rate:
    """A rate stored as bytes/s by versions before units were kept: binary bytes when exact,
    else decimal bits when exact (``32000`` was typed as ``256kbit/s``), else ``B/s``."""
    if not MIN_RATE <= n <= MAX_RATE:
        raise UnitsError(f"rate {n} B/s out of range: between 1KiB/s and 100GiB/s")
    for prefix in ("gi", "mi", "ki"):
        if n % _PREFIX[prefix] == 0:
            return Rate(Fraction(8 * n), f"{n // _PREFIX[prefix]}{_BYTE_TEXT[prefix]}")
    for prefix in ("g", "m", "k"):
        if 8 * n % _PREFIX[prefix] == 0:
            return Rate(Fraction(8 * n), f"{8 * n // _PREFIX[prefix]}{_BIT_TEXT[prefix]}")
    return Rate(Fraction(8 * n), f"{n}B/s")


def format_rate(rate: Rate | None) -> str:
    return "unlimited" if rate is None else rate.text


def per_second(rate: Rate | None) -> int | None:
    """Bytes per second for a token bucket (None: unlimited)."""
    return None if rate is None else rate.bytes_per_second


def parse_size(text: str, *, minimum: int = 0, maximum: int = MAX_SIZE,
               what: str = "size") -> int:
    """Bytes (rounded down); ``G`` = ``GB`` = 10⁹, ``GiB`` = 2³⁰; a plain number is bytes."""
    parsed = _number(text)
    if parsed is None or _SIZE_UNIT.fullmatch(parsed[1]) is None:
        raise UnitsError(f"bad {what} {text!r}: expected {SIZE_FORM}")
    number, unit = parsed
    size = int(Fraction(number) * _PREFIX[unit.lower().rstrip("b")])
    if not minimum <= size <= maximum:
        raise UnitsError(f"{what} {text!r} out of range: between {format_size(minimum)} and "
                         f"{format_size(maximum)}")
    return size


def format_size(size: int) -> str:
    """The shortest exact form: binary units when they divide, else decimal, else bytes."""
    for unit, n in (("PiB", 1024 ** 5), ("TiB", 1024 ** 4), ("GiB", 1024 ** 3),
                    ("MiB", 1024 ** 2), ("PB", 1000 ** 5), ("TB", 1000 ** 4),
                    ("GB", 1000 ** 3), ("MB", 1000 ** 2)):
        if size and size % n == 0:
            return f"{size // n}{unit}"
    return f"{size}B"
