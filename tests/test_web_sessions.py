"""Teachers' sessions are stored (hashed) in the node's database: a restart of the web library
signs nobody out; signing out, a password change or removing the teacher ends them
(specs/web.md §3). The app is recreated on the same home with a connection of its own, as a
restarted process would open it."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3

import httpx

from conftest import Cli
from node.web import auth
from node.web.app import WebConfig, make_app
from test_web import PASSWORD, FakeNode, client, csrf_of, school, sign_in  # noqa: F401

MiB = 1024 * 1024


@contextlib.asynccontextmanager
async def restarted(home, cookies, address="10.0.0.5"):
    """A new app on a new connection to the same home (nothing shared with the first one but
    the files), a browser holding ``cookies``."""
    again = home.reopen()
    try:
        app = make_app(FakeNode(again), WebConfig.for_home(again.path, upload_limit=8 * MiB))
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://school.lan",
                                     cookies=cookies) as c:
            c.app = app
            yield c
    finally:
        again.close()


def _rows(home) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(home.path / "schoolmesh.db")) as conn:
        return conn.execute("SELECT token_hash, teacher FROM sessions").fetchall()


async def _signed_in(c) -> bool:
    r = await c.get("/publish")
    assert r.status_code in (200, 303)
    return r.status_code == 200


async def test_a_restart_signs_nobody_out_and_sign_out_removes_the_row(client):
    await sign_in(client)
    sid = client.cookies["sm_session"]
    assert _rows(client.home) == [(hashlib.sha256(sid.encode()).digest(), "wang")]
    for f in client.home.path.glob("schoolmesh.db*"):     # the database and its WAL
        assert sid.encode() not in f.read_bytes()
    async with restarted(client.home, client.cookies) as after:
        assert await _signed_in(after)
        page = await after.get("/publish")        # forms of the restarted app work too
        r = await after.post("/logout", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303
        assert _rows(client.home) == []
        assert not await _signed_in(after)
    assert not await _signed_in(client)          # the same cookie, in the first app


async def test_a_password_change_signs_the_teacher_out_everywhere(client, tmp_path):
    await sign_in(client)
    async with restarted(client.home, {}) as laptop:
        await sign_in(laptop)
        assert len(_rows(client.home)) == 2
        auth.add_teacher(client.home.conn, "li", PASSWORD)
        async with restarted(client.home, {}) as li:
            page = await li.get("/login")
            await li.post("/login", data={"csrf": csrf_of(page.text), "name": "li",
                                          "password": PASSWORD})
            d = Cli(client.home.path).json(
                "teacher", "password", "wang",
                env={"SCHOOLMESH_TEACHER_PASSWORD": "a new password"})
            assert d == {"teacher": "wang", "signed_out": 2}
            assert not await _signed_in(client) and not await _signed_in(laptop)
            assert await _signed_in(li)                       # other teachers stay in
            assert [t for _, t in _rows(client.home)] == ["li"]
    assert auth.authenticate(client.home.conn, "wang", "a new password")
    assert not auth.authenticate(client.home.conn, "wang", PASSWORD)
    assert "no teacher 'zhao'" in Cli(client.home.path).fail(
        "teacher", "password", "zhao", env={"SCHOOLMESH_TEACHER_PASSWORD": "whatever123"})


def test_sessions_expire_after_the_idle_time_across_restarts(school):
    home = school[0]

    class Clock:
        now = 1_800_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    s = auth.Sessions(home.conn, clock=clock).new("wang")
    clock.now += auth.SESSION_TTL - 2 * auth.TOUCH_INTERVAL
    again = home.reopen()
    try:
        later = auth.Sessions(again.conn, clock=clock)   # another process, later
        assert later.get(s.sid).teacher == "wang"        # use moves the expiry on
        clock.now += auth.SESSION_TTL - 1
        assert later.get(s.sid) is not None
        clock.now += auth.SESSION_TTL
        assert later.get(s.sid) is None and len(later) == 0 and _rows(home) == []
    finally:
        again.close()
