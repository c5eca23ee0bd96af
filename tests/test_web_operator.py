"""The operator's pages of the web library, served by a real node on 127.0.0.1: node status and
peers, transfers with pause/resume/cancel, storage, accounts; 403 for everyone else."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from crypto import cid_to_str, make_cid, CID_RAW
from node import db, library
from node.home import init_home
from node.web import auth
from node.web.operate import actions_for

PASSWORD = "correct horse battery"
PAGES = ["/operator", "/operator/transfers", "/operator/storage", "/operator/accounts"]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@asynccontextmanager
async def signed_in(base: str, name: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own (cookies), signed in as ``name`` (None: an anonymous visitor)."""
    async with httpx.AsyncClient(base_url=base, headers={"accept-language": "en"}) as c:
        page = await c.get("/login")
        if name is not None:
            r = await c.post("/login", data={"csrf": csrf_of(page.text), "name": name,
                                             "password": PASSWORD})
            assert r.status_code == 303, r.text
        yield c


@pytest.fixture
async def node(nursery, tmp_path):
    from node.daemon import Node, Options
    home = init_home(tmp_path / "home", "龙泉小学", "school")
    auth.add_teacher(home.conn, "wang", PASSWORD)
    auth.add_teacher(home.conn, "zhao", PASSWORD, role="operator")
    src = tmp_path / "lesson"
    src.mkdir()
    (src / "练习.txt").write_text("1/2 + 1/4 = ?\n", "utf-8")
    library.publish(home, [src], {"title": "分数练习", "about": ["数学"],
                                  "learningResourceType": "worksheet", "license": "CC-BY-4.0"})
    n = await nursery.start(Node(home, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                               web="127.0.0.1:0")).serve)
    yield n
    home.close()


async def test_only_operators_open_the_pages(node):
    for who in (None, "wang"):
        async with signed_in(node.web_url, who) as c:
            for path in PAGES:
                r = await c.get(path)
                assert r.status_code == 403, (who, path)
                assert "operator" in r.text
            token = csrf_of((await c.get("/login")).text)
            tid = (await node.api_fetch(cid_to_str(make_cid(CID_RAW, b"x"))))["id"]
            r = await c.post(f"/operator/transfers/{tid}/pause", data={"csrf": token})
            assert r.status_code == 403
            r = await c.post("/operator/accounts", data={"csrf": token, "name": "li",
                                                        "password": PASSWORD})
            assert r.status_code == 403
            assert auth.role_of(node.home.conn, "li") is None
            assert "/operator" not in (await c.get("/")).text   # no link in the header
    async with signed_in(node.web_url, "zhao") as c:
        for path in PAGES:
            assert (await c.get(path)).status_code == 200, path
        assert 'href="/operator"' in (await c.get("/")).text
    # a role taken away counts at the next page view
    async with signed_in(node.web_url, "zhao") as c:
        auth.set_role(node.home.conn, "zhao", "teacher")
        assert (await c.get("/operator")).status_code == 403


async def test_status_page_shows_the_running_node(node):
    status = await node.api_status()
    async with signed_in(node.web_url, "zhao") as c:
        r = await c.get("/operator")
        assert r.status_code == 200
        assert status["school_id"] in r.text and "龙泉小学" in r.text
        for addr in status["listen"]:
            assert addr in r.text
        assert node.web_url + "/" in r.text          # the web library's URL
        assert "No school is connected now." in r.text
        zh = await c.get("/operator", headers={"accept-language": "zh-CN"})
        assert "节点状态" in zh.text and "启动以来的流量" in zh.text


async def test_status_page_lists_a_connected_peer_and_traffic(node, nursery, tmp_path):
    from node.daemon import Node, Options
    other = init_home(tmp_path / "other", "石门村小", "school")
    peer = await nursery.start(Node(other, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                                   web=None)).serve)
    try:
        await node.api_connect((await peer.api_status())["listen"][0])
        peers = await node.api_peers()
        assert [p["peer_id"] for p in peers] == [other.school_id]
        async with signed_in(node.web_url, "zhao") as c:
            r = await c.get("/operator")
        row = re.search(rf"<tr><td><code class=\"id\">{other.school_id}</code>.*?</tr>",
                        r.text, re.S).group(0)
        assert peers[0]["remote"] in row
        assert ("Yes" if peers[0]["lan"] else "No") in row
        traffic = re.search(r'<table class="grid traffic">.*?</table>', r.text, re.S).group(0)
        for proto in (await node.api_status())["traffic"]:
            assert f"<code>{proto}</code>" in traffic
    finally:
        other.close()


