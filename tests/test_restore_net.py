"""A school re-created from a bare key (no backup, no community) learns its feed from a peer
that holds it before it signs anything (issue 14 point 2), with nodes in one trio run."""

from __future__ import annotations

import shutil

import pytest

from crypto import load_key, save_key
from node import backup, daemon, feeds, library
from node.errors import NodeError
from test_community_net import Nodes, publish, seeds_of, wait_for


async def test_rekeyed_school_learns_its_head_from_a_peer_holding_its_feed(nursery, tmp_path):
    nodes = Nodes(nursery, tmp_path)
    a, b = await nodes.start("a"), await nodes.start("b")
    daemon.follow(b.home, a.home.school_id)
    publish(a, tmp_path, "一")
    publish(a, tmp_path, "二")
    head = feeds.head(a.home.conn, a.home.feed)[0]
    await b.api_connect(seeds_of(a)[0])
    await wait_for(lambda: feeds.head(b.home.conn, a.home.feed)[0] == head, "B holds A's feed")
    key_file = tmp_path / "a-key.pem"
    save_key(key_file, a.home.key())
    nodes.stop("a")
    await wait_for(lambda: not a.host.get_network().connections, "A offline")
    shutil.rmtree(tmp_path / "a")

    home = backup.restore_key(tmp_path / "a", key_file, "a", "school", fresh=False,
                              key_file_passphrase=None, key_passphrase=None)
    assert home.school_id == load_key(key_file).school_id
    with pytest.raises(NodeError, match="restored"):
        library.publish(home, [tmp_path / "src-a-一"], {"title": "太早"})
    home.close()
    a2 = await nodes.start("a")
    await a2.api_connect(seeds_of(b)[0])
    await wait_for(lambda: backup.head_known(a2.home.conn), "A learnt its head from B")
    assert feeds.head(a2.home.conn, a2.home.feed)[0] == head
    src = tmp_path / "three"
    src.mkdir()
    (src / "c.txt").write_text("三", "utf-8")
    library.publish(a2.home, [src], {"title": "三"})
    await wait_for(lambda: feeds.head(b.home.conn, a2.home.feed)[0] == head + 1,
                   "B has the new entry")
    assert b.home.conn.execute("SELECT count(*) FROM conflicts").fetchone()[0] == 0
