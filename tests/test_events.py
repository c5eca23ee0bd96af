"""The event bus and the database watcher (node/events.py): events reach the subscriptions
that want them; a slow subscriber is told it missed some; a write by another connection (as a
CLI command makes) is noticed."""

from __future__ import annotations

import trio

from node import db, events
from node.home import DB_FILE, init_home


async def test_subscriptions_get_the_types_they_want_and_overflow_is_said():
    bus = events.EventBus()
    peers = bus.subscribe(events.PeerConnected)
    everything = bus.subscribe()
    bus.publish(events.PeerConnected("a"))
    bus.publish(events.DatabaseChanged())
    assert await peers.wait(0) == [events.PeerConnected("a")]
    assert await everything.wait(0) == [events.PeerConnected("a"), events.DatabaseChanged()]
    for i in range(events.QUEUE_LIMIT + 10):
        bus.publish(events.PeerConnected(str(i)))
    got = await peers.wait(0)
    assert isinstance(got[0], events.Overflow) and peers.dropped == 11
    assert len(got) == events.QUEUE_LIMIT and got[-1] == events.PeerConnected(
        str(events.QUEUE_LIMIT + 9))
    peers.close()
    bus.publish(events.PeerConnected("late"))
    assert await peers.wait(0) == []
    peers.kick()
    assert await peers.wait(0) == [events.Recheck()]


async def test_a_write_by_another_connection_is_noticed(nursery, tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    bus = events.EventBus()
    sub = bus.subscribe(events.DatabaseChanged)
    watcher = events.DatabaseWatcher(home.path / DB_FILE, bus, interval=0.05)
    await nursery.start(watcher.serve)
    assert await sub.wait(0.3) == []            # nothing written: nothing said
    other = db.connect(home.path / DB_FILE)     # as `schoolmesh follow` would, from a CLI
    with db.write(other) as c:
        db.set_setting(c, "probe", "1")
    with trio.fail_after(10):
        assert await sub.wait() == [events.DatabaseChanged()]
    other.close()