async def test_pause_resume_cancel_a_transfer(node):
    tid = (await node.api_fetch(cid_to_str(make_cid(CID_RAW, b"not held anywhere"))))["id"]
    async with signed_in(node.web_url, "zhao") as c:
        page = await c.get("/operator/transfers")
        assert f'action="/operator/transfers/{tid}/pause"' in page.text
        for action, state in (("pause", "paused"), ("resume", "queued"),
                              ("cancel", "cancelled")):
            r = await c.post(f"/operator/transfers/{tid}/{action}",
                             data={"csrf": csrf_of(page.text)})
            assert r.status_code == 303 and r.headers["location"] == "/operator/transfers"
            assert node.transfers[tid]["state"] in (state, "waiting", "running") \
                if action == "resume" else node.transfers[tid]["state"] == state
            page = await c.get("/operator/transfers")
            assert f'id="transfer-{tid}" data-state="{node.transfers[tid]["state"]}"' in page.text
        # a cancelled transfer has no buttons, and cannot be paused
        assert f"/operator/transfers/{tid}/" not in page.text
        r = await c.post(f"/operator/transfers/{tid}/pause", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 409 and "cannot be paused" in r.text
        r = await c.post(f"/operator/transfers/{tid}/pause", data={})      # no CSRF token
        assert r.status_code == 403


def test_buttons_follow_the_state_table():
    assert actions_for("queued") == ["pause", "cancel"]
    assert actions_for("paused") == ["resume", "cancel"]
    assert actions_for("failed") == ["resume", "cancel"]
    assert actions_for("done") == [] and actions_for("cancelled") == []


async def test_storage_page(node):
    kept = __import__("node.community", fromlist=["pins"]).pins(node.home)
    assert kept["totals"]["own"]["pins"] == 1
    async with signed_in(node.web_url, "zhao") as c:
        r = await c.get("/operator/storage")
        assert r.status_code == 200
        own = re.search(r'<tr data-reason="own">.*?</tr>', r.text, re.S).group(0)
        assert "<td>1</td>" in own and "published here" in own
        assert "分数练习" in r.text
        zh = await c.get("/operator/storage", headers={"accept-language": "zh-CN"})
        assert "本校发布" in zh.text and "磁盘可用" in zh.text


async def test_accounts_add_reset_remove(node):
    conn = node.home.conn
    async with signed_in(node.web_url, "zhao") as c:
        page = await c.get("/operator/accounts")
        token = csrf_of(page.text)
        assert 'data-name="wang"' in page.text and 'data-name="zhao"' in page.text
        r = await c.post("/operator/accounts", data={"csrf": token, "name": "李老师",
                                                    "password": PASSWORD, "role": "teacher"})
        assert r.status_code == 303
        r = await c.get(r.headers["location"])
        assert "Account 李老师 added." in r.text
        assert auth.role_of(conn, "李老师") == "teacher"
        r = await c.post("/operator/accounts", data={"csrf": token, "name": "li2",
                                                    "password": "short", "role": "teacher"})
        assert r.status_code == 400 and "8 to 1024" in r.text
        r = await c.post("/operator/accounts", data={"csrf": token, "name": "li3",
                                                    "password": PASSWORD, "role": "root"})
        assert r.status_code == 400 and auth.role_of(conn, "li3") is None
        # reset wang's password: wang's browser is signed out, the new password works
        async with signed_in(node.web_url, "wang") as wang:
            r = await c.post("/operator/accounts/wang/password",
                             data={"csrf": token, "password": "a new long password"})
            assert r.status_code == 303
            assert "/logout" not in (await wang.get("/")).text
        assert auth.authenticate(conn, "wang", "a new long password")
        r = await c.post("/operator/accounts/%E6%9D%8E%E8%80%81%E5%B8%88/remove",
                         data={"csrf": token})
        assert r.status_code == 303 and auth.role_of(conn, "李老师") is None
        r = await c.post("/operator/accounts/zhao/remove", data={"csrf": token})
        assert r.status_code == 400 and auth.role_of(conn, "zhao") == "operator"
        r = await c.post("/operator/accounts/nobody/remove", data={"csrf": token})
        assert r.status_code == 400 and "no teacher" in r.text


def test_migration_keeps_accounts_as_teachers(tmp_path):
    """A home written before roles existed (migration 8): its accounts become teachers."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for i, migration in enumerate(db.MIGRATIONS[:8]):
        for stmt in migration.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {i + 1}")
    conn.execute("INSERT INTO teachers VALUES ('wang', ?, 1)", (auth.hash_password(PASSWORD),))
    conn.close()
    conn = db.connect(path)
    assert auth.list_teachers(conn) == [{"name": "wang", "role": "teacher", "created": 1}]
    assert auth.authenticate(conn, "wang", PASSWORD)
    conn.close()
