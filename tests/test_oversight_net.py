"""Oversight between real nodes on 127.0.0.1 (specs/oversight.md): two members compute the
same report byte for byte from replicated feeds; holdings summaries count copies; a
demonstration school hides a resource and members stop showing it while the author keeps it;
a member that tries to hide is rejected everywhere; feedback reaches the author's web page."""

from __future__ import annotations

import re

import httpx
import trio

from crypto import PublicKey

from node import catalog, community, feeds, library, oversight
from node.daemon import Node, Options
from node.home import init_home, now_ms
from node.p2p import host as p2p
from node.web import auth
from node.web.app import WebConfig, make_app
from protocol import records
from protocol import report as pr

PASSWORD = "correct horse battery"
DEADLINE = 30


async def wait_for(condition, what: str) -> None:
    with trio.fail_after(DEADLINE):
        while not condition():
            await trio.sleep(0.05)


async def start(nursery, tmp_path, name: str, role: str = "school") -> Node:
    home = init_home(tmp_path / name, name, role)
    return await nursery.start(
        Node(home, Options(listen=["/ip4/127.0.0.1/tcp/0"], request_timeout=3.0)).serve)


def publish(node: Node, tmp_path, title: str, **meta) -> dict:
    d = tmp_path / f"src-{node.home.name}-{title}"
    d.mkdir()
    (d / "lesson.txt").write_text(f"{title}\n" * 200, "utf-8")
    return library.publish(node.home, [d], {"title": title, **meta})


async def join(node: Node, demo: Node) -> dict:
    code = community.invite(demo.home, None, seeds=p2p.listen_addrs(demo.host))["code"]
    return await node.api_community_join(code)


def found(node, title: str) -> bool:
    hide = oversight.hidden_from_me(node.home)
    return any(r["title"] == title for r in catalog.search(node.home.conn, title, hide=hide))


def heads(node, schools) -> dict:
    return {s: feeds.head(node.home.conn, PublicKey.from_school_id(s).raw)
            for s in schools}


