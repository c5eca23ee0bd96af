"""The community commands without a network: founding, inviting, members, removal, quota,
subscriptions and pins, and the clear errors for bad input (nothing stored is changed)."""

from __future__ import annotations

import pytest

from protocol import membership as pc

SEED = "/ip4/127.0.0.1/tcp/4004/p2p/12D3KooWRNmQJ4BsJvdejSSWzxU1vBmyXj2KeBdnXTgmhSSL9xVh"


@pytest.fixture
def founded(cli, home):
    d = cli.json("community", "create", "青山片区", "--description", "结对帮扶")
    cli.community_id = d["community_id"]
    return cli


def test_create_invite_and_members(founded):
    cli = founded
    cid = cli.community_id
    assert pc.is_community_id(cid)
    inv = cli.json("community", "invite", "--seed", SEED, "--role", "demonstration",
                   "--expires", "12h")
    code = pc.decode_invite(inv["code"])
    assert (code.community, code.issuer, code.role, code.seeds) == (
        cid, cli.identity["school_id"], "demonstration", (SEED,))
    created = cli.state()["db"]["invites"][0][5]
    assert inv["expires"] == code.expires == created + 12 * 3600_000
    # the database holds the verifier, never the secret
    rows = cli.state()["db"]["invites"]
    assert len(rows) == 1 and not any(isinstance(v, bytes) and code.secret in v
                                      for v in rows[0])
    assert rows[0][2] == pc.invite_verifier(code.secret)
    m = cli.json("community", "members")
    assert [(x["school_id"], x["role"], x["status"], x["you"]) for x in m["members"]] == [
        (cli.identity["school_id"], "demonstration", "active", True)]
    assert cli.json("community", "list")[0]["name"] == "青山片区"
    out = cli.ok("community", "members").stdout
    assert "demonstration" in out and "(this school)" in out


def test_bad_input_is_refused_and_changes_nothing(founded):
    cli = founded
    before = cli.state()
    assert "start the node" in cli.fail("community", "invite")          # no seed known
    assert "duration" in cli.run("community", "invite", "--seed", SEED,
                                 "--expires", "soon").stderr
    assert "365 days" in cli.fail("community", "invite", "--seed", SEED, "--expires", "400d")
    assert "seed" in cli.fail("community", "invite", "--seed", "not an address")
    assert "not a member" in cli.fail("community", "remove",
                                      "12D3KooWRNmQJ4BsJvdejSSWzxU1vBmyXj2KeBdnXTgmhSSL9xVh")
    assert "founder" in cli.fail("community", "remove", cli.identity["school_id"])
    assert "not a community id" in cli.fail("community", "members", "--community", "x")
    assert "not in community" in cli.fail("community", "members", "--community",
                                          "c" + "a" * 26)
    assert "not running" in cli.fail("community", "join", "sm1-abc")
    assert "not running" in cli.fail("community", "link", "sm1-abc")
    assert "--subject, --level" in cli.fail("subscribe")
    assert "level" in cli.fail("subscribe", "--level", "grade-99")
    assert "no subscription" in cli.fail("unsubscribe", "7")
    assert cli.state() == before


def test_no_community_yet(cli, home):
    assert "no community" in cli.fail("community", "members")
    assert "not a demonstration school" in cli.fail("community", "invite", "--seed", SEED)
    assert cli.json("community", "list") == []


def test_quota_subscriptions_and_pins(founded, tmp_path):
    cli = founded
    assert cli.json("community", "quota")["seed_quota"] == 50 * 2**30
    assert cli.json("community", "quota", "200GiB")["seed_quota"] == 200 * 2**30
    assert "200" in cli.ok("community", "quota").stdout
    sub = cli.json("subscribe", "--subject", "数学", "--level", "lower-primary")
    assert cli.json("subscriptions") == [{"id": sub["id"], "subject": "数学",
                                         "level": "lower-primary",
                                         "created": cli.json("subscriptions")[0]["created"]}]
    cli.json("unsubscribe", str(sub["id"]))
    assert cli.json("subscriptions") == []
    src = tmp_path / "lesson.txt"
    src.write_text("分数\n", "utf-8")
    r = cli.json("publish", str(src), "--title", "分数")
    pins = cli.json("pins")
    assert [(p["reason"], p["resource_id"], p["size"]) for p in pins["pins"]] == [
        ("own", r["resource_id"], len("分数\n".encode()))]
    assert pins["totals"] == {"own": {"pins": 1, "bytes": len("分数\n".encode())}}
    assert "own" in cli.ok("pins").stdout


def test_remove_writes_a_revocation(founded, cli_at, tmp_path):
    """A directly admitted school (certificate signed by hand, as a second demonstration
    school would) is removed with a signed revocation."""
    from node import library
    from node.home import now_ms, open_home
    from protocol import records
    other = cli_at(tmp_path / "other")
    sid = other.json("init", "--name", "石岭村小学")["school_id"]
    h = open_home(founded.home)
    try:
        library.append_entry(h, records.KIND_CERTIFICATE, {
            "community": founded.community_id, "school": sid, "role": "member",
            "issued": now_ms()})
    finally:
        h.close()
    assert "active" in founded.ok("community", "members").stdout
    d = founded.json("community", "remove", sid, "--reason", "合并到其他片区")
    assert d == {"removed": sid, "community_id": founded.community_id}
    m = {x["school_id"]: x for x in founded.json("community", "members")["members"]}
    assert m[sid]["status"] == "revoked" and m[sid]["revoked_at"]
    assert "already removed" in founded.fail("community", "remove", sid)


