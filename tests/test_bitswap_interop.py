"""Bitswap against an independent IPFS implementation: Helia 7 on js-libp2p 3 (tests/js).

Helia fetches a resource that schoolmesh published, by CID, from our engine; schoolmesh fetches
a file that Helia added.  Everything listens on 127.0.0.1 only; every step is bounded in time.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from crypto import cid_from_str
from node import library
from node.home import init_home
from node.p2p.bitswap import BlockExchange
from node.p2p.host import listen_addrs, make_host, run_host
from protocol import unixfs

pytestmark = pytest.mark.interop
JS = Path(__file__).parent / "js"
LISTEN = ["/ip4/127.0.0.1/tcp/0"]
HELIA_START = 60     # seconds for Helia to start and print its first line
HELIA_FETCH = 120    # seconds for one Helia fetch process


def _helia_cmd(*args: str) -> list[str]:
    if not (JS / "node_modules" / "helia").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `make test` (npm ci in tests/js)")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    return [node, "--import", "./polyfill.mjs", "helia_peer.mjs", *args]


async def _serve_home(home: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    host = make_host(bytes([7]) * 32, LISTEN)
    async with run_host(host, LISTEN), trio.open_nursery() as nursery:
        ex = BlockExchange(host, home.blocks)
        await nursery.start(ex.serve)
        task_status.started((listen_addrs(host)[0], ex))
        await trio.sleep_forever()


async def _helia_fetch(cid: str, addr: str, out: Path, path: str | None = None) -> dict:
    cmd = _helia_cmd("fetch", cid, addr, str(out), *([path] if path else []))
    with trio.fail_after(HELIA_FETCH):
        done = await trio.run_process(cmd, cwd=JS, capture_stdout=True, capture_stderr=True,
                                      check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


@pytest.fixture
def published(tmp_path):
    """A resource published with schoolmesh: a multi-chunk file and a small one."""
    src = tmp_path / "src"
    (src / "练习").mkdir(parents=True)
    files = {"课件.bin": random.Random(3).randbytes(2_600_000),
             "练习/题目.txt": "1/2 + 1/4 = ?\n".encode()}
    for p, data in files.items():
        (src / p).write_bytes(data)
    home = init_home(tmp_path / "home", "青山小学", "school")
    result = library.publish(home, [src], {"title": "分数"})
    yield home, result, files
    home.close()


async def test_helia_fetches_a_file_and_a_path_from_schoolmesh(tmp_path, published):
    home, result, files = published
    by_path = {f["path"]: f["cid"] for f in result["files"]}
    async with trio.open_nursery() as nursery:
        addr, ex = await nursery.start(_serve_home, home)
        out = tmp_path / "from-helia.bin"
        got = await _helia_fetch(by_path["课件.bin"], addr, out)
        assert out.read_bytes() == files["课件.bin"] and got["bytes"] == 2_600_000
        # The resource's directory root, then a file inside it by path.
        out2 = tmp_path / "inside.txt"
        await _helia_fetch(result["content_cid"], addr, out2, "练习/题目.txt")
        assert out2.read_bytes() == files["练习/题目.txt"]
        stats = ex.statistics()
        assert stats["blocks_sent"] >= 4 and stats["bad_messages"] == 0
        nursery.cancel_scope.cancel()


async def test_schoolmesh_fetches_a_file_that_helia_added(tmp_path):
    data = random.Random(4).randbytes(3 * 1024 * 1024 + 12345)   # 4 chunks and a root node
    src = tmp_path / "helia-file.bin"
    src.write_bytes(data)
    expected_root, _ = unixfs.file_dag(data)      # same CID as Helia's addBytes (unixfs-v1-2025)
    home = init_home(tmp_path / "home", "t", "school")
    proc = await trio.lowlevel.open_process(_helia_cmd("serve", str(src)), cwd=JS,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with trio.fail_after(HELIA_START):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, "Helia exited before printing its address"
                line += chunk
        info = json.loads(line)
        assert cid_from_str(info["cid"]) == expected_root.cid
        async with trio.open_nursery() as nursery:
            addr, ex = await nursery.start(_serve_home, home)
            with trio.fail_after(HELIA_FETCH):
                stats = await ex.fetch_dag(expected_root.cid, [info["multiaddrs"][0]])
            nursery.cancel_scope.cancel()
        assert stats.blocks_fetched == 5 and stats.dropped == {}
        got = b"".join(unixfs.iter_file_chunks(expected_root.cid, home.blocks.get))
        assert got == data
    finally:
        await proc.stdin.aclose()
        with trio.move_on_after(10):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        home.close()
