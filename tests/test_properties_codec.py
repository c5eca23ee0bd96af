"""Property tests for the primitive decoders: canonical msgpack (codec), varints, frames,
vocabularies, resource paths and bandwidth-limit settings.

Two kinds of property for every decoder: what is encoded decodes back to the same value, and
any input at all raises only the protocol's own errors (never KeyError, TypeError, ...).
"""

from __future__ import annotations

import json
from datetime import time as dtime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prop_strategies import any_value, chunked, msgpack_values, mutated, paths
from protocol import codec, framing, limits, paths as pp, varint, vocab
from protocol.errors import LocalProtocolError, RemoteProtocolError


def _lists(value):
    """What decode returns for an encoded value: tuples come back as lists."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


# -- codec -------------------------------------------------------------------------------------

@given(msgpack_values(max_leaves=30))
def test_codec_round_trip(value):
    data = codec.encode(value)
    assert codec.decode(data) == _lists(value)
    assert codec.encode(codec.decode(data)) == data


@given(st.binary(max_size=200))
def test_codec_decode_any_bytes(data):
    try:
        value = codec.decode(data)
    except RemoteProtocolError:
        return
    assert codec.encode(value) == data  # one valid encoding per value


@given(msgpack_values(), st.integers(0, 300), st.integers(0, 255))
def test_codec_decode_one_byte_changed(value, at, byte):
    data = bytearray(codec.encode(value))
    data[at % len(data)] = byte
    try:
        decoded = codec.decode(bytes(data))
    except RemoteProtocolError:
        return
    assert codec.encode(decoded) == bytes(data)


@given(st.integers(0, 3000))
def test_codec_decode_any_nesting(depth):
    data = b"\x91" * depth + b"\x00"   # [[[...[0]...]]]
    if depth > codec.MAX_DEPTH:
        with pytest.raises(RemoteProtocolError):
            codec.decode(data)
    else:
        assert codec.encode(codec.decode(data)) == data


# -- varint ------------------------------------------------------------------------------------

@given(st.integers(0, 2**64 - 1), st.binary(max_size=4), st.binary(max_size=4))
def test_varint_round_trip(n, before, after):
    data = before + varint.encode_uvarint(n) + after
    assert varint.decode_uvarint(data, len(before)) == (n, len(data) - len(after))
    assert varint.decode_uvarint_prefix(data, len(before)) == (n, len(data) - len(after))


@given(st.binary(max_size=16), st.integers(0, 16), st.integers(1, 12))
def test_varint_decode_any_bytes(data, pos, max_bytes):
    try:
        got = varint.decode_uvarint_prefix(data, pos, max_bytes=max_bytes)
    except RemoteProtocolError:
        return
    if got is not None:
        n, end = got
        assert data[pos:end] == varint.encode_uvarint(n)  # minimal encodings only
    try:
        varint.decode_uvarint(data, pos)
    except RemoteProtocolError:
        pass


# -- framing -----------------------------------------------------------------------------------

@given(st.lists(st.binary(max_size=300), max_size=6), st.data())
def test_frames_round_trip_in_any_pieces(payloads, data):
    stream = b"".join(framing.encode_frame(p) for p in payloads)
    decoder = framing.FrameDecoder(max_size=300)
    got = []
    for piece in data.draw(chunked(stream)):
        decoder.receive_data(piece)
        while (frame := decoder.next_frame()) is not None:
            got.append(bytes(frame))
    decoder.end_of_stream()
    assert got == payloads and decoder.buffered == 0


@given(st.binary(max_size=400), st.integers(0, 1000), st.data())
def test_frame_decoder_any_bytes(stream, max_size, data):
    decoder = framing.FrameDecoder(max_size=max_size)
    try:
        for piece in data.draw(chunked(stream)):
            decoder.receive_data(piece)
            while (frame := decoder.next_frame()) is not None:
                assert len(frame) <= max_size
        decoder.end_of_stream()
    except RemoteProtocolError:
        pass


# -- vocab -------------------------------------------------------------------------------------

@given(any_value)
def test_vocab_checks_any_value(value):
    """Values reach these checks straight from decoded maps: any type may arrive."""
    for check in (vocab.check_language, vocab.check_duration,
                  lambda v: vocab.check_choice("level", v, vocab.LEVELS),
                  lambda v: vocab.check_choice("type", v, vocab.RESOURCE_TYPES)):
        try:
            assert check(value) == value
        except LocalProtocolError:
            pass


@given(st.sampled_from(sorted(vocab.LEVELS)) | st.sampled_from(vocab.LICENSES),
       st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_vocab_accepts_valid_values(choice, d, h, m):
    assert vocab.check_choice("x", choice, {**vocab.LEVELS, **dict.fromkeys(vocab.LICENSES)})
    assert vocab.check_duration(f"P{d}DT{h}H{m}M")
    assert vocab.check_duration(f"PT{m}M")


# -- paths -------------------------------------------------------------------------------------

# File names come from the local file system too, where undecodable bytes become surrogates.
# Characters the checks single out, mixed into otherwise arbitrary text.
SPECIAL = ("/", "\\", ".", "..", "\0", "\x7f", "\n", "\udc80", "\ud800", "e\u0301", "con",
           "-", "=", ":", "#", "KiB/s", "MB", "unlimited", "0", "9", "23:59", "{", "[", '"')
any_text = st.lists(st.sampled_from(SPECIAL) | st.characters(exclude_categories=()),
                   max_size=30).map("".join)


@given(paths)
def test_paths_valid_round_trip(path):
    assert pp.check_path(path) == path
    assert pp.normalise(path) == path
    assert pp.normalise(path.replace("/", "\\")) == path
    assert pp.normalise("./" + path + "/") == path


@given(any_text)
def test_paths_any_text(text):
    for check in (pp.check_name, pp.check_path, pp.normalise):
        try:
            out = check(text)
        except pp.BadPath:
            continue
        assert pp.check_path(out) == out
        out.encode("utf-8")


# -- limits ------------------------------------------------------------------------------------

rates = st.none() | st.integers(limits.MIN_RATE, limits.MAX_RATE)
budgets = st.none() | st.integers(limits.MIN_BUDGET, limits.MAX_BUDGET)


@st.composite
def schedules(draw):
    """Windows that never overlap: consecutive pairs of sorted distinct minutes; or the same
    shifted by one, so that the last window crosses midnight."""
    m = draw(st.lists(st.integers(0, limits.MINUTES_PER_DAY - 1), unique=True,
                      max_size=8).map(sorted))
    m = m[:len(m) // 2 * 2]
    if m and draw(st.booleans()):
        m = m[1:] + m[:1]
    return tuple(limits.Window(start=a, end=b, rate=draw(rates)) for a, b in zip(m[::2], m[1::2]))


settings_values = st.builds(limits.Limits, up=rates, down=rates, schedule=schedules(),
                            monthly_budget=budgets, lan_unlimited=st.booleans())


@given(settings_values)
def test_limits_round_trip(value):
    assert limits.Limits.from_json(value.to_json()) == value
    assert limits.parse_config(value.to_config()) == value
    for w in value.schedule:
        assert limits.parse_window(str(w)) == w


@given(any_text)
def test_limits_parsers_any_text(text):
    for parse in (limits.parse_rate, limits.parse_budget, limits.parse_window,
                  limits.parse_config, limits.Limits.from_json):
        try:
            parse(text)
        except limits.UnitsError:   # LimitsError is one
            pass


@given(settings_values, st.data())
def test_limits_from_json_any_stored_value(value, data):
    """The stored JSON may be damaged or edited by hand: any JSON value gives a LimitsError."""
    stored = data.draw(mutated(st.just(json.loads(value.to_json()))))
    try:
        limits.Limits.from_json(json.dumps(stored, default=bytes.hex))
    except limits.UnitsError:   # LimitsError is one
        pass


@given(settings_values, st.times())
def test_limits_rate_in_force_is_a_window_rate_or_the_base(value, at: dtime):
    rates_now = limits.effective_rate(value, at)
    per_second = limits.per_second
    window_rates = {(per_second(w.rate), per_second(w.rate)) for w in value.schedule}
    assert (rates_now.up, rates_now.down) in \
        window_rates | {(per_second(value.up), per_second(value.down))}
    assert limits.seconds_to_next_boundary(value, at) > 0
