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
