"""Communities between in-process nodes on 127.0.0.1: joining by invite, seeding, removal,
hostile peers (specs/communities.md §4, §6, §8)."""

from __future__ import annotations

import trio

from node import catalog, community, db, feeds, library
from node.daemon import Node, Options
from node.errors import NodeError
from node.home import init_home, now_ms
from node.p2p import host as p2p
from protocol import membership as pc
from protocol import feedsync, records

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
DEADLINE = 20


async def wait_for(condition, what: str) -> None:
    with trio.fail_after(DEADLINE):
        while not condition():
            await trio.sleep(0.05)


class Nodes:
    """Nodes with their own cancel scopes, so a test can take one offline."""

    def __init__(self, nursery, tmp_path):
        self.nursery, self.tmp_path, self.scopes = nursery, tmp_path, {}

    async def start(self, name: str, role: str = "school", listen=LOOPBACK) -> Node:
        path = self.tmp_path / name
        home = init_home(path, name, role) if not path.exists() else None
        if home is None:
            from node.home import open_home
            home = open_home(path)

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as scope:
                self.scopes[name] = scope
                await Node(home, Options(listen=listen, request_timeout=3.0)).serve(
                    task_status=task_status)
        return await self.nursery.start(run)

    def stop(self, name: str) -> None:
        self.scopes.pop(name).cancel()


def publish(node: Node, tmp_path, title: str, **meta) -> dict:
    d = tmp_path / f"src-{node.home.name}-{title}"
    d.mkdir()
    (d / "lesson.txt").write_text(f"{title}\n" * 2000, "utf-8")
    return library.publish(node.home, [d], {"title": title, **meta})


def titles(node: Node) -> set[str]:
    return {r["title"] for r in catalog.search(node.home.conn, None, limit=100)}


def pins_of(node: Node, reason: str) -> set[str]:
    return {p["resource_id"] for p in community.pins(node.home)["pins"]
            if p["reason"] == reason}


def seeds_of(node: Node) -> list[str]:
    return p2p.listen_addrs(node.host)


async def community_of(nodes: Nodes, tmp_path):
    d = await nodes.start("demo", "demonstration")
    cid = community.create(d.home, "青山片区")["community_id"]
    return d, cid


async def join(node: Node, demo: Node, **kw) -> dict:
    code = community.invite(demo.home, None, seeds=seeds_of(demo), **kw)["code"]
    return await node.api_community_join(code)


