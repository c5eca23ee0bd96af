"""The persistent transfer queue: unit tests of the table, and two nodes in one trio run."""

from __future__ import annotations

import pytest
import trio

from node import daemon, db, library
from node import transfers as nt
from node.daemon import Node, Options
from node.errors import NodeError
from node.home import init_home
from node.p2p import host as p2p
from tests.test_net import LOOPBACK, publish, titles, wait_for


@pytest.fixture
def queue(tmp_path):
    conn = db.connect(tmp_path / "t.db", create=True)
    clock = {"now": 1_000_000}
    q = nt.TransferQueue(conn, clock=lambda: clock["now"])
    q.now = clock  # the test moves the clock
    yield q
    conn.close()


def test_runnable_by_priority_then_age(queue):
    seed = queue.add("s", b"r1", priority="seeding")
    sub = queue.add("u", b"r2", priority="subscription")
    t1 = queue.add("t1", b"r3", priority="teacher")
    t2 = queue.add("t2", b"r4")  # teacher is the default
    assert [t["id"] for t in queue.runnable(10)] == [t1, t2, sub, seed]
    assert [t["id"] for t in queue.runnable(2)] == [t1, t2]
    assert [t["id"] for t in queue.runnable(2, exclude=[t1])] == [t2, sub]
    with pytest.raises(NodeError):
        queue.add("x", b"r5", priority="urgent")


