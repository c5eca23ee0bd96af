"""A node whose disk fills up (issue 14 point 3), on a real small file system: a tmpfs that the
test mounts (skipped, with the reason, where mounting is impossible) and always unmounts."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from test_restore_process import daemons  # noqa: F401  (fixture)

MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """A fresh 8 MiB tmpfs mounted at tmp_path/disk."""
    where = tmp_path / "disk"
    where.mkdir()
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
                         capture_output=True, text=True)
    if got.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({got.stderr.strip() or 'not root'}): "
                    "the full-disk tests need a real small file system")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@contextlib.contextmanager
def filled(disk: Path):
    """Fill the file system to the last byte; free it again on exit."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (65536, 512, 1):   # unbuffered: nothing is left to flush on close
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()


def lesson(tmp_path: Path, name: str, size: int = 0) -> Path:
    d = tmp_path / f"src-{name}"
    d.mkdir()
    (d / "lesson.md").write_text(f"# {name}\n", "utf-8")
    if size:
        (d / "video.bin").write_bytes(os.urandom(size))
    return d


def test_publish_that_does_not_fit_leaves_nothing_behind(small_disk, tmp_path, cli_at):
    cli = cli_at(small_disk / "home")
    cli.json("init", "--name", "山村小学")
    kept = cli.json("publish", str(lesson(tmp_path, "一")), "--title", "一")
    before = cli.state()
    free = os.statvfs(small_disk).f_bavail
    message = cli.fail("publish", str(lesson(tmp_path, "大", 20 * MiB)), "--title", "大")
    assert "disk is full" in message
    assert cli.state() == before                        # no block, no row
    assert list((small_disk / "home" / "blocks" / "tmp").iterdir()) == []
    assert os.statvfs(small_disk).f_bavail >= free - 16  # the pieces are gone (a few dirs)
    assert cli.json("verify")["ok"]
    cli.json("publish", str(lesson(tmp_path, "二", 2 * MiB)), "--title", "二")
    assert {r["resource_id"] for r in cli.json("search")} >= {kept["resource_id"]}


def test_a_full_database_gives_one_line_and_changes_nothing(small_disk, tmp_path, cli_at):
    cli = cli_at(small_disk / "home")
    cli.json("init", "--name", "山村小学")
    cli.json("publish", str(lesson(tmp_path, "一")), "--title", "一")
    before = cli.state()
    src = lesson(tmp_path, "二")
    with filled(small_disk):
        for args, env in ((("teacher", "add", "wang"),
                           {"SCHOOLMESH_TEACHER_PASSWORD": "粉笔和黑板-2026"}),
                          (("publish", str(src), "--title", "二"), {}), (("verify",), {})):
            message = cli.fail(*args, env=env)
            assert "is full" in message and "I/O" not in message, message
    assert cli.state() == before
    assert cli.json("verify")["ok"]
    cli.json("teacher", "add", "wang", env={"SCHOOLMESH_TEACHER_PASSWORD": "粉笔和黑板-2026"})


async def test_web_upload_on_a_full_disk_says_so_in_both_languages(small_disk, tmp_path):
    from node.web import auth
    from node.web.app import WebConfig, make_app
    from test_web import PASSWORD, FakeNode, csrf_of, sign_in
    from test_web_teach import post_multipart

    from node.home import init_home
    home = init_home(small_disk / "home", "山村小学", "school")
    auth.add_teacher(home.conn, "wang", PASSWORD)
    app = make_app(FakeNode(home), WebConfig.for_home(home.path, upload_limit=64 * MiB))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://school.lan") as c:
        await sign_in(c)
        for lang, words in (("zh-CN", "磁盘已满"), ("en", "disk is full")):
            await c.get(f"/lang/{lang}")
            page = await c.get("/publish")
            r = await post_multipart(c, "/publish", {
                "csrf": csrf_of(page.text), "title": "大视频", "inLanguage": "zh-CN",
                "license": "CC-BY-4.0"},
                [("files", ("video.bin", os.urandom(12 * MiB), "video/mp4"))])
            assert r.status_code == 507 and words in r.text, r.text[:500]
            assert list((home.path / "web-uploads").iterdir()) == []   # parts removed
            assert list(home.blocks) == []
        # the library keeps serving and publishes what fits
        page = await c.get("/publish")
        r = await post_multipart(c, "/publish", {
            "csrf": csrf_of(page.text), "title": "小练习", "inLanguage": "zh-CN",
            "license": "CC-BY-4.0"}, [("files", ("a.txt", "1/2".encode(), "text/plain"))])
        assert r.status_code == 303
    home.close()