async def test_report_moderation_and_feedback_across_nodes(nursery, tmp_path):
    d = await start(nursery, tmp_path, "demo", "demonstration")
    cid = community.create(d.home, "青山片区")["community_id"]
    a, b = await start(nursery, tmp_path, "a"), await start(nursery, tmp_path, "b")
    await join(a, d)
    await join(b, d)
    base = publish(d, tmp_path, "分数", about=["数学"], educationalLevel=["lower-primary"])
    r = publish(a, tmp_path, "Fractions", about=["数学"], educationalLevel=["lower-primary"],
                isBasedOn=[base["resource_id"]])
    await wait_for(lambda: found(b, "Fractions") and found(b, "分数"), "B has the catalog")
    library.append_entry(b.home, records.KIND_FEEDBACK, {
        "resource": r["resource_id"], "used": True, "rating": 5, "comment": "学生很喜欢"})
    library.append_entry(b.home, records.KIND_FEEDBACK, {
        "resource": base["resource_id"], "used": True, "rating": 4})
    for n in (a, b, d):
        oversight.announce(n.home, force=True)
    schools = [d.home.school_id, a.home.school_id, b.home.school_id]

    # the same feeds give the same report, byte for byte, on two different nodes
    await wait_for(lambda: heads(a, schools) == heads(b, schools) == heads(d, schools)
                   and heads(a, schools)[b.home.school_id][0] >= 4, "feeds replicated")
    with trio.fail_after(20):
        while True:
            ja, jb = (pr.to_json(oversight.report(n.home, cid)) for n in (a, b))
            if ja == jb:
                break
            await trio.sleep(0.1)   # an automatic holdings summary was still on its way
    rep = oversight.report(a.home, cid)
    assert set(rep["heads"]) == set(schools)
    assert rep["feedback"]["total"] == 2 and rep["feedback"]["used_in_class"] == 2
    (reach,) = rep["reach"]
    assert reach["school"] == d.home.school_id
    assert reach["adapted_by"] == [a.home.school_id] and reach["used_by"] == [b.home.school_id]
    copies = {x["resource"]: x["count"] for x in rep["audit"]["items"]}
    assert copies[r["resource_id"]] >= 1    # the author; the seed once it has fetched it
    assert rep["coverage"]["counts"]["数学"]["lower-primary"] == 2
    assert "upper-secondary" in rep["coverage"]["empty_levels"]

    # the demonstration school keeps every rare resource in one command
    rare = set(rep["audit"]["rare"])
    assert rare
    seeded = oversight.seed_rare(d.home, cid)
    assert set(seeded["pinned"]) | set(seeded["queued"]) | set(seeded["already"]) == rare
    for rid in rare:
        (content,) = d.home.conn.execute("SELECT content FROM resources WHERE resource_id = ?",
                                         (rid,)).fetchone()
        assert d.home.conn.execute("SELECT 1 FROM pins WHERE cid = ? UNION SELECT 1 FROM "
                                   "transfers WHERE root = ?", (content, content)).fetchone()

    # a member that tries to hide a resource is rejected by every receiving node
    bad = library.append_entry(b.home, records.KIND_MODERATION, {
        "community": cid, "resource": base["resource_id"], "action": "hide",
        "reason": "不是示范校", "time": now_ms()})
    await wait_for(lambda: all(n.home.conn.execute("SELECT 1 FROM entries WHERE hash = ?",
                                                   (bad.hash,)).fetchone() for n in (a, d)),
                   "the forged moderation replicated")
    for n in (a, b, d):
        assert base["resource_id"] not in oversight.hidden(n.home)
        entries = oversight.community_entries(n.home, cid)
        _, rejected = pr.moderation(cid, entries, now_ms())
        assert [h for h, _ in rejected] == [bad.hash]
    assert found(b, "分数")

    # the demonstration school hides A's resource: gone from B's search and web, A keeps it
    oversight.moderate(d.home, r["resource_id"], "hide", "图片版权不明", cid)
    await wait_for(lambda: not found(b, "Fractions"), "hidden on B")
    await wait_for(lambda: r["resource_id"] not in {
        rid for (rid,) in d.home.conn.execute(
            "SELECT r.resource_id FROM pins p JOIN resources r ON r.content = p.cid "
            "WHERE p.reason = 'community'")}, "the seed stops seeding it")
    await wait_for(lambda: oversight.moderation_notices(a.home), "the author learns why")
    assert found(a, "Fractions")
    assert [n["reason"] for n in oversight.moderation_notices(a.home)] == ["图片版权不明"]
    auth.add_teacher(a.home.conn, "li", PASSWORD)
    for node, status in ((b, 404), (a, 200)):
        app = make_app(node, WebConfig.for_home(node.home.path))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://school.lan") as c:
            page = await c.get(f"/r/{r['resource_id']}")
            assert page.status_code == status
            assert "图片版权不明" in page.text
    # feedback reached the author: unread count in the header, listed on "my resources"
    app = make_app(a, WebConfig.for_home(a.home.path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://school.lan") as c:
        login = await c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        await c.post("/login", data={"csrf": csrf, "name": "li", "password": PASSWORD})
        home_page = (await c.get("/")).text
        assert re.search(r'class="badge unread"[^>]*>1<', home_page)
        mine = (await c.get("/mine")).text
        assert "学生很喜欢" in mine and "图片版权不明" in mine
        assert 'class="badge unread"' not in (await c.get("/")).text   # seen
        page = await c.get("/report")
        assert page.status_code == 200 and "data:image/svg+xml;base64," in page.text
        printable = await c.get(f"/report?community={cid}&print=1")
        assert "report-form" not in printable.text and "feedback-total" in printable.text
        assert (await c.get("/report?from=2026-99-01")).status_code == 400
        assert "<script" not in page.text.split("</header>", 1)[1]
        js = await c.get(f"/report?community={cid}&format=json")
        assert js.json()["community"] == cid

    oversight.moderate(d.home, r["resource_id"], "unhide", None, cid)
    await wait_for(lambda: found(b, "Fractions"), "shown again on B")
