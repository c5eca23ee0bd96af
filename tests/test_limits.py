"""Bandwidth limits: sans-IO parsing, schedules and the token bucket with explicit times, and
the trio limiter on a MockClock (virtual time only: no wall-clock assertions)."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import time as dtime

import pytest
import trio

from node.limits import Limiter
from protocol import limits as pl
from protocol.limits import Limits, LimitsError, TokenBucket, effective_rate

KiB, MiB = 1024, 1024 ** 2


def test_schedule_windows():
    w = pl.parse_window("08:00-16:00=256KiB/s")
    assert (w.start, w.end, w.rate.bytes_per_second) == (480, 960, 256 * KiB) and str(w) == "08:00-16:00=256KiB/s"
    night = pl.parse_window("22:30-06:00=unlimited")
    assert night.spans() == [(1350, 1440), (0, 360)]
    assert str(pl.parse_window("8:00-9:30=10M")) == "08:00-09:30=10Mbit/s"
    for bad in ["8-16=1MiB/s", "08:00-24:00=1MiB/s", "123:00-1:00=1MiB/s", "08:00-08:00=1MiB/s",
                "08:00=1MiB/s", "08:00-09:00", "08:61-09:00=1MiB/s"]:
        with pytest.raises(LimitsError, match="H:MM-H:MM=RATE"):
            pl.parse_window(bad)


def test_overlapping_windows_refused_including_across_midnight():
    day = pl.parse_window("08:00-16:00=256KiB/s")
    with pytest.raises(LimitsError, match="overlap"):
        Limits(schedule=(day, pl.parse_window("15:00-17:00=1MiB/s")))
    with pytest.raises(LimitsError, match="overlap"):
        Limits(schedule=(pl.parse_window("22:00-06:00=1MiB/s"),
                         pl.parse_window("05:00-07:00=1MiB/s")))
    # touching windows are fine
    Limits(schedule=(day, pl.parse_window("16:00-08:00=unlimited")))


def test_effective_rate_switches_at_the_boundaries():
    lim = Limits(up=64 * KiB, down=128 * KiB,
                 schedule=(pl.parse_window("08:00-16:00=32KiB/s"),
                           pl.parse_window("22:00-06:00=unlimited")))
    at = lambda h, m, s=0, us=0: effective_rate(lim, dtime(h, m, s, us))  # noqa: E731
    assert at(7, 59, 59, 999_999) == pl.Rates(64 * KiB, 128 * KiB)
    assert at(8, 0) == pl.Rates(32 * KiB, 32 * KiB)
    assert at(15, 59, 59, 999_999) == pl.Rates(32 * KiB, 32 * KiB)
    assert at(16, 0) == pl.Rates(64 * KiB, 128 * KiB)
    assert at(23, 0) == at(0, 0) == at(5, 59) == pl.Rates(None, None)
    assert at(6, 0) == pl.Rates(64 * KiB, 128 * KiB)
    assert pl.seconds_to_next_boundary(lim, dtime(7, 59, 50)) == pytest.approx(10)
    assert pl.seconds_to_next_boundary(lim, dtime(23, 0)) == pytest.approx(7 * 3600)
    assert pl.seconds_to_next_boundary(Limits(), dtime(12, 0)) == float("inf")


def test_settings_round_trip_json_and_config():
    lim = Limits(up=MiB, down=None, schedule=(pl.parse_window("08:00-16:00=256kbit/s"),),
                 monthly_budget=2 * 1024 ** 3, lan_unlimited=False)
    assert Limits.from_json(lim.to_json()) == lim
    assert pl.parse_config(lim.to_config()) == lim
    assert pl.parse_config("# nothing set\n") == Limits()
    assert lim.describe()["monthly_budget"] == "2GiB"
    for bad, match in [("speed = 1MiB/s", "KEY = VALUE"), ("up = 1MiB/s\nup = 2MiB/s", "twice"),
                       ("lan_unlimited = maybe", "yes or no"), ("down = -5", "like 10M")]:
        with pytest.raises(pl.UnitsError, match=match):
            pl.parse_config(bad)


def test_bad_values_leave_the_original_untouched():
    lim = Limits(up=MiB)
    with pytest.raises(LimitsError):
        pl.update(lim, monthly_budget=-1)
    with pytest.raises(LimitsError):
        pl.update(lim, up=5)
    assert lim == Limits(up=MiB)


def test_token_bucket_with_explicit_times():
    b = TokenBucket(64 * KiB, burst=16 * KiB)
    assert b.take(16 * KiB, now=0.0) == 0.0           # starts full
    assert b.take(8 * KiB, now=0.0) == pytest.approx(0.125)   # in debt: wait it off
    assert b.take(0, now=0.0625) == pytest.approx(0.0625)     # how much of the wait remains
    assert b.take(0, now=0.125) == 0.0
    assert b.take(64 * KiB, now=1.0) == pytest.approx(0.75)   # > burst: 16 KiB saved up
    assert b.tokens == pytest.approx(-48 * KiB)
    b.set_rate(128 * KiB, now=1.25)                           # 16 KiB of debt paid at 64...
    assert b.take(0, now=1.25) == pytest.approx(0.25)         # ...the other 32 KiB at 128
    assert b.admitted == 16 * KiB + 8 * KiB + 64 * KiB
    unlimited = TokenBucket(None)
    assert unlimited.take(10 ** 9, now=0) == 0.0
    b.set_rate(None, now=2.0)
    assert b.take(10 ** 9, now=2.0) == 0.0


def test_token_bucket_keeps_at_most_a_burst():
    b = TokenBucket(32 * KiB)
    assert b.burst == pl.MIN_BURST
    b.take(b.burst, now=0)
    b.take(0, now=1000.0)  # idle for a long time
    assert b.tokens == b.burst


async def test_rate_limited_sender_takes_16_virtual_seconds(autojump_clock):
    limiter = Limiter(Limits(up=256 * KiB), local_time=lambda: dtime(12, 0))
    t0 = trio.current_time()
    for _ in range(64):
        await limiter.acquire("up", 64 * KiB)
    elapsed = trio.current_time() - t0
    assert elapsed == pytest.approx(16.0, rel=0.01)
    assert limiter.buckets["up"].admitted == 4 * MiB
    assert limiter.consulted == {"up": 4 * MiB, "down": 0}


async def test_lan_peers_are_exempt_only_when_asked(autojump_clock):
    limiter = Limiter(Limits(down=32 * KiB), local_time=lambda: dtime(12, 0))
    t0 = trio.current_time()
    await limiter.acquire("down", 4 * MiB, lan=True)
    assert trio.current_time() == t0 and limiter.pending["down"] == 0
    limiter.set_limits(Limits(down=32 * KiB, lan_unlimited=False))
    for _ in range(4):
        await limiter.acquire("down", 32 * KiB, lan=True)
    assert trio.current_time() - t0 == pytest.approx(4 - pl.MIN_BURST / (32 * KiB))
    assert limiter.pending["down"] == 128 * KiB


async def test_schedule_switches_rate_exactly_at_the_boundary(autojump_clock):
    start = datetime(2026, 3, 2, 7, 59, 50)
    t0 = trio.current_time()
    limiter = Limiter(Limits(down=64 * KiB, schedule=(pl.parse_window("08:00-09:00=1MiB/s"),)),
                      local_time=lambda: (start + timedelta(
                          seconds=trio.current_time() - t0)).time())
    admitted: list[float] = []
    while trio.current_time() - t0 < 12:
        await limiter.acquire("down", 12 * KiB)
        admitted.append(trio.current_time() - t0)
    before = [t for t in admitted if t < 10]
    after = [t for t in admitted if t >= 10]
    gaps = {round(b - a, 6) for a, b in zip(before[1:], before[2:])}
    assert gaps == {round(12 / 64, 6)}                  # 64 KiB/s until 08:00:00
    # 08:00:00 is 10 s in; the waiting chunk needs 12 KiB - tokens saved at 64 KiB/s, and is
    # admitted at 1 MiB/s from exactly 10.0 s on (at the old rate it would wait until the
    # next multiple of 0.1875 s)
    saved = (10 - before[-1]) * 64 * KiB
    assert after[0] == pytest.approx(10 + (12 * KiB - saved) / MiB, abs=1e-6)
    assert {round(b - a, 6) for a, b in zip(after[1:], after[2:])} == {round(12 / 1024, 6)}


def test_timeouts_stretch_for_slow_links():
    limiter = Limiter(Limits(down=MiB, schedule=(pl.parse_window("08:00-16:00=32KiB/s"),)),
                      clock=lambda: 0.0, local_time=lambda: dtime(20, 0))
    assert limiter.slowest("down") == limiter.slowest("up") == 32 * KiB
    assert limiter.timeout_for(4 * MiB, 15.0) == 256.0
    assert Limiter(Limits(), clock=lambda: 0.0).timeout_for(4 * MiB, 15.0) == 15.0


def test_lan_means_this_computers_subnets_not_every_private_address():
    """County networks use 10.x across slow WAN links (issue 12, point 7)."""
    from ipaddress import ip_network

    from node.p2p.ratelimit import is_lan, local_networks
    school = [ip_network("10.20.30.0/24"), ip_network("fd00:1::/64")]
    assert is_lan(("10.20.30.7", 4004), school)
    assert not is_lan(("10.99.1.2", 4004), school)        # another school across the county
    assert not is_lan(("192.168.1.5", 4004), school)
    assert is_lan(("fd00:1::9", 4004), school) and not is_lan(("fd00:2::9", 4004), school)
    assert is_lan(("127.0.0.1", 4004), []) and is_lan(("::1", 4004), [])
    assert is_lan(("fe80::1%eth0", 4004), []) and is_lan(("169.254.3.4", 4004), [])
    assert is_lan(("::ffff:10.20.30.8", 4004), school)
    assert not is_lan(("8.8.8.8", 4004), school) and not is_lan(None, school)
    assert not is_lan(("not an ip", 1), school)
    # this computer's real interfaces: a neighbour in the subnet of each counts, an address
    # outside every subnet does not
    nets = [n for n in local_networks() if not n.is_loopback and n.version == 4
            and n.prefixlen < 31]
    for n in nets:
        assert is_lan((str(n.network_address + 1), 1))
    assert not is_lan(("203.0.113.77", 1)) or any(n.prefixlen == 0 for n in local_networks())


async def test_counters_flush_after_traffic_and_settings_follow_the_database(tmp_path):
    """The running limiter writes counted bytes after FLUSH_INTERVAL (no periodic wake-up
    when nothing was counted) and reads settings another process saved when the bus says the
    database changed."""
    from node import events, limits as nlimits
    from node.home import init_home, open_home
    home = init_home(tmp_path / "h", "村小", "school")
    bus = events.EventBus()
    limiter = Limiter(nlimits.load(home.conn))
    month = nlimits.month_of(datetime.now())
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: limiter.serve(home.conn, bus=bus,
                                                                  task_status=task_status))
            await limiter.acquire("up", 5000)
            while nlimits.used(home.conn, month) != (5000, 0):
                await trio.sleep(0.1)
            assert limiter.pending["up"] == 0
            cli = open_home(tmp_path / "h")          # `schoolmesh limits set` elsewhere
            from protocol.units import parse_rate
            new = Limits(up=parse_rate("512k"))
            nlimits.save(cli.conn, new)
            bus.publish(events.DatabaseChanged())
            while limiter.limits.up != new.up:
                await trio.sleep(0.01)
            cli.conn.close()
            nursery.cancel_scope.cancel()
    home.conn.close()
