"""The transfer scheduler alone (node/scheduler.py), its collaborators replaced by recording
doubles of its two narrow interfaces (as magic-wormhole tests its machines): the exact calls
it makes, and the states it leaves rows in.  The queue and the database are real."""

from __future__ import annotations

import trio

from crypto import cid_from_str
from node import events
from node.home import init_home
from node.p2p.bitswap_fetch import FetchError
from node.scheduler import TransferService

ROOT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"   # the empty file


class Peers:
    def __init__(self, connected: list[str], found: list[str] = ()) -> None:
        self._connected, self._found, self.calls = connected, list(found), []

    def connected(self) -> list[str]:
        self.calls.append(("connected",))
        return list(self._connected)

    async def find_providers(self, root: bytes) -> list[str]:
        self.calls.append(("find_providers", root))
        return list(self._found)

    def known_addr(self, peer: str) -> str | None:
        self.calls.append(("known_addr", peer))
        return f"/ip4/192.0.2.9/tcp/4004/p2p/{peer}"


class Exchange:
    """Answers each fetch_dag with the next outcome: None (success) or an exception."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes, self.calls, self.budget = list(outcomes), [], None
        self.fetched = trio.Event()

    async def fetch_dag(self, root, providers, *, progress=None, want_timeout=0.0):
        self.calls.append(("fetch_dag", root, list(providers), want_timeout))
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.fetched.set()
        if outcome is not None:
            raise outcome() if isinstance(outcome, type) else outcome
        if progress:
            progress(7)

    def over_budget(self):
        return self.budget


async def run_until(service: TransferService, tid: int, states: set[str]) -> dict:
    with trio.fail_after(10):
        while service.transfers[tid]["state"] not in states:
            await trio.sleep(0.01)
    return service.transfers[tid]


async def test_a_fetch_runs_with_the_connected_peers_then_pins(nursery, tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    peers, exchange = Peers(["peerA"]), Exchange([None])
    service = TransferService(home, events.EventBus(), peers, exchange, lambda: 15.0)
    await nursery.start(service.serve)
    tid = (await service.fetch(ROOT))["id"]
    t = await run_until(service, tid, {"done"})
    assert exchange.calls == [("fetch_dag", cid_from_str(ROOT), ["peerA"], 15.0)]
    assert peers.calls == [("connected",)]   # no DHT lookup: the connected peer had it
    assert t["bytes_done"] == 7 and t["providers_tried"] == ["peerA"]
    assert home.conn.execute("SELECT reason, ref FROM pins WHERE cid = ?",
                             (cid_from_str(ROOT),)).fetchall() == [("user", ROOT)]


async def test_the_dht_is_asked_only_when_no_peer_is_connected_or_they_lack_a_block(
        nursery, tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    found = "/ip4/192.0.2.7/tcp/4004/p2p/peerB"
    # nobody connected: the DHT at once
    peers, exchange = Peers([], [found]), Exchange([None])
    service = TransferService(home, events.EventBus(), peers, exchange, lambda: 15.0)
    await nursery.start(service.serve)
    await run_until(service, (await service.fetch(ROOT))["id"], {"done"})
    assert ("find_providers", cid_from_str(ROOT)) in peers.calls
    assert [c[2] for c in exchange.calls] == [[found]]
    # the connected peer lacks a block: the same attempt asks the DHT and fetches again with
    # both (what was stored is kept by fetch_dag)
    peers._connected, peers.calls = ["peerA"], []
    exchange.outcomes = [FetchError("no provider could supply block x"), None]
    exchange.calls = []
    tid = (await service.fetch(ROOT))["id"]
    t = await run_until(service, tid, {"done"})
    assert [c[2] for c in exchange.calls] == [["peerA"], ["peerA", found]]
    assert t["attempts"] == 0 and t["providers_tried"] == ["peerA", found]


async def test_a_failed_attempt_is_retried_with_the_earlier_provider_redialled(
        nursery, tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    peers = Peers(["peerA"])

    class LinkDies(FetchError):
        def __init__(self) -> None:
            super().__init__("peerA went away")
            peers._connected = []    # the link died with the first attempt
    exchange = Exchange([LinkDies, None])
    service = TransferService(home, events.EventBus(), peers, exchange, lambda: 15.0)
    await nursery.start(service.serve)
    tid = (await service.fetch(ROOT))["id"]
    await run_until(service, tid, {"done"})
    assert [c[2] for c in exchange.calls] == [["peerA"], ["/ip4/192.0.2.9/tcp/4004/p2p/peerA"]]
    assert ("known_addr", "peerA") in peers.calls
    assert service.transfers[tid]["attempts"] == 1


async def test_no_provider_waits_and_a_spent_budget_waits(nursery, tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    exchange = Exchange([])
    service = TransferService(home, events.EventBus(), Peers([]), exchange, lambda: 15.0)
    await nursery.start(service.serve)
    tid = (await service.fetch(ROOT))["id"]
    t = await run_until(service, tid, {"waiting"})
    assert "no school" in t["error"] and exchange.calls == []
    exchange.budget = "this month's transfer budget is spent"
    await service.control(tid, "resume")
    t = await run_until(service, tid, {"waiting"})
    assert t["error"] == exchange.budget and exchange.calls == []


async def test_transfer_wait_answers_when_the_state_changes_not_before(nursery, tmp_path):
    home = init_home(tmp_path / "h", "h", "school")
    service = TransferService(home, events.EventBus(), Peers([]), Exchange([]), lambda: 15.0)
    await nursery.start(service.serve)
    tid = (await service.fetch(ROOT))["id"]
    t = await run_until(service, tid, {"waiting"})
    # unchanged: held for the seconds asked, then the same row
    with trio.move_on_after(5) as scope:
        before = trio.current_time()
        t = await service.wait(tid, "waiting", 0.3)
    assert not scope.cancelled_caught and t["state"] == "waiting"
    assert trio.current_time() - before >= 0.3
    # changed while held: answered by the queue's event, long before the 30 s
    got: list[dict] = []

    async def waiter() -> None:
        got.append(await service.wait(tid, "waiting", 30))
    with trio.fail_after(5):
        async with trio.open_nursery() as inner:
            inner.start_soon(waiter)
            await trio.sleep(0.1)
            assert got == []
            await service.control(tid, "pause")
    assert got[0]["state"] == "paused"