def test_node_keeps_running_and_keeps_its_reserve(small_disk, tmp_path, daemons):
    from cli.net import call
    from node.errors import NodeError
    from test_net_processes import run, wait_until
    from test_restore_process import cli, ok_json
    a = daemons("a", home=small_disk / "a")
    b = daemons("b")
    r = ok_json(b, "publish", str(lesson(tmp_path, "大", 3 * MiB)), "--title", "大")
    status = run(a, "status")
    assert status["disk"]["total"] == 8 * MiB and status["disk"]["free"] < 8 * MiB
    assert status["disk"]["reserve"] == int(8 * MiB * 0.05) and not status["disk"]["low"]
    assert status["disk_warning"] is None
    run(a, "connect", run(b, "status")["listen"][0])
    run(a, "follow", run(b, "id")["school_id"])
    wait_until(lambda: [x["title"] for x in run(a, "search")] == ["大"], "A has B's catalog")

    # below the reserve: no fetch starts, and status says why
    ok_json(a, "limits", "set", "--reserve", "1GiB")
    assert "below the reserve" in run(a, "status")["disk_warning"]
    tid = call(a, "fetch", target=r["resource_id"])["id"]
    state = lambda: next(t for t in run(a, "transfers") if t["id"] == tid)  # noqa: E731
    wait_until(lambda: state()["state"] == "waiting" and "reserve" in state()["error"],
               "the fetch waits for disk space")
    assert state()["bytes_done"] == 0

    # the disk fills up completely: fetching fails cleanly, the node keeps serving
    ok_json(a, "limits", "set", "--reserve", "default")
    with filled(small_disk):
        try:   # refused at once (the queue cannot be written), or stopped on the first block
            call(a, "fetch", target=r["resource_id"])
            wait_until(lambda: state()["state"] in ("waiting", "failed") and
                       "full" in (state()["error"] or ""), "the fetch stopped on the full disk")
        except NodeError as exc:
            assert str(exc).startswith("the disk is full")
        assert run(a, "status")["disk"]["free"] < 64 * 1024      # and the node still answers
        assert list((small_disk / "a" / "blocks" / "tmp").iterdir()) == []
    # room again: the same fetch completes and everything is sound
    got = cli(a, "get", r["resource_id"], "-o", str(tmp_path / "z"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "z" / "video.bin").read_bytes() == \
        (tmp_path / "src-大" / "video.bin").read_bytes()
    assert ok_json(a, "verify")["ok"]


async def test_web_library_says_when_the_disk_is_below_the_reserve(small_disk):
    from node import storage
    from node.home import init_home
    from node.web.app import WebConfig, make_app
    from test_web import FakeNode
    home = init_home(small_disk / "home", "山村小学", "school")
    app = make_app(FakeNode(home), WebConfig.for_home(home.path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://school.lan") as c:
        assert "disk-low" not in (await c.get("/")).text
        storage.set_reserve(home.conn, 2**30)            # more than the whole disk
        assert "磁盘空间不足" in (await c.get("/")).text
        await c.get("/lang/en")
        assert "disk is nearly full" in (await c.get("/")).text
    home.close()


def test_the_node_removes_pieces_left_behind_when_it_starts(tmp_path, daemons, cli_at):
    home = tmp_path / "a"
    cli_at(home).json("init", "--name", "山村小学")
    stale = home / "blocks" / "tmp" / "bafkstale.4194305.tmp"   # above pid_max: no writer
    stale.write_bytes(b"\0" * 4096)
    daemons("a")
    assert not stale.exists()