def test_export_community_bundle_carries_the_members(founded, cli_at, tmp_path):
    """A USB bundle of a community: the founder's feed (charter, certificates) and the
    members' feeds and resources; a fresh school imports it and sees the members."""
    from node import library
    from node.home import now_ms, open_home
    from protocol import records
    other = cli_at(tmp_path / "other")
    sid = other.json("init", "--name", "石岭村小学")["school_id"]
    src = tmp_path / "l.txt"
    src.write_text("水循环\n", "utf-8")
    r = other.json("publish", str(src), "--title", "水循环")
    # the founder admits the other school and holds its feed (as replication would leave it)
    other.ok("export", "-o", tmp_path / "other.car")
    founded.ok("import", tmp_path / "other.car")
    h = open_home(founded.home)
    try:
        library.append_entry(h, records.KIND_CERTIFICATE, {
            "community": founded.community_id, "school": sid, "role": "member",
            "issued": now_ms()})
    finally:
        h.close()
    d = founded.json("export", "-o", tmp_path / "c.car", "--community", founded.community_id)
    assert {f["school_id"] for f in d["feeds"]} == {founded.identity["school_id"], sid}
    fresh = cli_at(tmp_path / "fresh")
    fresh.json("init", "--name", "田坝村小学")
    fresh.ok("import", tmp_path / "c.car")
    assert [x["title"] for x in fresh.json("search", "水循环")] == ["水循环"]
    assert r["resource_id"] in fresh.ok("show", r["resource_id"]).stdout


def test_backdated_certificate_of_a_removed_issuer_is_not_seeded(founded, tmp_path,
                                                                 monkeypatch):
    """specs/communities.md §8: a demonstration school removed at time t signs, later, a
    certificate dated before t. It resolves as valid, but a node that received the removal
    first does not seed the school so admitted."""
    from crypto import SchoolKey
    from node import community, db, feeds, library
    from node.home import now_ms, open_home
    from protocol import records
    h = open_home(founded.home)
    try:
        cid = founded.community_id
        d2, x = SchoolKey.generate(), SchoolKey.generate()
        t0 = now_ms()
        library.append_entry(h, records.KIND_CERTIFICATE, {
            "community": cid, "school": d2.school_id, "role": "demonstration", "issued": t0})
        library.append_entry(h, records.KIND_REVOCATION, {
            "community": cid, "school": d2.school_id, "time": t0 + 10})
        received_removal = h.conn.execute("SELECT max(received) FROM entries").fetchone()[0]
        while now_ms() <= received_removal:
            pass  # the backdated certificate must arrive in a later millisecond
        backdated = records.sign_entry(d2, seq=1, prev=None, time=t0 + 5,
                                       kind=records.KIND_CERTIFICATE,
                                       body={"community": cid, "school": x.school_id,
                                             "role": "member", "issued": t0 + 5})
        with db.write(h.conn) as conn:
            feeds.append(conn, backdated)
        m = community.membership(h, cid)
        assert m.is_active(x.school_id)              # resolution is the same everywhere...
        assert x.school_id in community.suspects(h.conn, m)   # ...but this node doubts it
        publish = records.sign_entry(x, seq=1, prev=None, time=now_ms(),
                                     kind=records.KIND_PUBLISH,
                                     body={"version": 1, "content": bytes.fromhex(
                                         "01701220" + "00" * 32), "files": [
                                         {"path": "a.txt", "cid": bytes.fromhex(
                                             "01551220" + "00" * 32), "size": 1}],
                                         "meta": {"title": "x", "inLanguage": "en",
                                                  "license": "CC-BY-4.0"}})
        with db.write(h.conn) as conn:
            feeds.append(conn, publish)
        kept, over, _ = community.seeding_plan(h)
        assert kept == [] and over == []
        monkeypatch.setattr(community, "suspects", lambda conn, m: {})   # without the doubt
        kept, _, _ = community.seeding_plan(h)
        assert [s.resource_id for s in kept] == [records.resource_id_of(publish)]
        monkeypatch.undo()
    finally:
        h.close()
    m = {r["school_id"]: r for r in founded.json("community", "members")["members"]}
    assert m[x.school_id]["suspect"] and m[x.school_id]["status"] == "active"
    assert "not kept here" in founded.ok("community", "members").stdout


def test_policy_key_sees_an_unfollow_plus_a_follow(tmp_path):
    """The daemon recomputes its policy when this key changes; counting rows missed an
    unfollow followed by a follow of another school (issue 13)."""
    from node import community, daemon
    from node.home import init_home
    home = init_home(tmp_path / "h", "h", "school")
    a = init_home(tmp_path / "a", "a", "school").school_id
    b = init_home(tmp_path / "b", "b", "school").school_id
    daemon.follow(home, a)
    before = community.policy_key(home.conn)
    daemon.unfollow(home, a)
    daemon.follow(home, b)
    assert community.policy_key(home.conn) != before
