"""The Bitswap want scheduler as pure logic (protocol/want_scheduler.py, specs/bitswap.md §5):
driven by hand with a clock that is just a number."""

from __future__ import annotations

import pytest

from protocol.want_scheduler import NoProvider, WantScheduler

MiB = 1024 * 1024


def cid(i: int) -> bytes:
    return b"cid-%03d" % i


def sched(*peers: str, timeout: float = 10.0, count: int = 4) -> WantScheduler:
    return WantScheduler(peers, want_timeout=timeout, max_count=count)


def test_wants_go_out_in_order_to_the_least_loaded_within_windows():
    s = sched("a", "b")
    for i in range(6):
        s.want(cid(i), MiB)
    sent = s.assign(0.0, lambda peer: 2 * MiB)
    # two blocks fit each window; the least loaded (in bytes) gets the next one
    assert sent == [("a", cid(0)), ("b", cid(1)), ("a", cid(2)), ("b", cid(3))]
    assert s.assign(0.0, lambda peer: 2 * MiB) == []         # windows full
    assert s.received("a", cid(0)) is None
    assert s.assign(1.0, lambda peer: 2 * MiB) == [("a", cid(4))]


def test_a_block_larger_than_the_window_still_moves_and_count_caps():
    s = sched("a", count=2)
    for i in range(3):
        s.want(cid(i), 8 * MiB)
    assert s.assign(0.0, lambda peer: MiB) == [("a", cid(0))]   # one want even if too big
    s2 = sched("a", count=2)
    for i in range(3):
        s2.want(cid(i), 1)
    assert len(s2.assign(0.0, lambda peer: 100 * MiB)) == 2        # max_count


def test_dont_have_requeues_first_and_excludes_that_provider():
    s = sched("a", "b")
    s.want(cid(0), 10)
    s.want(cid(1), 10)
    sent = dict((c, p) for p, c in s.assign(0.0, lambda p: MiB))
    who = sent[cid(0)]
    assert not s.refused("b" if who == "a" else "a", cid(0))   # not our want there
    assert s.refused(who, cid(0))
    other = "b" if who == "a" else "a"
    assert s.assign(1.0, lambda p: MiB) == [(other, cid(0))]
    assert s.refused(other, cid(0))
    with pytest.raises(NoProvider) as exc:
        s.assign(2.0, lambda p: MiB)
    assert exc.value.cid == cid(0)
    assert set(exc.value.why) == {"a", "b"}


def test_a_doubtful_provider_gets_wants_only_when_the_others_are_full():
    s = sched("a", "b", count=1)
    for i in range(4):
        s.want(cid(i), 10)
    first = s.assign(0.0, lambda p: MiB)
    (pa, ca), (pb, cb) = first
    s.refused("a", ca if pa == "a" else cb)          # a refused once, delivered nothing
    s.received("b", cb if pb == "b" else ca)
    assert s.doubtful("a") and not s.doubtful("b")
    nxt = s.assign(1.0, lambda p: MiB)
    assert nxt[0][0] == "b"


def test_received_elsewhere_names_the_provider_to_cancel_at():
    s = sched("a", "b")
    s.want(cid(0), 10)
    [(peer, c)] = s.assign(0.0, lambda p: MiB)
    other = "b" if peer == "a" else "a"
    assert s.received(other, c) == peer
    assert s.done() and s.load[peer] == [0, 0]


def test_timeouts_withdraw_from_busy_providers_and_stall_silent_ones():
    s = sched("busy", "silent", timeout=10.0, count=1)
    s.want(cid(0), 10)
    s.want(cid(1), 10)
    sent = dict(s.assign(0.0, lambda p: MiB))
    assert s.next_check == 10.0
    last = {"busy": 5.0, "silent": -1.0}    # busy sent other bytes at t=5; silent nothing
    out = s.check_timeouts(9.0, last.__getitem__)
    assert out.withdrawn == [] and out.stalled == set()
    out = s.check_timeouts(16.0, last.__getitem__)
    assert out.stalled == {"silent"}
    assert [p for p, _ in out.withdrawn] == ["busy"]
    back = s.drop("silent", "answered nothing")
    assert back == [sent["silent"]]
    assert s.drop("silent", "again") is None
    assert s.providers == ["busy"]
    # both blocks are queued again (the dropped provider's first); "busy" takes that one,
    # but it is excluded for the one it timed out on, and nobody else is left
    with pytest.raises(NoProvider) as exc:
        s.assign(17.0, lambda p: MiB)
    assert exc.value.cid == sent["busy"]
    assert s.waits_at(sent["silent"], "busy")
    assert exc.value.why == {"busy": "no answer within 10 s", "silent": "answered nothing"}


def test_withdraw_all_empties_the_flight():
    s = sched("a")
    s.want(cid(0), 10)
    s.assign(0.0, lambda p: MiB)
    assert s.withdraw_all() == [("a", cid(0))]
    assert s.inflight == {} and s.load["a"] == [0, 0]
