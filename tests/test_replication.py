"""The replication service alone (node/replication.py), its network collaborators replaced
by recording doubles: which heads it accepts, and the exact requests a sync round makes."""

from __future__ import annotations

from crypto import SchoolKey
from node import community, db, events, feeds
from node.home import init_home
from node.replication import Replication
from protocol import feedsync, records


class Peer:
    def __init__(self, name: str) -> None:
        self.name = name

    def to_string(self) -> str:
        return self.name


class Host:
    def __init__(self, peers: list[str]) -> None:
        self.peers = [Peer(p) for p in peers]

    def get_network(self):
        return type("Network", (), {"connections": {p: [] for p in self.peers}})()


class FeedSyncDouble:
    """Answers heads? with the given heads and records every request."""

    def __init__(self, heads: dict[str, list[feedsync.Head]], added: int = 1) -> None:
        self._heads, self._added, self.calls = heads, added, []

    async def heads(self, peer, wanted):
        self.calls.append(("heads", peer.to_string(), list(wanted)))
        return self._heads.get(peer.to_string(), [])

    async def pull(self, peer, feed, gate):
        self.calls.append(("pull", peer.to_string(), feed, dict(gate.wanted)))
        return self._added


def policy_of(wanted: dict[bytes, int | None]) -> community.Policy:
    return community.Policy(wanted=wanted, topics={}, issuer_of=frozenset())


async def test_a_round_asks_each_peer_and_pulls_only_feeds_ahead(tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    a, b = SchoolKey.generate(), SchoolKey.generate()
    e1 = records.sign_entry(a, seq=1, prev=None, time=1, kind="profile",
                            body={"name": "a", "role": "school"})
    with db.write(home.conn) as c:
        feeds.append(c, e1)
    wanted = {a.public.raw: None, b.public.raw: 5}
    sync = FeedSyncDouble({
        "p1": [feedsync.Head(feed=a.public.raw, seq=1, hash=e1.hash),        # not ahead
               feedsync.Head(feed=b.public.raw, seq=3, hash=bytes(32))],     # ahead
        "p2": []})
    rep = Replication(home, Host(["p1", "p2"]), sync, gossip=None, bus=events.EventBus(),
                      policy=lambda: policy_of(wanted))
    added = await rep.sync_now()
    assert sync.calls == [
        ("heads", "p1", [a.public.raw, b.public.raw]),
        ("pull", "p1", b.public.raw, wanted),        # the gate carries b's cutoff
        ("heads", "p2", [a.public.raw, b.public.raw]),
    ]
    assert added == {b.school_id: 1}


async def test_heads_accepted_only_for_feeds_we_replicate_and_ahead(tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    a, stranger = SchoolKey.generate(), SchoolKey.generate()
    rep = Replication(home, Host([]), FeedSyncDouble({}), gossip=None, bus=events.EventBus(),
                      policy=lambda: policy_of({a.public.raw: None}))
    head = feedsync.sign_head(a, seq=1, hash=bytes(32), time=1)
    assert rep.accept_head(head) is None
    assert rep.accept_head(feedsync.sign_head(stranger, seq=1, hash=bytes(32), time=1)) \
        == "unknown feed"
    e1 = records.sign_entry(a, seq=1, prev=None, time=1, kind="profile",
                            body={"name": "a", "role": "school"})
    with db.write(home.conn) as c:
        feeds.append(c, e1)
    assert rep.accept_head(head) == "stale"
