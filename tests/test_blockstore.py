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


# -- O_DIRECT for file blocks of whole 4 KiB pages ---------------------------------------------

def _resident_pages(path) -> int:
    """Pages of the file ``path`` now in the page cache (mincore(2) on a mapping of it; the
    mapping itself reads nothing)."""
    import ctypes
    import mmap
    libc = ctypes.CDLL(None, use_errno=True)
    size = os.path.getsize(path)
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as m:
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        vec = (ctypes.c_ubyte * pages)()
        assert libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) == 0, \
            os.strerror(ctypes.get_errno())
        del addr   # the buffer export ends with the c_char object
    return sum(v & 1 for v in vec)


def test_whole_page_file_blocks_bypass_the_page_cache_and_read_back_intact(store):
    if not store._direct:
        pytest.skip("this platform has no O_DIRECT")
    whole = os.urandom(1024 * 1024)              # a 1 MiB chunk: O_DIRECT
    ragged = os.urandom(300 * 1024 + 5)          # a tail that is not whole pages: buffered
    with store.batch() as b:
        assert b.put(make_cid(CID_RAW, whole), whole)
        assert b.put(make_cid(CID_RAW, ragged), ragged)
        b.commit()
    if not store._direct:
        pytest.skip("this filesystem refuses O_DIRECT (the fallback test covers it)")
    assert _resident_pages(store.path(make_cid(CID_RAW, whole))) == 0
    assert _resident_pages(store.path(make_cid(CID_RAW, ragged))) > 0
    assert store.get(make_cid(CID_RAW, whole)) == whole        # read back and verified
    assert store.get(make_cid(CID_RAW, ragged)) == ragged


_RAMFS_PROBE = """
import os, sys
from crypto import CID_RAW, make_cid
from node.blockstore import BlockStore
s = BlockStore(os.path.join(sys.argv[1], "blocks"))
s.create()
assert s._direct
blocks = [os.urandom(1024 * 1024) for _ in range(3)]
with s.batch() as b:
    for data in blocks:
        assert b.put(make_cid(CID_RAW, data), data)
    b.commit()
assert not s._direct, "ramfs took O_DIRECT"
for data in blocks:
    assert s.get(make_cid(CID_RAW, data)) == data
assert not os.listdir(s.tmp)
s.close()
print("ok")
"""


def test_a_filesystem_without_o_direct_gets_ordinary_writes(tmp_path):
    """ramfs refuses O_DIRECT: mounted in a mount namespace of its own, for this test only."""
    import shutil
    import subprocess
    import sys
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to mount a ramfs in a private mount namespace")
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount -t ramfs ramfs "$1" || exit 77; shift; exec "$@"',
         "sh", str(mnt), sys.executable, "-c", _RAMFS_PROBE, str(mnt)],
        capture_output=True, text=True, cwd=repo, timeout=60)
    if out.returncode == 77:
        pytest.skip(f"cannot mount a ramfs here: {out.stderr.strip()}")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
