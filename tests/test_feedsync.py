"""Feed sync wire format (sans-IO) and signed heads."""

import pytest

from crypto import SchoolKey
from protocol import codec, feedsync
from protocol.errors import RemoteProtocolError

KEY = SchoolKey.from_seed(bytes(range(32)))
F = KEY.public.raw


@pytest.mark.parametrize("msg", [
    feedsync.HeadsRequest(feeds=(F,)),
    feedsync.HeadsRequest(feeds=()),
    feedsync.Heads(heads=(feedsync.Head(feed=F, seq=3, hash=bytes(32)),)),
    feedsync.EntriesRequest(feed=F, after=2, limit=10),
    feedsync.Entries(feed=F, entries=(b"a", b"b"), more=True),
    feedsync.Error(code="x", message="y"),
])
def test_round_trip_in_odd_pieces(msg):
    frame = feedsync.encode_frame(msg.to_msg())
    dec = feedsync.FrameDecoder()
    out = []
    for i in range(len(frame)):
        out += dec.feed(frame[i:i + 1])
    assert [feedsync.parse(m) for m in out] == [msg]
    assert dec.pending == 0


def test_two_frames_in_one_read():
    a = feedsync.encode_frame(feedsync.HeadsRequest(feeds=()).to_msg())
    assert len(feedsync.FrameDecoder().feed(a + a)) == 2


def test_oversized_frame_rejected_before_buffering():
    dec = feedsync.FrameDecoder(max_frame=1000)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        dec.feed(b"\xe9\x07")  # length 1001, no body needed to refuse


@pytest.mark.parametrize("bad", [
    b"\xff\xff\xff\xff\xff\xff\xff",           # endless length varint
    b"\x01\xc1",                                # invalid msgpack byte
    b"\x02\x91\x01",                            # not a map
    b"\x04\x81\xa1t\x01",                       # t not text
])
def test_malformed_frames(bad):
    with pytest.raises(RemoteProtocolError):
        feedsync.FrameDecoder().feed(bad)


@pytest.mark.parametrize("m", [
    {"t": "nope"},
    {"t": "heads?"},
    {"t": "heads?", "feeds": [b"short"]},
    {"t": "entries?", "feed": F, "after": -1, "limit": 5},
    {"t": "entries?", "feed": F, "after": 0, "limit": 100000},
    {"t": "entries", "feed": F, "entries": ["text"], "more": False},
    {"t": "entries", "feed": F, "entries": [], "more": 1},
    {"t": "heads", "heads": [{"feed": F, "seq": 0, "hash": bytes(32)}]},
    {"t": "heads?", "feeds": [], "extra": 1},
])
def test_parse_rejects(m):
    with pytest.raises(RemoteProtocolError):
        feedsync.parse(m)


def test_signed_head():
    h = feedsync.sign_head(KEY, seq=5, hash=bytes(32), time=7)
    d = feedsync.decode_head(h.raw)
    assert (d.feed, d.seq, d.time) == (F, 5, 7)
    m = codec.decode(h.raw)
    for field, value in (("seq", 6), ("feed", SchoolKey.from_seed(bytes(32)).public.raw)):
        forged = codec.encode({**m, field: value})
        with pytest.raises(RemoteProtocolError):
            feedsync.decode_head(forged)
    # a feed-entry signature cannot be replayed as a head (domain separation)
    unsigned = {k: v for k, v in m.items() if k != "sig"}
    wrong = codec.encode({**unsigned, "sig": KEY.sign("feed-entry", codec.encode(unsigned))})
    with pytest.raises(RemoteProtocolError):
        feedsync.decode_head(wrong)


# -- vectors ---------------------------------------------------------------------------------
import json  # noqa: E402
from pathlib import Path  # noqa: E402

V = json.loads((Path(__file__).parents[1] / "specs/vectors/feedsync.json").read_text())


@pytest.mark.parametrize("f", V["frames"], ids=lambda f: f["t"])
def test_vector_frames(f):
    (m,) = feedsync.FrameDecoder().feed(bytes.fromhex(f["hex"]))
    msg = feedsync.parse(m)
    assert feedsync.encode_frame(msg.to_msg()).hex() == f["hex"]


@pytest.mark.parametrize("f", V["bad_frames"], ids=lambda f: f["why"])
def test_vector_bad_frames(f):
    with pytest.raises(RemoteProtocolError):
        for m in feedsync.FrameDecoder().feed(bytes.fromhex(f["hex"])):
            feedsync.parse(m)


def test_vector_heads():
    key = SchoolKey.from_seed(bytes.fromhex(V["seed"]))
    h = feedsync.decode_head(bytes.fromhex(V["head"]["hex"]))
    assert (h.feed, h.seq, h.time) == (key.public.raw, V["head"]["seq"], V["head"]["time"])
    assert feedsync.sign_head(key, seq=h.seq, hash=h.hash, time=h.time).raw == h.raw
    carried = feedsync.decode_head(bytes.fromhex(V["head_with_entry"]["hex"]))
    assert carried.entry == bytes.fromhex(V["head_with_entry"]["entry"])
    for bad in V["bad_heads"]:
        with pytest.raises(RemoteProtocolError):
            feedsync.decode_head(bytes.fromhex(bad["hex"]))


def test_head_may_carry_its_entry():
    from protocol import records
    e = records.sign_entry(KEY, seq=1, prev=None, time=1, kind="profile",
                           body={"name": "x", "role": "school"})
    h = feedsync.decode_head(feedsync.sign_head(KEY, seq=1, hash=e.hash, time=2,
                                                entry=e.raw).raw)
    assert h.entry == e.raw
    # the carried bytes must hash to the signed head hash
    m = codec.decode(h.raw)
    with pytest.raises(RemoteProtocolError, match="does not match"):
        feedsync.decode_head(codec.encode({**m, "entry": e.raw + b"x"}))
    # too big to carry: announced without it
    big = b"x" * (feedsync.MAX_HEAD_ENTRY + 1)
    assert feedsync.sign_head(KEY, seq=1, hash=bytes(32), time=0, entry=big).entry is None
