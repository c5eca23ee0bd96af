"""The operator pages for limits and the month's traffic (SVG charts), communities (create,
invite with a QR code, members, remove) and USB bundles (export/import as background jobs with
progress), served by a real node on 127.0.0.1; the same node functions as the CLI."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
import trio

from node import community as ncommunity
from node import library
from node import limits as nlimits
from node.home import init_home
from node.web import auth, qr, usb
from protocol import limits as pl
from protocol import membership as pc
from test_web_operator import PASSWORD, csrf_of, signed_in

JOB_SECONDS = 30


@pytest.fixture
async def node(nursery, tmp_path):
    from node.daemon import Node, Options
    home = init_home(tmp_path / "home", "龙泉小学", "demonstration")
    auth.add_teacher(home.conn, "wang", PASSWORD)
    auth.add_teacher(home.conn, "zhao", PASSWORD, role="operator")
    src = tmp_path / "lesson"
    src.mkdir()
    (src / "练习.txt").write_text("1/2 + 1/4 = ?\n" * 2000, "utf-8")
    library.publish(home, [src], {"title": "分数练习", "about": ["数学"],
                                  "learningResourceType": "worksheet", "license": "CC-BY-4.0"})
    n = await nursery.start(Node(home, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                               web="127.0.0.1:0")).serve)
    yield n
    home.close()


PAGES = ["/operator/limits", "/operator/limits/daily.svg", "/operator/limits/month.svg",
         "/operator/communities", "/operator/usb"]


async def test_new_pages_are_for_operators_only(node):
    for who in (None, "wang"):
        async with signed_in(node.web_url, who) as c:
            for path in PAGES:
                assert (await c.get(path)).status_code == 403, (who, path)
            token = csrf_of((await c.get("/login")).text)
            for path, data in (("/operator/limits", {"up": "1M"}),
                               ("/operator/communities", {"name": "x"}),
                               ("/operator/usb/export", {"dir": "/tmp"})):
                assert (await c.post(path, data={"csrf": token, **data})).status_code == 403
    assert nlimits.load(node.home.conn).up is None
    assert ncommunity.list_communities(node.home) == []
    async with signed_in(node.web_url, "zhao") as c:
        for path in PAGES:
            assert (await c.get(path)).status_code == 200, path
        # no CSRF token: refused even for the operator
        assert (await c.post("/operator/limits", data={"up": "1M"})).status_code == 403


async def test_limits_page_sets_limits_and_charts_the_month(node):
    conn = node.home.conn
    now = datetime.now()
    month, today = nlimits.month_of(now), nlimits.day_of(now)
    # bytes counted by the node's own limiter, flushed as the node does every 2 s
    await node.limiter.acquire("up", 3_000_000)
    await node.limiter.acquire("down", 5_000_000)
    node.limiter.flush(conn, month, today)
    async with signed_in(node.web_url, "zhao") as c:
        page = await c.get("/operator/limits")
        r = await c.post("/operator/limits", data={"csrf": csrf_of(page.text), "up": "2Mbps",
                                                   "down": "10M", "monthly_budget": "20GB"})
        assert r.status_code == 303
        r = await c.get(r.headers["location"])
        assert "Saved" in r.text
        assert re.search(r'<dd class="up">2Mbit/s</dd>', r.text)  # megabits, as typed
        assert re.search(r'<dd class="down">10Mbit/s</dd>', r.text)
        assert nlimits.load(conn).down == pl.parse_rate("10M")
        assert nlimits.load(conn).monthly_budget == 20 * 10**9
        row = re.search(rf'<tr data-day="{today}">.*?</tr>', r.text, re.S).group(0)
        assert "2.9 MiB" in row and "4.8 MiB" in row                  # 3 MB up, 5 MB down
        assert 'value="0"' in r.text and "of 20GB" in r.text
        # a bad rate: 400, the old settings stay, the message names the problem
        bad = await c.post("/operator/limits", data={"csrf": csrf_of(page.text),
                                                     "up": "fast", "monthly_budget": "1TB"})
        assert bad.status_code == 400 and "fast" in bad.text
        assert nlimits.load(conn).monthly_budget == 20 * 10**9
        # the charts: SVG drawn on the server, with a policy that runs no script
        for chart in ("daily", "month"):
            svg = await c.get(f"/operator/limits/{chart}.svg",
                              headers={"accept-language": "zh-CN"})
            assert svg.headers["content-type"].startswith("image/svg+xml")
            assert "script-src" not in svg.headers["content-security-policy"]
            assert "default-src 'none'" in svg.headers["content-security-policy"]
            root = ET.fromstring(svg.content)
            text = " ".join(t for t in root.itertext())
            assert month in text
        assert "每日流量" in (await c.get("/operator/limits/daily.svg",
                                          headers={"accept-language": "zh-CN"})).text
        month_svg = (await c.get("/operator/limits/month.svg")).text
        assert "Monthly budget" in month_svg and "Used so far" in month_svg
        zh = await c.get("/operator/limits", headers={"accept-language": "zh-CN"})
        assert "限速与流量" in zh.text and "本月已用" in zh.text
    assert nlimits.days(conn, month) == [(today, 3_000_000, 5_000_000)]


async def test_traffic_by_use_is_kept_per_day(node, nursery, tmp_path):
    """Every stream's bytes per protocol (LAN peers too) are written per day with the budget's
    counters and shown in plain words."""
    from node.daemon import Node, Options
    other = init_home(tmp_path / "other", "石门村小", "school")
    peer = await nursery.start(Node(other, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                                   web=None)).serve)
    try:
        await node.api_connect((await peer.api_status())["listen"][0])
        with trio.fail_after(JOB_SECONDS):          # identify runs on every new connection
            while not [p for p in node.meter.received if p.startswith("/ipfs/id/")]:
                await trio.sleep(0.05)
        ident = next(p for p in node.meter.received if p.startswith("/ipfs/id/"))
        now = datetime.now()
        node.limiter.flush(node.home.conn, nlimits.month_of(now), nlimits.day_of(now),
                           force=True)
        rows = nlimits.protocol_days(node.home.conn, nlimits.month_of(now))
        kept = {p: (s, r) for d, p, s, r in rows if d == nlimits.day_of(now)}
        assert kept[ident][1] >= node.meter.received[ident] > 0
        async with signed_in(node.web_url, "zhao") as c:
            page = await c.get("/operator/limits")
            row = re.search(rf'<tr data-protocol="{re.escape(ident)}">.*?</tr>', page.text,
                            re.S).group(0)
            assert "connection upkeep" in row
            zh = await c.get("/operator/limits/protocols.svg",
                             headers={"accept-language": "zh-CN"})
            assert zh.headers["content-type"].startswith("image/svg+xml")
            assert "连接维护" in zh.text and "每日流量按用途" in zh.text
        # a second flush adds only what came since: nothing is counted twice
        before = node.meter.received[ident]
        node.limiter.flush(node.home.conn, nlimits.month_of(now), nlimits.day_of(now),
                           force=True)
        again = {p: (s, r) for d, p, s, r in nlimits.protocol_days(
            node.home.conn, nlimits.month_of(now)) if d == nlimits.day_of(now)}
        assert again[ident][1] - kept[ident][1] == node.meter.received[ident] - before
    finally:
        other.close()


async def test_communities_create_invite_join_remove(node, tmp_path):
    other = init_home(tmp_path / "village", "石门村小", "school")
    village = other.school_id
    other.close()
    async with signed_in(node.web_url, "zhao") as c:
        page = await c.get("/operator/communities")
        assert "This school is in no community yet." in page.text
        token = csrf_of(page.text)
        assert (await c.post("/operator/communities",
                             data={"csrf": token, "name": ""})).status_code == 400
        r = await c.post("/operator/communities", data={"csrf": token, "name": "龙泉学区",
                                                        "description": "数学教研"})
        assert r.status_code == 303
        cid = r.headers["location"].rsplit("/", 1)[1]
        assert [x["community_id"] for x in ncommunity.list_communities(node.home)] == [cid]
        detail = await c.get(r.headers["location"])
        assert "龙泉学区" in detail.text and "(this school)" in detail.text
        # an invite: the code (valid, naming this node as seed) and its QR code
        r = await c.post(f"/operator/communities/{cid}/invite",
                         data={"csrf": token, "role": "member", "expires": "1d"})
        assert r.status_code == 200
        code = re.search(r'<textarea class="code"[^>]*>([^<]+)</textarea>', r.text).group(1)
        inv = pc.decode_invite(code)
        assert inv.community == cid and inv.role == "member"
        assert list(inv.seeds) == (await node.api_status())["listen"]
        assert qr.svg(code) in r.text
        bad = await c.post(f"/operator/communities/{cid}/invite",
                           data={"csrf": token, "role": "member", "expires": "99y"})
        assert bad.status_code == 400
        # the village school redeems it (the issuer's handler of the redeem protocol)
        resp = ncommunity.answer(node.home, pc.RedeemRequest.build(
            inv, village).encode(), village)
        assert resp.certificate is not None, resp
        detail = await c.get(f"/operator/communities/{cid}")
        assert f'data-school="{village}" data-status="active"' in detail.text
        assert f"/operator/communities/{cid}/remove/{node.home.school_id}" \
            not in detail.text                                  # not the founder
        r = await c.post(f"/operator/communities/{cid}/remove/{village}",
                         data={"csrf": token, "reason": "closed"})
        assert r.status_code == 303
        detail = await c.get(r.headers["location"])
        assert f'data-school="{village}" data-status="revoked"' in detail.text
        again = await c.post(f"/operator/communities/{cid}/remove/{village}",
                             data={"csrf": token})
        assert again.status_code == 400 and "already removed" in again.text
        assert (await c.get("/operator/communities/nope")).status_code == 404
        zh = await c.get(f"/operator/communities/{cid}",
                         headers={"accept-language": "zh-CN"})
        assert "已移除" in zh.text and "邀请学校" in zh.text
    m = ncommunity.members(node.home, cid)
    assert {x["school_id"]: x["status"] for x in m["members"]}[village] == "revoked"


async def wait_job(c, location: str) -> dict:
    with trio.fail_after(JOB_SECONDS):
        while True:
            d = (await c.get(location + ".json")).json()
            if d["state"] != "running":
                return d
            await trio.sleep(0.05)


async def test_usb_export_then_import_elsewhere(node, nursery, tmp_path):
    from node.daemon import Node, Options
    drive = tmp_path / "U 盘"
    drive.mkdir()
    async with signed_in(node.web_url, "zhao") as c:
        page = await c.get("/operator/usb", params={"dir": str(drive)})
        assert page.status_code == 200 and "No bundle (.car file)" in page.text
        token = csrf_of(page.text)
        r = await c.post("/operator/usb/export", data={"csrf": token, "dir": str(drive),
                                                       "name": "lib.car", "max_size": ""})
        assert r.status_code == 303
        job = await wait_job(c, r.headers["location"])
        assert job["state"] == "done", job
        assert job["result"]["output"] == [str(drive / "lib.car")] and job["percent"] == 100
        done = await c.get(r.headers["location"])
        assert "Written:" in done.text and 'http-equiv="refresh"' not in done.text
        # the same file again: refused by the bundle code (never overwrites)
        r = await c.post("/operator/usb/export", data={"csrf": token, "dir": str(drive),
                                                       "name": "lib.car"})
        job = await wait_job(c, r.headers["location"])
        assert job["state"] == "failed" and "exists" in job["error"]
        for data in ({"dir": "relative/path"}, {"dir": str(tmp_path / "absent")},
                     {"dir": str(drive), "name": "../x.car"},
                     {"dir": str(drive), "max_size": "lots"}):
            r = await c.post("/operator/usb/export", data={"csrf": token, "name": "b.car",
                                                           **data})
            assert r.status_code == 400, data
        assert sorted(p.name for p in drive.iterdir()) == ["lib.car"]
    # another school's node imports it from the web page
    other = init_home(tmp_path / "village", "石门村小", "school")
    auth.add_teacher(other.conn, "li", PASSWORD, role="operator")
    peer = await nursery.start(Node(other, Options(listen=["/ip4/127.0.0.1/tcp/0"],
                                                   web="127.0.0.1:0")).serve)
    try:
        async with signed_in(peer.web_url, "li") as c:
            page = await c.get("/operator/usb", params={"dir": str(drive)})
            assert 'value="lib.car"' in page.text
            token = csrf_of(page.text)
            r = await c.post("/operator/usb/import", data={"csrf": token, "dir": str(drive)})
            assert r.status_code == 400                       # nothing chosen
            r = await c.post("/operator/usb/import", data={"csrf": token, "dir": str(drive),
                                                           "file": "lib.car"})
            assert r.status_code == 303
            job = await wait_job(c, r.headers["location"])
            assert job["state"] == "done", job
            assert len(job["result"]["pinned"]) == 1 and not job["result"]["invalid"]
            zh = await c.get(r.headers["location"], headers={"accept-language": "zh-CN"})
            assert "已导入" in zh.text and "1 个资源完整" in zh.text
        from node import catalog
        assert [h["title"] for h in catalog.search(other.conn, "分数")] == ["分数练习"]
    finally:
        other.close()


def test_drives_from_proc_mounts(tmp_path):
    media = tmp_path / "media"
    stick, cd, plain = media / "my stick", media / "cd", media / "disk"
    for p in (stick, cd, plain):
        p.mkdir(parents=True)
    text = "\n".join([
        "proc /proc proc rw,nosuid 0 0",
        "/dev/sda1 / ext4 rw,relatime 0 0",
        f"/dev/sdb1 {str(stick).replace(' ', chr(92) + '040')} vfat rw,nosuid 0 0",
        f"/dev/sr0 {cd} iso9660 ro 0 0",
        f"tmpfs {plain} tmpfs rw 0 0",
        f"/dev/sdc1 {media}/absent vfat rw 0 0",
        f"/dev/sdd1 {plain} ext4 rw 0 0",
        "garbage"])
    found = usb.drives(text, media_roots=(str(media) + "/",))
    assert sorted(d["path"] for d in found) == [str(plain), str(stick)]   # space unescaped
    assert {d["fstype"] for d in found} == {"vfat", "ext4"}


async def test_one_usb_job_at_a_time_and_stopped_with_the_server():
    import threading
    from node.errors import NodeError
    started, finished = threading.Event(), threading.Event()

    def work(job):
        job.phase_to("exporting", None)
        started.set()
        try:
            while True:                     # a long copy: reports progress block by block
                job.progress(1)
                threading.Event().wait(0.01)
        finally:
            finished.set()

    jobs = usb.Jobs()
    async with trio.open_nursery() as nursery:
        await nursery.start(jobs.serve)
        job = jobs.submit("export", "/media/stick/x.car", work)
        await trio.to_thread.run_sync(started.wait, 10)
        with pytest.raises(NodeError, match="running already"):
            jobs.submit("import", "/media/stick", work)
        nursery.cancel_scope.cancel()       # the server stops
    assert finished.is_set()                # the thread ended, nothing left running
    assert job.state == "failed" and job.error == "stopped" and job.done > 0
