import os

import pytest

from crypto import CID_RAW, BadCID, make_cid
from node.blockstore import SMALL_BLOCK_MAX, BlockStore
from node.errors import CorruptBlock, NotFound


@pytest.fixture
def store(tmp_path):
    s = BlockStore(tmp_path / "blocks")
    s.create()
    return s


def test_put_get_and_dedupe(store):
    cid = make_cid(CID_RAW, b"hello")
    assert store.put(cid, b"hello") is True
    assert store.put(cid, b"hello") is False
    assert store.get(cid) == b"hello"
    assert list(store) == [cid]


def test_put_refuses_bytes_that_do_not_match(store):
    cid = make_cid(CID_RAW, b"hello")
    with pytest.raises(BadCID):
        store.put(cid, b"HELLO")
    assert not store.has(cid)


def test_small_blocks_go_to_the_pack_and_big_ones_to_files(store):
    small, big = b"s" * 1000, os.urandom(SMALL_BLOCK_MAX + 1)
    for data in (small, big):
        store.put(make_cid(CID_RAW, data), data)
    assert store.is_small(make_cid(CID_RAW, small))
    assert not store.path(make_cid(CID_RAW, small)).exists()
    assert store.path(make_cid(CID_RAW, big)).read_bytes() == big
    assert set(store) == {make_cid(CID_RAW, small), make_cid(CID_RAW, big)}


def test_corruption_detected_on_read(store, tmp_path):
    big = os.urandom(SMALL_BLOCK_MAX + 1)
    cid = make_cid(CID_RAW, big)
    store.put(cid, big)
    store.path(cid).write_bytes(b"x" + big[1:])
    with pytest.raises(CorruptBlock):
        store.get(cid)
    small = make_cid(CID_RAW, b"hello")
    store.put(small, b"hello")
    store._small_db().execute("UPDATE small SET data = ? WHERE cid = ?", (b"hellO", small))
    with pytest.raises(CorruptBlock):
        store.get(small)
    with pytest.raises(NotFound):
        store.get(make_cid(CID_RAW, b"other"))


def test_batch_writes_many_blocks_and_leaves_no_temp_files(store):
    with store.batch() as b:
        for i in range(50):
            data = os.urandom(100 + i)
            b.put(make_cid(CID_RAW, data), data)
    assert len(list(store)) == 50
    assert list(store.tmp.iterdir()) == []


def test_stale_temp_files_are_cleaned_but_live_ones_kept(store):
    (store.tmp / "a.999999999.tmp").write_bytes(b"x")      # no such process
    (store.tmp / f"b.{os.getpid()}.tmp").write_bytes(b"x")  # a live writer (us)
    assert store.clean_tmp() == 1
    assert [p.name for p in store.tmp.iterdir()] == [f"b.{os.getpid()}.tmp"]
