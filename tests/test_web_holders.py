"""The resource page's "schools with a copy": this node and DHT providers, named if known."""

from __future__ import annotations

import httpx
import trio

from node import daemon, library
from node.daemon import Node, Options
from node.home import init_home
from node.p2p import host as p2p

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


async def test_holders_lists_schools_found_in_the_dht(nursery, tmp_path):
    a_home = init_home(tmp_path / "a", "青山小学", "school")
    b_home = init_home(tmp_path / "b", "示范学校", "demonstration")
    src = tmp_path / "src"
    src.mkdir()
    (src / "lesson.txt").write_text("分数\n", "utf-8")
    rid = library.publish(b_home, [src], {"title": "分数"})["resource_id"]
    a = await nursery.start(Node(a_home, Options(listen=LOOPBACK, web="127.0.0.1:0")).serve)
    b = await nursery.start(Node(b_home, Options(listen=LOOPBACK)).serve)
    daemon.follow(a_home, b_home.school_id)
    await a.api_connect(p2p.listen_addrs(b.host)[0])
    await a.sync_now()
    async with httpx.AsyncClient(base_url=a.web_url, timeout=30) as c:
        with trio.fail_after(30):
            while True:  # B provides its root once it has a peer to tell (A)
                got = (await c.get(f"/api/holders/{rid}")).json()
                if got:
                    break
                await trio.sleep(0.2)
        assert got == [{"school_id": b_home.school_id, "school": "示范学校"}]
        page = (await c.get(f"/r/{rid}")).text
        assert f'data-holders="/api/holders/{rid}"' in page
        assert (await c.get("/api/holders/rnotaresourceidatallxxxxxx")).status_code == 404