def test_backoff_schedule():
    assert [nt.backoff(n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert nt.backoff(1000) == 300


def test_retry_waits_for_the_backoff(queue):
    tid = queue.add("t", b"r")
    queue.start(tid)
    assert queue.retry(tid, "peer went away") == 2
    t = queue.get(tid)
    assert (t["state"], t["attempts"], t["last_error"]) == ("queued", 1, "peer went away")
    assert queue.runnable(5) == []
    queue.now["now"] += 1999
    assert queue.runnable(5) == []
    queue.now["now"] += 1
    assert [t["id"] for t in queue.runnable(5)] == [tid]
    queue.start(tid)
    assert queue.retry(tid, "again") == 4
    queue.now["now"] += 3999
    assert queue.runnable(5) == []
    queue.now["now"] += 1
    assert queue.runnable(5)[0]["attempts"] == 2


def test_state_transitions(queue):
    tid = queue.add("t", b"r")
    assert queue.control(tid, "pause")["state"] == "paused"
    assert queue.runnable(5) == []
    assert queue.control(tid, "resume")["state"] == "queued"
    queue.start(tid)
    queue.wait(tid, "no provider")
    assert queue.get(tid)["state"] == "waiting" and queue.runnable(5) == []
    assert queue.wake_waiting() == 1
    assert queue.get(tid)["state"] == "queued"
    queue.start(tid)
    queue.finish(tid, bytes_done=10)
    t = queue.get(tid)
    assert (t["state"], t["bytes_done"], t["last_error"]) == ("done", 10, None)
    for action in ("pause", "resume", "cancel"):
        with pytest.raises(NodeError):
            queue.control(tid, action)
    other = queue.add("o", b"q")
    assert queue.control(other, "cancel")["state"] == "cancelled"
    with pytest.raises(NodeError):
        queue.control(other, "resume")
    with pytest.raises(NodeError):
        queue.control(other, "explode")
    with pytest.raises(NodeError):
        queue.get(999)
    assert queue.active_for(b"r") is None and queue.active_for(b"q") is None


@pytest.mark.parametrize("event", sorted(nt.TRANSITIONS))
def test_every_illegal_move_is_refused_and_changes_nothing(queue, event):
    """The transition table is the whole state machine: an event in a state it does not list
    raises IllegalMove and leaves the row as it was."""
    for state in nt.STATES:
        tid = queue.add(f"{event}-{state}", f"{event}-{state}".encode())
        queue.conn.execute("UPDATE transfers SET state = ? WHERE id = ?", (state, tid))
        before = queue.get(tid)
        if state in nt.TRANSITIONS[event]:
            queue.move(tid, event)
            assert queue.get(tid)["state"] == nt.TRANSITIONS[event][state]
        else:
            with pytest.raises(nt.IllegalMove):
                queue.move(tid, event)
            assert queue.get(tid) == before
    assert set(nt.TRANSITIONS[event]) <= set(nt.STATES)
    assert set(nt.TRANSITIONS[event].values()) <= set(nt.STATES)


def test_states_change_only_through_the_table(queue):
    tid = queue.add("t", b"r")
    with pytest.raises(ValueError):
        queue.update(tid, state="done")
    assert all(state not in nt.TRANSITIONS[e] for e in ("finish", "fail", "retry", "wait",
                                                          "start", "requeue", "wake")
               for state in nt.FINAL)   # nothing leaves a final state but cancel of failed


def test_running_rows_are_requeued_at_start(tmp_path):
    path = tmp_path / "t.db"
    conn = db.connect(path, create=True)
    q = nt.TransferQueue(conn)
    a, b = q.add("a", b"ra"), q.add("b", b"rb")
    q.start(a)
    q.update(a, bytes_done=123, providers=["p1"])
    q.start(b)
    q.finish(b)
    conn.close()  # "kill -9"
    q = nt.TransferQueue(db.connect(path))
    assert q.requeue_running() == 1
    t = q.get(a)
    assert (t["state"], t["bytes_done"], t["providers"]) == ("queued", 123, ["p1"])
    assert q.get(b)["state"] == "done"
    q.conn.close()


# -- two nodes ----------------------------------------------------------------------------------

@pytest.fixture
def start_node(nursery, tmp_path):
    async def start(name: str) -> Node:
        home = init_home(tmp_path / name, name, "school")
        return await nursery.start(Node(home, Options(listen=LOOPBACK,
                                                      request_timeout=2.0)).serve)
    return start


async def test_fetch_is_queued_and_done(start_node, tmp_path):
    a, b = await start_node("a"), await start_node("b")
    res = publish(a, tmp_path, "Fractions")
    daemon.follow(b.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await wait_for(lambda: "Fractions" in titles(b), "catalog")
    tid = (await b.api_fetch(res["resource_id"]))["id"]
    await wait_for(lambda: b.transfers[tid]["state"] == "done", "the fetch ends")
    t = (await b.api_transfers())[0]
    assert t["id"] == tid and t["target"] == res["resource_id"] and t["error"] is None
    assert t["bytes_done"] >= t["bytes_total"] > 0 and t["priority"] == 30
    assert library.first_missing(b.home, res["resource_id"]) is None
    # asking again for a finished root makes a new (immediately done) row
    tid2 = (await b.api_fetch(res["resource_id"]))["id"]
    assert tid2 != tid
    await wait_for(lambda: b.transfers[tid2]["state"] == "done", "the second fetch ends")


async def test_pause_resume_cancel(start_node, tmp_path):
    a, b = await start_node("a"), await start_node("b")
    res = publish(a, tmp_path, "Fractions")
    daemon.follow(b.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await wait_for(lambda: "Fractions" in titles(b), "catalog")
    # pause before the scheduler picks it up (it wakes on the fetch, so pause at once)
    tid = (await b.api_fetch(res["resource_id"]))["id"]
    t = await b.api_transfer_control(id=tid, action="pause")
    assert t["state"] == "paused"
    await trio.sleep(1.0)
    assert b.transfers[tid]["state"] == "paused"
    assert (await b.api_fetch(res["resource_id"]))["id"] == tid  # reused and resumed
    await wait_for(lambda: b.transfers[tid]["state"] == "done", "resumed fetch ends")
    with pytest.raises(NodeError):
        await b.api_transfer_control(id=tid, action="pause")
    with pytest.raises(NodeError):
        await b.api_transfer_control(id=tid, action="jump")
    # cancel a queued transfer
    c = await start_node("c")
    res_c = publish(c, tmp_path, "Orphan")
    daemon.follow(b.home, c.home.school_id)
    await b.api_connect(p2p.listen_addrs(c.host)[0])
    await wait_for(lambda: "Orphan" in titles(b), "catalog of c")
    tid3 = (await b.api_fetch(res_c["resource_id"]))["id"]
    assert (await b.api_transfer_control(id=tid3, action="cancel"))["state"] == "cancelled"
    await trio.sleep(1.0)
    assert b.transfers[tid3]["state"] == "cancelled"
    with pytest.raises(NodeError):
        await b.api_transfer_control(id=tid3, action="resume")


async def test_no_provider_waits_then_completes_when_one_connects(start_node, tmp_path):
    a, b = await start_node("a"), await start_node("b")
    res = publish(a, tmp_path, "Fractions")
    daemon.follow(b.home, a.home.school_id)
    await b.api_connect(p2p.listen_addrs(a.host)[0])
    await wait_for(lambda: "Fractions" in titles(b), "catalog")
    # Nobody can serve it yet (the DHT would otherwise remember A's addresses: stub the
    # provider lookup rather than fight py-libp2p's reconnects).
    real = b.scheduler._providers
    blind = {"on": True}

    async def providers(root, earlier=(), *, search=True):
        return [] if blind["on"] else await real(root, earlier, search=search)
    b.scheduler._providers = providers
    tid = (await b.api_fetch(res["resource_id"]))["id"]
    await wait_for(lambda: b.transfers[tid]["state"] == "waiting", "no provider: waiting")
    t = b.transfers[tid]
    assert "no school" in t["error"] and t["attempts"] == 0
    await trio.sleep(1.0)
    assert b.transfers[tid]["state"] == "waiting"  # not failed, not retried in a loop
    blind["on"] = False
    c = await start_node("c")
    await b.api_connect(p2p.listen_addrs(c.host)[0])  # a new connection re-checks waiting rows
    with trio.fail_after(10):  # well before the 30 s periodic re-check
        while b.transfers[tid]["state"] != "done":
            await trio.sleep(0.05)
    assert library.first_missing(b.home, res["resource_id"]) is None
