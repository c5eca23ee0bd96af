"""Property tests for the signed records: feed entries (records), feed sync messages and
signed heads (feedsync), invite codes and redeem messages (community).

Besides round trips and "any bytes raise only RemoteProtocolError", the signed decoders are fed
maps that are *validly signed* but otherwise arbitrary (valid maps with random edits), so every
check after the signature is reached too.  What such a decoder accepts must be exactly what
the encoder writes for the decoded value: a signed record has one encoding, so its hash (feed
chain, resource ids) cannot be changed without the author's key.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import sha256
from prop_strategies import (
    B32, KEYS, any_value, bodies, chunked, community_ids, digests, keys, msgpack_maps, mutated,
    school_ids, times, twin_edits,
)
from protocol import codec, feedsync, records
from protocol import membership as community
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

seqs = st.integers(1, records.MAX_SEQ)


def _encode(value):
    """Canonical bytes, or None when the value cannot be encoded (too deep, too large)."""
    try:
        return codec.encode(value)
    except LocalProtocolError:
        return None


# -- records -----------------------------------------------------------------------------------

@st.composite
def signed_entries(draw):
    kind, body = draw(bodies())
    seq = draw(seqs)
    return records.sign_entry(draw(keys), seq=seq, prev=None if seq == 1 else draw(digests),
                              time=draw(times), kind=kind, body=body)


@given(signed_entries())
def test_entry_round_trip(entry):
    got = records.decode_entry(entry.raw)
    assert got == entry
    assert records.entry_to_json(got) == records.entry_to_json(entry)


@given(st.binary(max_size=300))
def test_entry_any_bytes(data):
    with pytest.raises(RemoteProtocolError):
        records.decode_entry(data)


@st.composite
def signed_entry_maps(draw):
    """A validly signed entry map whose fields (and body) were edited at random."""
    kind, body = draw(bodies())
    key = draw(keys)
    seq = draw(seqs)
    valid = {"v": records.VERSION, "feed": key.public.raw, "seq": seq,
             "prev": None if seq == 1 else draw(digests), "time": draw(times), "kind": kind,
             "body": body}
    m = draw(mutated(st.just(valid)))
    if not isinstance(m, dict):
        return _encode(m)
    fields = ("feed", "seq", "prev", "time", "kind", "body")
    signed = records._unsigned(*(m[f] for f in fields)) if all(f in m for f in fields) else m
    unsigned = _encode(signed)
    if unsigned is None:
        return None
    return _encode({**m, "sig": key.sign(records.ENTRY_DOMAIN, unsigned)})


@given(signed_entry_maps())
def test_entry_signed_but_edited(data):
    if data is None:
        return
    try:
        e = records.decode_entry(data)
    except RemoteProtocolError:
        return
    assert e.raw == data
    assert codec.encode({**records._unsigned(e.feed, e.seq, e.prev, e.time, e.kind, e.body),
                         "sig": e.sig}) == data


@given(signed_entries())
def test_entry_twin_fields_refused(entry):
    """1 for true, false for 0, at any one place, even validly signed: refused."""
    key = next(k for k in KEYS if k.public.raw == entry.feed)
    m = {k: v for k, v in codec.decode(entry.raw).items() if k != "sig"}
    for t in twin_edits(m):
        signed = records._unsigned(t["feed"], t["seq"], t["prev"], t["time"], t["kind"],
                                   t["body"])
        sig = key.sign(records.ENTRY_DOMAIN, codec.encode(signed))
        with pytest.raises(RemoteProtocolError):
            records.decode_entry(codec.encode({**t, "sig": sig}))


@given(bodies(), st.booleans(), st.data())
def test_validate_body_any_edit(kind_body, local, data):
    kind, body = kind_body
    edited = data.draw(mutated(st.just(body), max_edits=3))
    kind = data.draw(st.just(kind) | st.text(max_size=20))
    try:
        records.validate_body(kind, edited, local=local)
    except ProtocolError:
        pass


# -- feedsync ----------------------------------------------------------------------------------

feeds = st.binary(min_size=32, max_size=32)
messages = st.one_of(
    st.builds(feedsync.HeadsRequest, feeds=st.lists(feeds, max_size=4).map(tuple)),
    st.builds(feedsync.Heads, heads=st.lists(st.builds(
        feedsync.Head, feed=feeds, seq=seqs, hash=digests), max_size=4).map(tuple)),
    st.builds(feedsync.EntriesRequest, feed=feeds, after=st.integers(0, 2**53),
              limit=st.integers(1, feedsync.MAX_ENTRIES_PER_RESPONSE)),
    st.builds(feedsync.Entries, feed=feeds, entries=st.lists(st.binary(max_size=50),
                                                             max_size=4).map(tuple),
              more=st.booleans()),
    st.builds(feedsync.Error, code=st.text(max_size=64), message=st.text(max_size=100)),
)


@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_feed_messages_round_trip_in_any_pieces(msgs, data):
    stream = b"".join(feedsync.encode_frame(m.to_msg()) for m in msgs)
    decoder = feedsync.FrameDecoder()
    got = []
    for piece in data.draw(chunked(stream)):
        got += [feedsync.parse(m) for m in decoder.feed(piece)]
    assert got == msgs and decoder.pending == 0


@given(st.binary(max_size=300), st.integers(0, 500), st.data())
def test_feed_frame_decoder_any_bytes(stream, max_frame, data):
    decoder = feedsync.FrameDecoder(max_frame=max_frame)
    try:
        for piece in data.draw(chunked(stream)):
            for m in decoder.feed(piece):
                assert isinstance(m, dict) and isinstance(m["t"], str)
    except RemoteProtocolError:
        pass


@given(st.one_of(messages.map(lambda m: m.to_msg()), msgpack_maps).flatmap(mutated))
def test_feed_parse_any_map(m):
    """parse() gets every decoded map that has a text field t."""
    if not isinstance(m, dict):
        m = {"t": "heads", "heads": m}
    m.setdefault("t", "heads")
    if not isinstance(m["t"], str):
        m["t"] = "entries"
    try:
        msg = feedsync.parse(m)
    except RemoteProtocolError:
        return
    if not isinstance(msg, feedsync.Error):  # errors are cut to length, the rest is exact
        assert msg.to_msg() == m


@given(keys, seqs, digests, times, st.booleans())
def test_head_round_trip(key, seq, hash_, time, carry):
    entry = None
    if carry:   # a carried entry is the head's own entry (specs/feedsync.md §4)
        e = records.sign_entry(key, seq=seq, prev=None if seq == 1 else hash_, time=time,
                               kind="profile", body={"name": "x", "role": "school"})
        entry, hash_ = e.raw, e.hash
    head = feedsync.sign_head(key, seq=seq, hash=hash_, time=time, entry=entry)
    assert feedsync.decode_head(head.raw) == head


@given(keys, keys, seqs, times)
def test_head_carrying_another_feeds_or_seqs_entry_is_refused(key, other, seq, time):
    e = records.sign_entry(other, seq=seq, prev=None if seq == 1 else bytes(32), time=time,
                           kind="profile", body={"name": "x", "role": "school"})
    for head_seq in {seq, seq + 1}:
        if other.public.raw == key.public.raw and head_seq == seq:
            continue
        head = feedsync.sign_head(key, seq=head_seq, hash=e.hash, time=time, entry=e.raw)
        with pytest.raises(RemoteProtocolError, match="carried entry"):
            feedsync.decode_head(head.raw)


@given(st.binary(max_size=200))
def test_head_any_bytes(data):
    with pytest.raises(RemoteProtocolError):
        feedsync.decode_head(data)


@st.composite
def signed_head_maps(draw):
    key = draw(keys)
    entry = draw(st.binary(max_size=40))
    valid = {"v": 1, "feed": key.public.raw, "seq": draw(seqs), "hash": sha256(entry),
             "time": draw(times), "entry": entry}
    m = draw(mutated(st.just(valid)))
    if not isinstance(m, dict):
        return _encode(m)
    unsigned = _encode({k: v for k, v in m.items() if k not in ("sig", "entry")})
    if unsigned is None:
        return None
    return _encode({**m, "sig": key.sign(feedsync.HEAD_DOMAIN, unsigned)})


@given(signed_head_maps())
def test_head_signed_but_edited(data):
    if data is None:
        return
    try:
        head = feedsync.decode_head(data)
    except RemoteProtocolError:
        return
    m = {"v": 1, "feed": head.feed, "seq": head.seq, "hash": head.hash, "time": head.time,
         "sig": codec.decode(data)["sig"]}
    if head.entry is not None:
        m["entry"] = head.entry
    assert codec.encode(m) == data


@given(keys, seqs, times, st.binary(max_size=20))
def test_head_twin_fields_refused(key, seq, time, entry):
    head = feedsync.sign_head(key, seq=seq, hash=sha256(entry), time=time, entry=entry)
    m = {k: v for k, v in codec.decode(head.raw).items() if k != "sig"}
    for t in twin_edits(m):
        unsigned = {k: v for k, v in t.items() if k != "entry"}
        raw = codec.encode({**t, "sig": key.sign(feedsync.HEAD_DOMAIN, codec.encode(unsigned))})
        with pytest.raises(RemoteProtocolError):
            feedsync.decode_head(raw)


# -- community ---------------------------------------------------------------------------------

seeds = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
    lambda s: "/" + s)
invites = st.builds(
    community.Invite, community=community_ids, issuer=school_ids,
    seeds=st.lists(seeds, min_size=1, max_size=community.MAX_SEEDS, unique=True).map(tuple),
    secret=st.binary(min_size=16, max_size=16),
    role=st.sampled_from(community.CERT_ROLES), expires=times)


@given(invites, st.sampled_from((str, str.upper, lambda c: c[:4] + c[4:].replace("-", ""),
                                 lambda c: c.replace("-", " \n-"))))
def test_invite_round_trip(inv, retype):
    code = community.encode_invite(inv)
    assert code.startswith(community.CODE_PREFIX)
    assert community.decode_invite(retype(code)) == inv


def _code(payload: bytes) -> str:
    data = payload + sha256(community.CHECKSUM_DOMAIN + payload)[:community.CHECKSUM_SIZE]
    return community.CODE_PREFIX + community._b32(data)


any_code = st.one_of(
    st.text(max_size=80),
    st.text(B32 + "-", max_size=80).map(lambda s: community.CODE_PREFIX + s),
    st.binary(max_size=60).map(_code),
)


@given(any_code)
def test_invite_any_text(code):
    try:
        inv = community.decode_invite(code)
    except RemoteProtocolError:
        return
    assert community.decode_invite(community.encode_invite(inv)) == inv


@given(invites.map(community._invite_map).flatmap(mutated))
def test_invite_checksummed_but_edited(m):
    """A code with a valid checksum over an edited payload (what a buggy or hostile issuer
    could hand out): refused, or it is exactly the code the encoder writes."""
    payload = _encode(m)
    if payload is None:
        return
    try:
        inv = community.decode_invite(_code(payload))
    except RemoteProtocolError:
        return
    assert codec.encode(community._invite_map(inv)) == payload


@given(invites)
def test_invite_twin_fields_refused(inv):
    for t in twin_edits(community._invite_map(inv)):
        with pytest.raises(RemoteProtocolError):
            community.decode_invite(_code(codec.encode(t)))


@given(st.text(B32, min_size=26, max_size=26), invites)
def test_invite_any_community_id(text, inv):
    """An Invite refuses an id that is not the base32 of 16 bytes, or its code gives it back."""
    try:
        inv = community.Invite(community="c" + text, issuer=inv.issuer, seeds=inv.seeds,
                               secret=inv.secret, role=inv.role, expires=inv.expires)
    except LocalProtocolError:
        return
    assert community.decode_invite(community.encode_invite(inv)) == inv


requests = st.one_of(
    st.builds(community.CharterRequest, community=community_ids),
    st.builds(community.RedeemRequest, community=community_ids, school=school_ids,
              invite=st.binary(min_size=16, max_size=16),
              proof=st.binary(min_size=64, max_size=64)))
responses = st.one_of(
    st.builds(community.RedeemResponse, certificate=st.binary(max_size=60)),
    st.builds(community.RedeemResponse, charter=st.binary(max_size=60)),
    st.builds(community.RedeemResponse, error=st.sampled_from(community.REDEEM_ERRORS),
              message=st.text(max_size=100)))


@given(requests, responses)
def test_redeem_messages_round_trip(req, resp):
    assert community.decode_request(req.encode()) == req
    if isinstance(req, community.RedeemRequest):
        assert community.decode_redeem_request(req.encode()) == req
    assert community.decode_redeem_response(resp.encode()) == resp


@given(requests, responses)
def test_redeem_messages_twin_fields_refused(req, resp):
    for t in twin_edits(codec.decode(req.encode())):
        with pytest.raises(RemoteProtocolError):
            community.decode_request(codec.encode(t))
    for t in twin_edits(codec.decode(resp.encode())):
        with pytest.raises(RemoteProtocolError):
            community.decode_redeem_response(codec.encode(t))


@given(st.binary(max_size=200))
def test_redeem_messages_any_bytes(data):
    for decode in (community.decode_request, community.decode_redeem_request,
                   community.decode_redeem_response):
        with pytest.raises(RemoteProtocolError):
            decode(data)


@given(st.one_of(requests.map(lambda r: codec.decode(r.encode())),
                 responses.map(lambda r: codec.decode(r.encode())), msgpack_maps)
       .flatmap(mutated))
def test_redeem_messages_any_map(m):
    data = _encode(m)
    if data is None:
        return
    for decode in (community.decode_request, community.decode_redeem_response):
        try:
            msg = decode(data)
        except RemoteProtocolError:
            continue
        assert msg.encode() == data


@given(signed_entries(), community_ids, invites, school_ids)
def test_community_checks_of_returned_entries(entry, cid, inv, school):
    """What a seed returns to a joining school is any signed entry: only RemoteProtocolError."""
    try:
        community.check_charter_for(entry.raw, cid)
    except RemoteProtocolError:
        pass
    try:
        community.check_certificate_for(entry.raw, inv, school)
    except RemoteProtocolError:
        pass


@given(st.text(max_size=20), any_value.filter(lambda v: isinstance(v, dict)) | bodies().map(
    lambda kb: kb[1]))
def test_community_validate_body_any_map(kind, body):
    for k in (*records.COMMUNITY_KINDS, kind):
        try:
            community.validate_body(k, body)
        except LocalProtocolError:
            pass
