"""Pacing of the block exchange (protocol/bitswap_flow.py): pure logic, times given."""

from __future__ import annotations

from protocol import bitswap_flow as flow
from protocol import bitswap as bs

MiB = 1024 * 1024


def test_rate_meter_counts_busy_time_only():
    m = flow.RateMeter()
    m.start(0.0)
    for i in range(1, 5):                 # 64 KB/s
        m.add(6_400, i / 10)
    assert m.rate == 0                    # the first sample needs half a second
    for i in range(5, 21):
        m.add(6_400, i / 10)
    assert abs(m.rate - 64_000) < 1
    m2 = m
    m2.idle()                             # an hour with nothing to send changes nothing
    m2.start(3600.0)
    for i in range(1, 11):
        m2.add(6_400, 3600 + i / 10)
    assert abs(m2.rate - 64_000) < 1
    assert m2.total == 30 * 6_400


def test_rate_meter_samples_early_when_many_bytes_pass():
    m = flow.RateMeter(sample_bytes=4 * MiB)
    m.start(0.0)
    for i in range(1, 5):                 # 1 GB/s on loopback: measured after 4 ms
        m.add(MiB, i / 1000)
    assert abs(m.rate - MiB * 1000) < 1


def test_receiver_meter_treats_a_long_gap_as_idle():
    m = flow.RateMeter(idle_gap=flow.RECEIVE_IDLE_GAP)
    for i in range(11):                   # 1 MB/s
        m.add(100_000, i / 10)
    assert abs(m.rate - 1_000_000) < 1
    for i in range(11):                   # again, after 100 s of silence
        m.add(100_000, 100 + i / 10)
    assert abs(m.rate - 1_000_000) < 1


def test_message_budget_follows_the_rate():
    share = 32 * MiB
    assert flow.message_budget(0, share) == flow.INITIAL_MESSAGE   # unmeasured
    assert flow.message_budget(64_000, share) < 256 * 1024         # 512 kbit/s: one block
    assert flow.message_budget(200 * MiB, share) == share          # loopback: the share...
    assert flow.message_budget(200 * MiB, 1 * MiB) == 1 * MiB      # ...of the memory budget
    assert flow.message_budget(200 * MiB, 8 * MiB) > bs.MAX_MESSAGE_SIZE // 2


def test_window_is_twice_the_bandwidth_delay_product_within_bounds():
    cap = 16 * MiB
    assert flow.window_bytes(0, 0.3, cap) == flow.MIN_WINDOW_BYTES          # unmeasured
    assert flow.window_bytes(32_000, 0.6, cap) == flow.MIN_WINDOW_BYTES     # 256 kbit/s
    assert flow.window_bytes(10 * MiB, 0.3, cap) == 6 * MiB                 # 2 x BDP
    assert flow.window_bytes(500 * MiB, 0.001, cap) == cap                  # loopback
    assert flow.window_bytes(20 * MiB, 0.0, cap) == 4 * MiB                 # latency floor
    assert flow.window_bytes(10 * MiB, 0.3, MiB) == MiB                     # a smaller cap


def test_fair_caps_leave_single_and_slow_links_alone_and_cap_the_hog():
    assert flow.fair_caps({"a": 1e6}) == {}
    assert flow.fair_caps({"a": 0.0, "b": 0.0}) == {}
    # a link that just began (under the floor) is not capped, nor is it counted as a hog
    assert set(flow.fair_caps({"a": 1e6, "new": 100.0})) == {"a"}
    # two links limited elsewhere: each may still grow, and the total may grow
    caps = flow.fair_caps({"a": 100e3, "b": 50e3})
    assert caps["a"] > 100e3 and caps["b"] > 50e3
    # one hog among 30: capped far below what it took, the others above what they got
    caps = flow.fair_caps({"hog": 300e3, **{f"v{i}": 30e3 for i in range(29)}})
    assert caps["hog"] < 200e3 and all(caps[f"v{i}"] > 30e3 for i in range(29))
    assert sum(caps.values()) <= flow.SHARE_HEADROOM * (300e3 + 29 * 30e3) + 1


def test_fair_caps_make_room_at_once_for_links_that_just_began():
    """A fetch had the 1.25 MB/s uplink to itself; 29 villages begin: in the next interval it
    is capped near an equal part of 30, not at what it carried (the 29 are owed their parts
    before they are measured, and are not capped themselves)."""
    assert flow.fair_caps({"first": 1.25e6}) == {}
    caps = flow.fair_caps({"first": 1.25e6}, new=29)
    assert set(caps) == {"first"}
    assert caps["first"] <= 2 * flow.SHARE_HEADROOM * 1.25e6 / 30
    assert flow.fair_caps({"first": 1.25e6}, new=1)["first"] < 1.25e6


def test_fair_caps_never_squeeze_a_fast_link_for_many_slow_ones():
    """One village at 200 KB/s and 29 on 128 kbit/s links (under the floor, uncapped) on a
    1.25 MB/s uplink: the fast one's cap stays above what it carries, interval after
    interval (taking the slow ones' growth out of the budget squeezed it to 16 KiB/s)."""
    carried = {"fast": 200e3, **{f"v{i}": 15e3 for i in range(29)}}
    for _ in range(10):
        caps = flow.fair_caps(carried)
        assert set(caps) == {"fast"} and caps["fast"] >= carried["fast"]
        carried = {**carried, "fast": min(caps["fast"], 1.25e6 - 29 * 15e3)}


def _share(capacity: float, weights: dict[str, float], caps: dict[str, float]
           ) -> dict[str, float]:
    """What a drop-tail uplink gives competing TCP flows: shares by weight (flows that keep
    large windows take more), none above its pacing cap, the rest shared again by weight."""
    rates, left, open_ = {}, capacity, dict(weights)
    while open_ and left > 1e-6:
        total = sum(open_.values())
        done = {k for k, w in open_.items() if k in caps and caps[k] - rates.get(k, 0) <=
                left * w / total}
        if not done:
            for k, w in open_.items():
                rates[k] = rates.get(k, 0) + left * w / total
            break
        for k in done:
            left -= caps[k] - rates.get(k, 0)
            rates[k] = caps[k]
            del open_[k]
    return rates


def test_fair_caps_even_out_an_unfair_uplink_and_keep_it_full():
    """30 villages behind one 1.25 MB/s uplink; TCP alone gives two of them ten times the
    others' share (fairness 0.1).  Re-sharing every interval from what each carried brings the
    slowest within 0.75 of the fastest in a few intervals, with the uplink still full.  (The
    fixed point: the two keep their cap, SHARE_HEADROOM times an equal part, and the other 28
    share the rest: (30 - 2 x 1.25) / (28 x 1.25) = 0.79.)"""
    capacity = 1.25e6
    weights = {f"v{i}": 10.0 if i < 2 else 1.0 for i in range(30)}
    rates = _share(capacity, weights, {})
    assert min(rates.values()) / max(rates.values()) < 0.11
    for _ in range(12):
        rates = _share(capacity, weights, flow.fair_caps(rates))
    assert min(rates.values()) / max(rates.values()) >= 0.75
    assert sum(rates.values()) >= 0.99 * capacity
