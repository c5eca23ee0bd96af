"""Bundles and the real ipfs-car 3.1.0: it reads our bundles and unpacks byte-identical files;
what it packs imports as plain content (``import --content-only``) and ``get`` returns it."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop
IPFS_CAR = Path(__file__).parent / "js/node_modules/.bin/ipfs-car"
MiB = 1024 * 1024


def ipfs_car(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not IPFS_CAR.exists():
        pytest.skip("ipfs-car not installed (run `make js`)")
    return subprocess.run([str(IPFS_CAR), *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=check)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def make_source(root: Path, seed: int) -> Path:
    rnd = random.Random(seed)
    files = {"教案.md": "# 分数的初步认识\n".encode(), "课件/幻灯片.bin": rnd.randbytes(2 * MiB + 7),
             "练习/a b.txt": b"1/2 + 1/4\n", "empty.txt": b"", "Z/z/deep.bin": rnd.randbytes(300)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def exported(cli, home, tmp_path):
    src1 = make_source(tmp_path / "one", 1)
    src2 = make_source(tmp_path / "two", 2)
    r1 = cli.json("publish", src1, "--title", "分数的初步认识")
    r2 = cli.json("publish", src2, "--title", "Fractions: a/b?")
    out = cli.json("export", "-o", tmp_path / "lib.car")
    return {"car": tmp_path / "lib.car", "out": out, "r1": r1, "r2": r2, "src1": src1,
            "src2": src2, "tmp": tmp_path}


def test_ipfs_car_lists_our_roots_library_folder_first(exported):
    roots = ipfs_car("roots", exported["car"]).stdout.split()
    assert roots == [exported["out"]["library_folder"], exported["out"]["index"]]
    # every block verifies for ipfs-car too
    blocks = ipfs_car("blocks", exported["car"]).stdout.split()
    assert exported["out"]["index"] in blocks and exported["r1"]["content_cid"] in blocks


def test_obvious_unpack_asks_for_a_root_and_the_first_root_unpacks_everything(exported):
    car, tmp = exported["car"], exported["tmp"]
    refused = ipfs_car("unpack", car, "--output", tmp / "x", check=False)
    assert refused.returncode != 0 and "use --root" in refused.stderr
    first = refused.stderr.split("which one to use:")[1].split()[0]
    assert first == exported["out"]["library_folder"]
    ipfs_car("unpack", car, "--root", first, "--output", tmp / "library")
    r1, r2 = exported["r1"]["resource_id"], exported["r2"]["resource_id"]
    assert sorted(p.name for p in (tmp / "library").iterdir()) == sorted(
        [f"Fractions_ a_b_ ({r2})", f"分数的初步认识 ({r1})"])
    assert tree(tmp / "library" / f"分数的初步认识 ({r1})") == tree(exported["src1"])
    assert tree(tmp / "library" / f"Fractions_ a_b_ ({r2})") == tree(exported["src2"])
    listed = ipfs_car("ls", car, "--root", first).stdout.splitlines()
    assert f"./分数的初步认识 ({r1})/教案.md" in listed


def test_unpack_one_resource_by_its_content_root(exported):
    tmp = exported["tmp"]
    ipfs_car("unpack", exported["car"], "--root", exported["r2"]["content_cid"],
             "--output", tmp / "one")
    assert tree(tmp / "one") == tree(exported["src2"])


@pytest.mark.parametrize("how", ["output", "stdout", "no-wrap"])
def test_a_car_packed_by_ipfs_car_imports_as_content(cli, home, tmp_path, how):
    src = make_source(tmp_path / "src", 3)
    car = tmp_path / "packed.car"
    if how == "output":
        root = ipfs_car("pack", src, "--output", car).stdout.split()[-1]
    elif how == "stdout":  # no roots in the header: the implicit root is found
        with open(car, "wb") as fh:
            p = subprocess.run([str(IPFS_CAR), "pack", str(src)], stdout=fh,
                               stderr=subprocess.PIPE, text=True, timeout=120, check=True)
        root = p.stderr.split()[-1]
    else:
        root = ipfs_car("pack", src / "课件" / "幻灯片.bin", "--no-wrap",
                        "--output", car).stdout.split()[-1]
    report = cli.json("import", "--content-only", car)
    assert report["invalid"] == [] and [p["content_cid"] for p in report["pinned"]] == [root]
    cli.ok("get", root, "-o", tmp_path / "got")
    if how == "no-wrap":  # a lone file is written under its CID
        assert (tmp_path / "got" / root).read_bytes() == (src / "课件" / "幻灯片.bin").read_bytes()
    else:
        assert tree(tmp_path / "got") == tree(src)
    before = cli.state()
    again = cli.json("import", "--content-only", car)
    assert again["blocks_added"] == 0 and cli.state() == before
    assert cli.json("verify")["ok"]


def test_round_trip_through_ipfs_car(cli, home, cli_at, tmp_path):
    """Our bundle unpacked by ipfs-car, repacked by ipfs-car, imported by another school:
    the same CIDs (same content roots) come back."""
    src = make_source(tmp_path / "src", 4)
    res = cli.json("publish", src, "--title", "t")
    cli.ok("export", "-o", tmp_path / "b.car")
    ipfs_car("unpack", tmp_path / "b.car", "--root", res["content_cid"], "--output",
             tmp_path / "u")
    root = ipfs_car("pack", tmp_path / "u", "--output", tmp_path / "re.car").stdout.split()[-1]
    assert root == res["content_cid"]
    other = cli_at(tmp_path / "other")
    other.ok("init", "--name", "other")
    other.json("import", "--content-only", tmp_path / "re.car")
    other.ok("get", root, "-o", tmp_path / "final")
    assert tree(tmp_path / "final") == tree(src)
