"""protocol/units: the one parser of sizes and rates for every command (examples and
properties: format → parse round trips, arbitrary text raises only UnitsError)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import units
from protocol.units import UnitsError, parse_rate, parse_size

KiB, MiB = 1024, 1024 ** 2


@pytest.mark.parametrize("text, bytes_per_s, echo", [
    ("10M", 1_250_000, "10Mbit/s"), ("10Mbps", 1_250_000, "10Mbit/s"),
    ("10Mbit/s", 1_250_000, "10Mbit/s"), ("10mbps", 1_250_000, "10Mbit/s"),
    ("10Mb/s", 1_250_000, "10Mbit/s"), ("2M", 250_000, "2Mbit/s"),
    ("512k", 64_000, "512kbit/s"), ("512kbps", 64_000, "512kbit/s"),
    ("256kbit/s", 32_000, "256kbit/s"), ("1.5M", 187_500, "1.5Mbit/s"),
    ("2MB/s", 2_000_000, "2MB/s"), ("2MiB/s", 2 * MiB, "2MiB/s"), ("2MBps", 2_000_000, "2MB/s"),
    ("32KiB/s", 32 * KiB, "32KiB/s"), (" 64 KiB/s ", 64 * KiB, "64KiB/s"),
    ("1.5MiB/s", 3 * MiB // 2, "1.5MiB/s"), ("1024B/s", 1024, "1024B/s"),
    ("010.50MB/s", 10_500_000, "10.5MB/s"), ("1Gbit/s", 125_000_000, "1Gbit/s"),
])
def test_rates_are_exact_and_echoed_in_the_operators_unit(text, bytes_per_s, echo):
    rate = parse_rate(text)
    assert rate.bytes_per_second == bytes_per_s and str(rate) == echo
    assert parse_rate(echo) == rate


def test_unlimited():
    assert parse_rate("unlimited") is None and parse_rate(" UNLIMITED ") is None
    assert units.format_rate(None) == "unlimited"


@pytest.mark.parametrize("text", ["1mb/s", "10M/s", "512k/s", "2kb/s"])
def test_ambiguous_rates_are_refused_with_both_readings(text):
    with pytest.raises(UnitsError, match="ambiguous rate .*bits.* or .*bytes"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["", "32KiB", "2MB", "-1MiB/s", "0KiB/s", "1B/s", "200GiB/s",
                                  "1 parsec/s", "1e3KiB/s", "fast", "1MiB/h", "10", "1000/s",
                                  "10Mips", "5Mibit", "NaNMB/s", "1" * 60 + "MB/s"])
def test_bad_rates_name_the_forms(text):
    with pytest.raises(UnitsError, match="10M, 10Mbps or 10Mbit/s|out of range") as e:
        parse_rate(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, size", [
    ("2GB", 2 * 10 ** 9), ("2G", 2 * 10 ** 9), ("2g", 2 * 10 ** 9), ("20G", 20 * 10 ** 9),
    ("2GiB", 2 * 1024 ** 3), ("500MB", 500_000_000), ("4000M", 4 * 10 ** 9),
    ("3.5G", 3_500_000_000), ("1TiB", 1024 ** 4), ("1200000", 1_200_000), ("700 MB", 7 * 10 ** 8),
    ("1.1MiB", int(1.1 * MiB)), ("0", 0), ("1PiB", 1024 ** 5),
])
def test_sizes_one_meaning_of_g(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["-2GB", "2XB", "", "2Gbit", "GB", "2PiBB", "1e9", "lots"])
def test_bad_sizes_name_the_forms(text):
    with pytest.raises(UnitsError, match="like 4000M, 500MB"):
        parse_size(text)


def test_size_bounds_are_per_use():
    with pytest.raises(UnitsError, match="monthly budget '10KB' out of range"):
        parse_size("10KB", minimum=1_000_000, what="monthly budget")
    with pytest.raises(UnitsError, match="out of range"):
        parse_size("2PiB")


def test_rates_stored_as_bytes_by_older_versions():
    assert str(units.rate_from_bytes(32_000)) == "256kbit/s"    # typed as 256kbit/s then
    assert str(units.rate_from_bytes(1_250_000)) == "10Mbit/s"
    assert str(units.rate_from_bytes(3 * MiB)) == "3MiB/s"
    assert str(units.rate_from_bytes(1025)) == "1025B/s"
    with pytest.raises(UnitsError):
        units.rate_from_bytes(5)


# -- properties -----------------------------------------------------------------------------

# unit -> bits per second for 1 of it, written out independently of protocol/units
_UNITS = {"M": 10 ** 6, "k": 10 ** 3, "G": 10 ** 9, "Mbps": 10 ** 6, "kbps": 10 ** 3,
          "Mbit/s": 10 ** 6, "kbit/s": 10 ** 3, "Kibit/s": 1024, "Mb/s": 10 ** 6, "bit/s": 1,
          "B/s": 8, "KB/s": 8000, "MB/s": 8 * 10 ** 6, "GB/s": 8 * 10 ** 9, "KiB/s": 8192,
          "MiB/s": 8 * 1024 ** 2, "GiB/s": 8 * 1024 ** 3, "MBps": 8 * 10 ** 6, "Bps": 8}
numbers = st.decimals(min_value=0, max_value=10 ** 12, places=4, allow_nan=False,
                      allow_infinity=False).map(lambda d: format(d, "f"))


def _in_range(case: tuple[str, str, str]) -> bool:
    n, _, unit = case
    return units.MIN_RATE <= Fraction(n) * _UNITS[unit] / 8 <= units.MAX_RATE


rate_cases = st.tuples(numbers, st.sampled_from(["", " "]),
                       st.sampled_from(sorted(_UNITS))).filter(_in_range)


@given(rate_cases)
def test_rate_round_trip(case):
    n, space, unit = case
    rate = parse_rate(f"{n}{space}{unit}")
    assert rate.bits == Fraction(n) * _UNITS[unit]          # exact, no float rounding
    again = parse_rate(units.format_rate(rate))
    assert again == rate


@given(st.integers(units.MIN_RATE, units.MAX_RATE))
def test_rate_from_old_bytes_round_trip(n):
    rate = units.rate_from_bytes(n)
    assert rate.bytes_per_second == n and rate.bits == 8 * n
    assert parse_rate(str(rate)) == rate


@given(st.integers(0, units.MAX_SIZE))
def test_size_round_trip(n):
    assert parse_size(units.format_size(n)) == n


@given(st.text(max_size=50) | st.from_regex(r"\s*\d{0,20}(\.\d{0,12})?\s*[A-Za-z/µ]{0,8}\s*"))
def test_any_text_raises_only_the_protocols_error(text):
    for parse in (parse_rate, parse_size):
        try:
            parse(text)
        except UnitsError as exc:
            assert "\n" not in str(exc)