async def test_story_join_seed_and_get_while_the_publisher_is_offline(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a, b = await nodes.start("a"), await nodes.start("b")
    got = await join(a, d)
    assert got["community_id"] == cid and got["role"] == "member"
    await join(b, d)
    r = publish(a, tmp_path, "Fractions", about=["数学"], educationalLevel=["lower-primary"])
    # the demonstration school replicates A's feed and pins A's content
    await wait_for(lambda: r["resource_id"] in pins_of(d, "community"), "D seeds A's resource")
    assert {p["ref"] for p in community.pins(d.home)["pins"] if p["reason"] == "community"} \
        == {cid}
    await wait_for(lambda: "Fractions" in titles(b), "B has A's catalog")
    members = {m["school_id"]: m for m in community.members(b.home)["members"]}
    assert {m["status"] for m in members.values()} == {"active"}
    assert members[d.home.school_id]["role"] == "demonstration"
    assert set(members) == {d.home.school_id, a.home.school_id, b.home.school_id}
    nodes.stop("a")
    await wait_for(lambda: a.home.school_id not in
                   {p.to_string() for p in b.host.get_network().connections}, "A offline")
    tid = (await b.api_fetch(r["resource_id"]))["id"]
    await wait_for(lambda: b.transfers[tid]["state"] == "done", "B fetched it from D")
    out = tmp_path / "out"
    library.get(b.home, r["resource_id"], out)
    assert (out / "lesson.txt").read_text("utf-8") == "Fractions\n" * 2000
    assert library.verify(b.home)["problems"] == []


async def test_invite_is_one_time_and_bound_to_the_school(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a, c = await nodes.start("a"), await nodes.start("c")
    code = community.invite(d.home, None, seeds=seeds_of(d))["code"]
    await a.api_community_join(code)
    try:
        await c.api_community_join(code)   # replayed by another school
        raise AssertionError("a used invite was accepted")
    except NodeError as exc:
        assert "used" in str(exc)
    assert not community.membership(d.home, cid).members.get(c.home.school_id)
    # a certificate was written exactly once, for A
    certs = [e for e in feeds.entries(d.home.conn, d.home.feed)
             if e.kind == records.KIND_CERTIFICATE]
    assert [e.body["school"] for e in certs] == [a.home.school_id]


async def test_expired_and_unknown_invites_are_refused(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    c = await nodes.start("c")
    code = community.invite(d.home, None, seeds=seeds_of(d))["code"]
    with db.write(d.home.conn) as conn:   # the issuer's own record decides, not the code
        conn.execute("UPDATE invites SET expires = ?", (now_ms() - 1,))
    for bad, why in ((code, "expired"),):
        try:
            await c.api_community_join(bad)
            raise AssertionError("accepted")
        except NodeError as exc:
            assert why in str(exc)
    inv = pc.decode_invite(code)
    forged = pc.encode_invite(pc.Invite(community=cid, issuer=inv.issuer, seeds=inv.seeds,
                                        secret=bytes(16), role="demonstration",
                                        expires=now_ms() + 10**6))
    try:
        await c.api_community_join(forged)
        raise AssertionError("accepted")
    except NodeError as exc:
        assert "unknown-invite" in str(exc)
    assert community.rows(c.home.conn) == []
    try:
        await c.api_community_join("sm1-not-a-code")
        raise AssertionError("accepted")
    except NodeError as exc:
        assert "not a valid invite code" in str(exc)


async def test_non_member_heads_on_the_community_topic_are_dropped(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    m = await nodes.start("m")
    await join(m, d)
    topic = community.topic(cid)
    await wait_for(lambda: topic in m.gossip.topics, "M subscribed to the community topic")
    # an outsider connects and publishes heads (carrying its entries) on the topic
    x = await nodes.start("x")
    await x.api_connect(seeds_of(m)[0])
    await x.gossip.subscribe(topic, lambda h: None)
    publish(x, tmp_path, "Spam")
    seq, hash_ = feeds.head(x.home.conn, x.home.feed)
    raw = x.home.conn.execute("SELECT raw FROM entries WHERE feed = ? AND seq = ?",
                              (x.home.feed, seq)).fetchone()[0]
    head = feedsync.sign_head(x.home.key(), seq=seq, hash=hash_, time=now_ms(), entry=raw)
    before = m.gossip.rejected
    with trio.fail_after(DEADLINE):
        while m.gossip.rejected == before:
            await x.gossip.publish(head, topic)
            await trio.sleep(0.2)
    assert m.communities.rule(topic)(head) == "not an active member of the community"
    assert feeds.head(m.home.conn, x.home.feed) == (0, None)
    assert "Spam" not in titles(m)


async def test_removed_member_is_cut_off_and_cannot_rejoin_with_an_old_code(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a, b = await nodes.start("a"), await nodes.start("b")
    old_code = community.invite(d.home, None, seeds=seeds_of(d))["code"]
    await join(a, d)
    await join(b, d)
    before = publish(a, tmp_path, "Before")
    await wait_for(lambda: before["resource_id"] in pins_of(d, "community"), "D seeds it")
    await wait_for(lambda: "Before" in titles(b), "B has it")
    community.remove(d.home, a.home.school_id, reason="left the district")
    await wait_for(lambda: community.membership(b.home, cid).members[a.home.school_id].status
                   == "revoked", "B learns of the revocation")
    await wait_for(lambda: not community.membership(a.home, cid).is_active(a.home.school_id),
                   "A learns of it too")
    revoked_at = community.membership(a.home, cid).members[a.home.school_id].revoked_at
    await wait_for(lambda: now_ms() > revoked_at, "the clock is past the revocation")
    after = publish(a, tmp_path, "After")
    # give gossip and sync every chance: B asks D and A for A's head again
    await b.sync_now()
    await d.sync_now()
    assert "After" not in titles(b) and "After" not in titles(d)
    assert before["resource_id"] in pins_of(d, "community")   # earlier work stays seeded
    assert after["resource_id"] not in pins_of(d, "community")
    # the old, unused code cannot bring A back
    try:
        await a.api_community_join(old_code)
        raise AssertionError("accepted")
    except NodeError as exc:
        assert "revoked" in str(exc)
    # a new invite is a deliberate readmission
    await join(a, d)
    await wait_for(lambda: community.membership(b.home, cid).is_active(a.home.school_id),
                   "B sees A readmitted")


async def test_forged_certificate_does_not_admit(nursery, tmp_path, caplog):
    """A plain member signs a certificate for an outsider: it does not count anywhere."""
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    m, x = await nodes.start("m"), await nodes.start("x")
    await join(m, d)
    library.append_entry(m.home, records.KIND_CERTIFICATE, {
        "community": cid, "school": x.home.school_id, "role": "demonstration",
        "issued": now_ms()})
    await d.api_connect(seeds_of(m)[0])
    await wait_for(lambda: feeds.head(d.home.conn, m.home.feed)[0] >= 2, "D has M's entry")
    ms = community.membership(d.home, cid)
    assert x.home.school_id not in ms.members
    assert any(r.reason.startswith("author is not an active demonstration")
               for r in ms.rejected)
    assert x.home.feed not in d.refresh_policy().wanted
    lines = [r.getMessage() for r in caplog.records if "rejected: author is not" in
             r.getMessage() and r.name == "schoolmesh.node"]
    # one line on each node holding the entry (M wrote it, D replicated it), not repeated
    assert len(lines) == 2 and all(m.home.school_id in x for x in lines)


async def test_expired_certificate_stops_seeding(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a = await nodes.start("a")
    await join(a, d)
    # D renews A with a certificate that already ended: A is expired from then on
    t = now_ms()
    library.append_entry(d.home, records.KIND_CERTIFICATE, {
        "community": cid, "school": a.home.school_id, "role": "member", "issued": t,
        "expires": t + 1})
    await wait_for(lambda: now_ms() > t + 1, "the certificate has ended")
    assert community.membership(d.home, cid).members[a.home.school_id].status == "expired"
    r = publish(a, tmp_path, "Late")
    await a.api_connect(seeds_of(d)[0])
    await d.sync_now()
    assert "Late" not in titles(d)
    assert r["resource_id"] not in pins_of(d, "community")


def _decisions(demo_keys, cid, target, t):
    """D1 revokes the target and D2 readmits it at the same millisecond."""
    d1, d2 = demo_keys
    rv = records.sign_entry(d1, seq=9, prev=bytes(32), time=t, kind=records.KIND_REVOCATION,
                            body={"community": cid, "school": target, "time": t})
    re_ = records.sign_entry(d2, seq=9, prev=bytes(32), time=t, kind=records.KIND_CERTIFICATE,
                             body={"community": cid, "school": target, "role": "member",
                                   "issued": t})
    return rv, re_


async def test_racing_revoke_and_readmit_resolve_the_same_everywhere(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    d2, v = await nodes.start("d2"), await nodes.start("v")
    await join(d2, d, role="demonstration")
    await join(v, d)
    t = now_ms()
    # both demonstration schools decide about V at the same time, each on its own node
    library.append_entry(d.home, records.KIND_REVOCATION,
                         {"community": cid, "school": v.home.school_id, "time": t})
    library.append_entry(d2.home, records.KIND_CERTIFICATE,
                         {"community": cid, "school": v.home.school_id, "role": "member",
                          "issued": t})
    await d.api_connect(seeds_of(d2)[0])
    await v.api_connect(seeds_of(d2)[0])

    def decided(n):
        return {e.hash for e in community.decision_entries(n.home.conn)
                if e.kind in (records.KIND_REVOCATION, records.KIND_CERTIFICATE)
                and e.body.get("school") == v.home.school_id and e.time >= t}
    await wait_for(lambda: len(decided(d)) == 2 and len(decided(d2)) == 2 and
                   len(decided(v)) == 2, "every node has both decisions")
    status = {n.home.name: community.membership(n.home, cid).members[v.home.school_id]
              for n in (d, d2, v)}
    assert len({(s.status, s.decision) for s in status.values()}) == 1
    # the larger entry hash wins a tie
    assert status["demo"].decision == max(decided(d))


async def test_link_replicates_the_other_communitys_catalog(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d1, c1 = await community_of(nodes, tmp_path)
    d2 = await nodes.start("d2", "demonstration")
    c2 = community.create(d2.home, "石岭片区")["community_id"]
    v2 = await nodes.start("v2")
    await join(v2, d2)
    publish(v2, tmp_path, "Water cycle")
    code2 = community.invite(d2.home, None, seeds=seeds_of(d2))["code"]
    got = await d1.api_community_link(code2)
    assert got == {"community_id": c1, "linked": c2, "name": "石岭片区"}
    await wait_for(lambda: "Water cycle" in titles(d1), "D1 has the other community's catalog")
    assert c2 in community.membership(d1.home, c1).links
    # catalogs only: D1 does not seed the other community's content
    assert pins_of(d1, "community") == set()
    assert [r["relation"] for r in community.list_communities(d1.home)] == ["member", "linked"]
    # the code was not redeemed
    assert d2.home.conn.execute("SELECT used_by FROM invites WHERE invite_id = ?",
                                (pc.decode_invite(code2).invite_id,)).fetchone() == (None,)


async def test_only_issuers_invite_remove_and_link(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    m = await nodes.start("m")
    await join(m, d)
    for call in (lambda: community.invite(m.home, cid, seeds=seeds_of(m)),
                 lambda: community.remove(m.home, d.home.school_id, cid)):
        try:
            call()
            raise AssertionError("a plain member was allowed")
        except NodeError as exc:
            assert "demonstration school" in str(exc)
    try:
        community.remove(d.home, d.home.school_id)
        raise AssertionError("removed the founder")
    except NodeError as exc:
        assert "founder" in str(exc)


async def test_subscription_fetches_matching_resources(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a, b = await nodes.start("a"), await nodes.start("b")
    await join(a, d)
    await join(b, d)
    sub = community.subscribe(b.home, "数学", "lower-primary")
    hit = publish(a, tmp_path, "Fractions", about=["数学"], educationalLevel=["lower-primary"])
    miss = publish(a, tmp_path, "Poems", about=["语文"], educationalLevel=["lower-primary"])
    await wait_for(lambda: hit["resource_id"] in pins_of(b, "subscription"),
                   "B fetched the matching resource")
    assert miss["resource_id"] not in pins_of(b, "subscription")
    assert library.first_missing(b.home, hit["resource_id"]) is None
    refs = {p["ref"] for p in community.pins(b.home)["pins"] if p["reason"] == "subscription"}
    assert refs == {f"subscription {sub['id']}"}


async def test_seed_quota_keeps_the_newest(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a = await nodes.start("a")
    await join(a, d)
    size = len("Old\n" * 2000)
    community.set_seed_quota(d.home, size + size // 2)   # room for one of the two
    old = publish(a, tmp_path, "Old")
    new = publish(a, tmp_path, "New")
    await wait_for(lambda: new["resource_id"] in pins_of(d, "community"), "D seeds the newest")
    kept, over, _ = community.seeding_plan(d.home)
    assert [s.resource_id for s in kept] == [new["resource_id"]]
    assert [s.resource_id for s in over] == [old["resource_id"]]
    assert old["resource_id"] not in pins_of(d, "community")


async def test_member_without_inbound_connections_is_reachable_through_its_seed(nursery,
                                                                                 tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    b = await nodes.start("b", listen=[])          # accepts no inbound connection at all
    c = await nodes.start("c")
    assert p2p.listen_addrs(b.host) == []
    await join(b, d)
    await join(c, d)
    status = await b.api_status()
    await wait_for(lambda: b.relay.circuit_addrs(), "B reserved a slot on its seed")
    (via,) = b.relay.circuit_addrs()
    assert via.endswith(f"/p2p/{d.home.school_id}/p2p-circuit/p2p/{b.home.school_id}")
    assert (await d.api_status())["relay"]["serving"] is True
    assert status["relay"]["serving"] is False
    # C dials B through the seed and asks B itself for B's feed
    got = await c.api_connect(via)
    assert got["peer_id"] == b.home.school_id
    from libp2p.peer.id import ID
    heads = await c.sync.heads(ID.from_base58(b.home.school_id), [b.home.feed])
    assert [h.seq for h in heads] == [feeds.head(b.home.conn, b.home.feed)[0]]
    # the seed relays for its members only
    from node.p2p.relay import RelayError
    x = await nodes.start("x")
    await x.api_connect(seeds_of(d)[0])
    try:
        await x.relay.reserve(d.home.school_id)
        raise AssertionError("an outsider got a relay reservation")
    except RelayError as exc:
        assert exc.status == "PERMISSION_DENIED"
    assert not x.relay.circuit_addrs()


async def test_a_seed_that_is_down_is_redialled_with_backoff(tmp_path, monkeypatch,
                                                             autojump_clock):
    """py-libp2p fails a dial to a recently failed peer at once; the redial loop must still
    pause (it used to spin a core and ignore SIGTERM while the demonstration school was
    down). Virtual time: 120 s of a dead seed."""
    from node import dialler as nd
    from node.events import EventBus
    home = init_home(tmp_path / "v", "v", "school")
    attempts = []

    async def refuse(host, addr):
        attempts.append(trio.current_time())
        raise OSError("recently failed all addresses (negative cache)")

    class Host:
        def get_network(self):
            return type("N", (), {"connections": {}})()
    dialler = nd.Dialler(Host(), EventBus(), "me")
    monkeypatch.setattr(nd.p2p, "connect", refuse)
    with trio.move_on_after(120):
        await dialler.keep_dialling("/ip4/127.0.0.1/tcp/9/p2p/" + home.school_id)
    start = attempts[0]
    assert [t - start for t in attempts] == [0, 1, 3, 7, 15, 30, 45, 60, 75, 90, 105]


def entry_raw(node: Node, seq: int) -> bytes:
    return node.home.conn.execute("SELECT raw FROM entries WHERE feed = ? AND seq = ?",
                                  (node.home.feed, seq)).fetchone()[0]


async def smuggle(h: Node, victims: list[Node], topic: str, raw: bytes, times: int = 1) -> None:
    """H, an active member, signs a head of its *own* feed at its next seq whose hash is
    another school's entry, carrying that entry (specs/feedsync.md §4, §5); wait until every
    victim has dropped it ``times`` times."""
    seq, _ = feeds.head(h.home.conn, h.home.feed)
    head = feedsync.sign_head(h.home.key(), seq=seq + 1, hash=records.decode_entry(raw).hash,
                              time=now_ms(), entry=raw)
    before = [v.gossip.rejected for v in victims]
    h.gossip.pubsub.remove_topic_validator(topic)  # a hostile node does not check its own
    with trio.fail_after(DEADLINE):
        while any(v.gossip.rejected < n + times for v, n in zip(victims, before, strict=True)):
            await h.gossip.publish(head, topic)
            await trio.sleep(0.2)


async def test_a_member_cannot_smuggle_other_feeds_entries_in_its_heads(nursery, tmp_path,
                                                                        caplog):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    h, a, b = await nodes.start("h"), await nodes.start("a"), await nodes.start("b")
    for n in (h, a, b):
        await join(n, d)
    topic = community.topic(cid)
    for n in (h, b, d):
        await wait_for(lambda n=n: topic in n.gossip.topics, "subscribed to the community")
    await h.api_connect(seeds_of(b)[0])
    before = publish(a, tmp_path, "Before")
    await wait_for(lambda: "Before" in titles(b) and "Before" in titles(d), "A replicated")
    # the victims hold H's feed up to its head, so a carried entry would be "the next one"
    for v in (b, d):
        await wait_for(lambda v=v: feeds.head(v.home.conn, h.home.feed)
                       == feeds.head(h.home.conn, h.home.feed), "H's feed replicated")
    # 1. an outsider's entries (a feed nobody here follows), smuggled one after the other
    x = await nodes.start("x")
    publish(x, tmp_path, "Spam")
    for seq in (1, 2):
        await smuggle(h, [b, d], topic, entry_raw(x, seq))
    # 2. A is removed; its entry dated after the removal, carried by active member H
    community.remove(d.home, a.home.school_id, reason="left the district")
    for v in (a, b):
        await wait_for(lambda v=v: community.membership(v.home, cid).members[
            a.home.school_id].status == "revoked", "the revocation is known")
    revoked_at = community.membership(a.home, cid).members[a.home.school_id].revoked_at
    await wait_for(lambda: now_ms() > revoked_at, "the clock is past the revocation")
    publish(a, tmp_path, "After")
    a_seq, _ = feeds.head(a.home.conn, a.home.feed)
    await smuggle(h, [b, d], topic, entry_raw(a, a_seq), times=40)
    # the log stays bounded: one line per receiving node (A, B, D) for this peer and kind,
    # not one per head (42 or more heads were rejected by B and D each in this test)
    flood = [r for r in caplog.records if r.getMessage().startswith(
        f"gossip: rejected head from {h.home.school_id}")]
    assert 1 <= len(flood) <= 3, [r.getMessage() for r in flood]
    # stored nowhere; nothing of A, X or H changed on the victims
    for v in (b, d):
        assert feeds.head(v.home.conn, x.home.feed) == (0, None)
        # A's entry dated after its removal is not stored (A's earlier entries, such as a
        # holdings summary signed just before, may or may not have arrived yet)
        assert feeds.head(v.home.conn, a.home.feed)[0] < a_seq
        assert feeds.head(v.home.conn, h.home.feed) == feeds.head(h.home.conn, h.home.feed)
        assert "Spam" not in titles(v) and "After" not in titles(v)
        assert before["resource_id"] in {r["resource_id"] for r in
                                         catalog.search(v.home.conn, None, limit=100)}
    # 3. the same entry on a USB bundle made by A: the bundle's other content is welcome, the
    #    entry dated after A's removal is not (the same rule, feeds.admit)
    from node.bundle import plan_export, write_export
    from node.bundle_import import plan_import, run_import
    car = tmp_path / "a.car"
    write_export(a.home, plan_export(a.home), car)
    plan = plan_import(b.home, [car])
    try:
        report = run_import(plan)
    finally:
        plan.close()
    assert any("removal" in p for p in report["invalid"]), report["invalid"]
    assert feeds.head(b.home.conn, a.home.feed)[0] < a_seq
    assert "After" not in titles(b)


async def test_an_old_versions_own_pin_goes_once_the_seed_holds_the_new_one(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    d, cid = await community_of(nodes, tmp_path)
    a = await nodes.start("a")
    await join(a, d)
    r = publish(a, tmp_path, "Fractions")
    await wait_for(lambda: r["resource_id"] in pins_of(d, "community"), "D seeds v1")
    src = tmp_path / "v2"
    src.mkdir()
    (src / "lesson.txt").write_text("Fractions, version 2\n" * 2000, "utf-8")
    v2 = library.update(a.home, r["resource_id"], [src], {})
    own = lambda: {p["cid"] for p in community.pins(a.home)["pins"]  # noqa: E731
                   if p["reason"] == "own"}
    assert own() == {r["content_cid"], v2["content_cid"]}   # kept until the seed has v2
    await wait_for(lambda: own() == {v2["content_cid"]}, "A drops v1's own pin")
    community_pins = {p["cid"] for p in community.pins(d.home)["pins"]
                      if p["reason"] == "community"}
    assert community_pins == {v2["content_cid"]}            # and D replaced v1 by v2


async def test_policy_follows_changes_from_another_connection(nursery, tmp_path):
    """A follow written by a CLI command (its own SQLite connection) and one written by the
    node's own connection both reach the policy at the next look, though the policy key's
    queries only run when the database changed at all."""
    from node.daemon import follow, unfollow
    from node.home import open_home
    nodes = Nodes(nursery, tmp_path)
    a, b = await nodes.start("a"), await nodes.start("b")
    assert b.home.feed not in a.current_policy().wanted
    cli = open_home(tmp_path / "a")            # the CLI's connection, not the node's
    follow(cli, b.home.school_id)
    assert b.home.feed in a.current_policy().wanted
    unfollow(a.home, b.home.school_id)         # the node's own connection
    assert b.home.feed not in a.current_policy().wanted
    policy = a.current_policy()
    assert a.current_policy() is policy        # nothing changed: the same object
    cli.conn.close()
