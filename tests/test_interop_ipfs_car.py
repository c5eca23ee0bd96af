"""The real ipfs-car (npm, installed by `make test`) agrees with our CIDs on random trees."""

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from node import library
from node.home import init_home

pytestmark = pytest.mark.interop
IPFS_CAR = Path(__file__).parent / "js/node_modules/.bin/ipfs-car"


def _root(*args: str) -> str:
    """Root CID printed by `ipfs-car pack ARGS --output FILE` (it rewrites FILE's header, so
    FILE must be a real file, not /dev/null)."""
    if not IPFS_CAR.exists():
        pytest.skip("ipfs-car not installed (run `make test`, which runs npm ci in tests/js)")
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([str(IPFS_CAR), "pack", *args, "--output", f"{d}/x.car"],
                             capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


def _random_tree(root: Path, rnd: random.Random) -> None:
    names = ["课件", "练习", "lesson", "Ünïcode", "a b", "数学-三年级", "z", "A", "é"]
    for i in range(12):
        depth = rnd.randint(0, 3)
        parts = [rnd.choice(names) + str(rnd.randint(0, 3)) for _ in range(depth)]
        p = root.joinpath(*parts, f"f{i}-{rnd.choice(names)}.bin")
        p.parent.mkdir(parents=True, exist_ok=True)
        size = rnd.choice([0, 1, 100, 4096, (1 << 20) - 1, (1 << 20) + 1, 2_500_000])
        p.write_bytes(rnd.randbytes(size))


@pytest.mark.parametrize("seed", [1, 2])
def test_random_tree_matches_ipfs_car(tmp_path, seed):
    src = tmp_path / "src"
    src.mkdir()
    _random_tree(src, random.Random(seed))
    home = init_home(tmp_path / "home", "t", "school")
    result = library.publish(home, [src], {"title": "t"})
    assert result["content_cid"] == _root(str(src))
    for f in result["files"][:4]:
        assert f["cid"] == _root(str(src / f["path"]), "--no-wrap")
    home.close()


def test_single_file_is_wrapped_like_ipfs_car(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "教案.md").write_text("# 分数\n", "utf-8")
    home = init_home(tmp_path / "home", "t", "school")
    result = library.publish(home, [d / "教案.md"], {"title": "t"})
    assert result["content_cid"] == _root(str(d))
    home.close()
    shutil.rmtree(d)
