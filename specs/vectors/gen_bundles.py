"""Generate specs/vectors/bundles.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_bundles.py > specs/vectors/bundles.json

Everything is built from the protocol layer alone (no node, no files), with fixed keys and
times, so the output is stable (Ed25519 signatures are deterministic).  If ipfs-car is
installed (``make js``), a CAR it packs is included as a sample of foreign input.

Each negative case breaks one rule; whole bundles carry what the importer must do with them
(``expect``), checked by tests/test_bundle_badinput.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto import CID_RAW, SchoolKey, cid_to_str, make_cid  # noqa: E402
from protocol import bundle, car, codec, dagpb, records, unixfs  # noqa: E402

SEED_A = bytes(range(32))
SEED_B = bytes([0xA5] * 32)
T0 = 1_763_900_000_000
LESSON = "分数的初步认识\n1/2 + 1/4 = 3/4\n".encode()
META = {"title": "分数的初步认识", "inLanguage": "zh-CN", "license": "CC-BY-4.0",
        "about": ["数学"], "educationalLevel": ["lower-primary"]}
IPFS_CAR = ROOT / "tests/js/node_modules/.bin/ipfs-car"


def content(files: dict[str, bytes], names: dict[str, str] | None = None
            ) -> tuple[bytes, list[dict[str, Any]], list[tuple[bytes, bytes]], int]:
    """A resource folder: (root, file list, blocks in pre-order, total size).

    ``names`` renames links in the folder node only (to build a folder that lies about its
    files), bypassing the path checks on purpose."""
    links, blocks = {}, []
    for path, data in files.items():
        root, bl = unixfs.file_dag(data)
        links[path] = root
        blocks += [(b.cid, b.data) for b in bl]
    names = names or {}
    node = dagpb.encode_node([dagpb.Link(r.cid, names.get(p, p), r.dag_size)
                              for p, r in links.items()], dagpb.UnixFSData(dagpb.DIRECTORY))
    root = dagpb.node_cid(node)
    file_list = [{"path": p, "cid": r.cid, "size": r.content_size}
                 for p, r in sorted(links.items())]
    size = len(node) + sum(r.dag_size for r in links.values())
    return root, file_list, [(root, node)] + blocks, size


def build(key: SchoolKey, entries: list[records.FeedEntry],
          resources: list[tuple[str, int, str, bytes, int, list[tuple[bytes, bytes]]]],
          *, index: bundle.BundleIndex | None = None) -> tuple[bytes, bundle.BundleIndex]:
    """A bundle as node/bundle.py writes it: header, index, pages, entries, folder, nodes,
    leaves.  ``resources``: (id, version, title, content root, size, blocks)."""
    refs = [bundle.ResourceRef(id=r, version=v, content=c) for r, v, _, c, _, _ in resources]
    pages = bundle.paginate(refs, [e.hash for e in entries])
    feeds: dict[bytes, list[records.FeedEntry]] = {}
    for e in entries:
        feeds.setdefault(e.feed, []).append(e)
    ranges = [bundle.FeedRange(feed=f, first=es[0].seq, last=es[-1].seq, head=es[-1].hash)
              for f, es in feeds.items()]
    index = index or bundle.sign_index(key, time=T0, feeds=ranges,
                                       pages=[make_cid(CID_RAW, p) for p in pages])
    view_root, view_blocks = bundle.library_folder(
        [(bundle.view_name(t, r), c, s) for r, _, t, c, s, _ in resources])
    out = bytearray(car.encode_header([view_root, index.cid]))
    out += car.encode_section(index.cid, index.raw)
    for p in pages:
        out += car.encode_section(make_cid(CID_RAW, p), p)
    for e in entries:
        out += car.encode_section(bundle.entry_cid(e.hash), e.raw)
    for cid, data in view_blocks:
        out += car.encode_section(cid, data)
    blocks = [b for r in resources for b in r[5]]
    for cid, data in sorted(blocks, key=lambda b: b[0][1] == CID_RAW):  # nodes, then leaves
        out += car.encode_section(cid, data)
    return bytes(out), index


def prefixed(header: bytes) -> bytes:
    return car.encode_varint(len(header)) + header


def resign(key: SchoolKey, domain: str, m: dict) -> bytes:
    unsigned = {k: v for k, v in m.items() if k != "sig"}
    sig = key.sign(domain, codec.encode(unsigned))
    return msgpack.packb(codec._canonical({**unsigned, "sig": sig}), use_bin_type=True)


def ipfs_car_sample() -> dict[str, Any] | None:
    if not IPFS_CAR.exists():
        return None
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "lesson"
        (src / "sub").mkdir(parents=True)
        (src / "教案.md").write_bytes(LESSON)
        (src / "sub" / "a.txt").write_bytes(b"a\n")
        out = subprocess.run([str(IPFS_CAR), "pack", str(src), "--output", f"{d}/x.car"],
                             capture_output=True, text=True, check=True, timeout=60)
        data = Path(f"{d}/x.car").read_bytes()
    return {"made_by": "ipfs-car 3.1.0: ipfs-car pack lesson --output x.car",
            "hex": data.hex(), "root": out.stdout.strip().splitlines()[-1],
            "files": {"教案.md": LESSON.hex(), "sub/a.txt": b"a\n".hex()}}


def main() -> None:
    a, b = SchoolKey.from_seed(SEED_A), SchoolKey.from_seed(SEED_B)
    out: dict[str, Any] = {"generator": "specs/vectors/gen_bundles.py",
                           "spec": "specs/bundles.md",
                           "keys": [{"seed": k.seed.hex(), "school_id": k.school_id}
                                    for k in (a, b)]}
    # -- a valid bundle: school A's profile and one lesson -----------------------------------
    root, files, blocks, size = content({"教案.md": LESSON})
    e1 = records.sign_entry(a, seq=1, prev=None, time=T0, kind="profile",
                            body={"name": "青山小学", "role": "school"})
    e2 = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 1, kind="resource.publish",
                            body={"version": 1, "content": root, "files": files, "meta": META})
    rid = records.resource_id_of(e2)
    res = (rid, 1, META["title"], root, size, blocks)
    valid, index = build(a, [e1, e2], [res])
    header, sections = car.read_car(valid)
    out["bundle"] = {
        "hex": valid.hex(), "roots": [cid_to_str(r) for r in header.roots],
        "index": index.raw.hex(), "index_cid": cid_to_str(index.cid),
        "resource_id": rid, "content_cid": cid_to_str(root),
        "files": {"教案.md": LESSON.hex()}, "entries": [e1.hash.hex(), e2.hash.hex()],
        "school_id": a.school_id, "sections": len(sections),
        "library_folder_entry": bundle.view_name(META["title"], rid),
    }
    # -- a wants file: school B holds A's feed up to entry 1, asks for 数学 ------------------
    wants = bundle.sign_wants(b, time=T0, feeds=[bundle.Head(feed=a.public.raw, seq=1,
                                                              hash=e1.hash)],
                              roots=[], asks=bundle.Asks(subjects=("数学",)))
    out["wants"] = {"hex": wants.raw.hex(), "school_id": b.school_id,
                    "asks": wants.asks.to_map()}

    # -- negative: CAR framing ------------------------------------------------------------
    body = car.encode_header([root])
    carv2 = bytes.fromhex("0aa16776657273696f6e02") + bytes(40)
    out["bad_cars"] = [
        {"why": "not a CAR (text)", "hex": b"hello, this is not a CAR\n".hex(),
         "error": "truncated"},
        {"why": "empty file", "hex": "", "error": "truncated"},
        {"why": "CARv2", "hex": carv2.hex(), "error": "unsupported CAR version 2"},
        {"why": "header version 3", "hex": prefixed(b"\xa2eroots\x80gversion\x03").hex(),
         "error": "unsupported CAR version 3"},
        {"why": "header with an extra key",
         "hex": prefixed(b"\xa3eroots\x80gversion\x01dnote\x00").hex(), "error": "exactly"},
        {"why": "header with trailing bytes", "hex": (bytes([body[0] + 1]) + body[1:] + b"\x00"
                                                     ).hex(), "error": "trailing"},
        {"why": "header root not a CID link",
         "hex": prefixed(b"\xa2eroots\x81\x41\x00gversion\x01").hex(), "error": "roots"},
        {"why": "header version as a CBOR bignum (tag 2)",
         "hex": prefixed(b"\xa2eroots\x80gversion\xc2\x41\x01").hex(), "error": "tag"},
        {"why": "header wrapped in the self-describe tag",
         "hex": prefixed(b"\xd9\xd9\xf7\xa2eroots\x80gversion\x01").hex(), "error": "tag"},
        {"why": "header duplicate key",
         "hex": prefixed(b"\xa3eroots\x80gversion\x01gversion\x01").hex(),
         "error": "Duplicate"},
        {"why": "header length over the limit", "hex": (car.encode_varint(2**21) + b"x").hex(),
         "error": "header length"},
    ]
    leaf_cid = make_cid(CID_RAW, b"x")
    out["bad_sections"] = [
        {"why": "empty section", "hex": (body + b"\x00").hex(), "error": "empty CAR section"},
        {"why": "non-minimal varint", "hex": (body + b"\xa5\x80\x00").hex(),
         "error": "non-minimal"},
        {"why": "section over the 2 MiB limit",
         "hex": (body + car.encode_varint(3 * 1024 * 1024) + leaf_cid).hex(),
         "error": "limit"},
        {"why": "CID version 2", "hex": (body + b"\x05\x02\x55\x12\x01\x00").hex(),
         "error": "CID version"},
        {"why": "truncated block", "hex": (body + car.section_head(leaf_cid, 10) + b"x").hex(),
         "error": "truncated"},
    ]

    # -- negative: index and wants records ---------------------------------------------------
    m = codec.decode(index.raw)
    flipped = dict(m, sig=bytes([m["sig"][0] ^ 1]) + m["sig"][1:])
    out["bad_index"] = [
        {"why": "signature flipped", "hex": codec.encode(flipped).hex()},
        {"why": "signed by another key than exporter", "hex": resign(b, "bundle-index", m).hex()},
        {"why": "signed under the wants domain", "hex": resign(a, "wants", m).hex()},
        {"why": "unknown version 2", "hex": resign(a, "bundle-index", dict(m, v=2)).hex()},
        {"why": "extra field", "hex": resign(a, "bundle-index", dict(m, x=1)).hex()},
        {"why": "page is not a raw CID",
         "hex": resign(a, "bundle-index", dict(m, pages=[root])).hex()},
        {"why": "feed range ends before it starts", "hex": resign(a, "bundle-index", dict(
            m, feeds=[dict(m["feeds"][0], first=3, last=2)])).hex()},
        {"why": "not canonical (keys unsorted)",
         "hex": msgpack.packb({k: m[k] for k in reversed(sorted(m))}, use_bin_type=True).hex()},
    ]
    w = codec.decode(wants.raw)
    tampered = dict(w, asks=dict(w["asks"], all=True, subjects=[]))
    out["bad_wants"] = [
        {"why": "tampered after signing (asks changed)", "hex": codec.encode(tampered).hex()},
        {"why": "signed by someone else", "hex": resign(a, "wants", w).hex()},
        {"why": "signed as another record type", "hex": resign(b, "bundle-index", w).hex()},
        {"why": "unknown level", "hex": resign(b, "wants", dict(w, asks=dict(
            w["asks"], levels=["grade-3"]))).hex()},
        {"why": "all together with subjects", "hex": resign(b, "wants", dict(w, asks=dict(
            w["asks"], all=True))).hex()},
        {"why": "roots not sorted", "hex": resign(b, "wants", dict(
            w, roots=sorted([root, leaf_cid], reverse=True))).hex()},
        {"why": "not msgpack (a CAR file)", "hex": valid.hex()},
    ]

    # -- negative: whole bundles and what importing them must do ---------------------------
    bad: list[dict[str, Any]] = []

    def add(why: str, data: bytes, **expect: Any) -> None:
        bad.append({"why": why, "hex": data.hex(), "expect": expect})

    leaf_at = valid.index(LESSON)
    corrupt = bytearray(valid)
    corrupt[leaf_at] ^= 0x01
    add("a block whose bytes do not match its CID", bytes(corrupt), invalid="does not match its CID",
        entries_added=2, pinned=0, incomplete=1)
    add("truncated inside the last block", valid[:leaf_at + 5], invalid="truncated",
        entries_added=2, pinned=0, incomplete=1)
    e2_bad = codec.decode(e2.raw)
    e2_bad["sig"] = bytes([e2_bad["sig"][0] ^ 1]) + e2_bad["sig"][1:]
    e2_forged = records.FeedEntry(feed=e2.feed, seq=2, prev=e2.prev, time=e2.time,
                                  kind=e2.kind, body=e2.body, sig=e2_bad["sig"],
                                  raw=codec.encode(e2_bad))
    data, _ = build(a, [e1, e2_forged], [res])
    add("a feed entry with a bad signature", data, invalid="signature", entries_added=1,
        pinned=0, incomplete=0)
    evil_root, evil_files, evil_blocks, evil_size = content({"evil.txt": b"gotcha\n"},
                                                            {"evil.txt": "../evil.txt"})
    e2_evil = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 1, kind="resource.publish",
                                 body={"version": 1, "content": evil_root, "files": evil_files,
                                       "meta": META})
    data, _ = build(a, [e1, e2_evil], [(records.resource_id_of(e2_evil), 1, "evil", evil_root,
                                        evil_size, evil_blocks)])
    add("a path-escaping name in a UnixFS folder", data, invalid="unsafe name",
        entries_added=1, pinned=0, incomplete=0)
    lie_root, _, lie_blocks, lie_size = content({"other.txt": b"not the lesson\n"})
    e2_lie = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 1, kind="resource.publish",
                                body={"version": 1, "content": lie_root, "files": files,
                                      "meta": META})
    data, _ = build(a, [e1, e2_lie], [(records.resource_id_of(e2_lie), 1, "lie", lie_root,
                                       lie_size, lie_blocks)])
    add("a folder that does not match the signed file list", data,
        invalid="does not match the signed file list", entries_added=1, pinned=0, incomplete=0)
    e3 = records.sign_entry(a, seq=3, prev=e2.hash, time=T0 + 2, kind="resource.retract",
                            body={"resource": rid})
    data, _ = build(a, [e1, e3], [])
    add("a gap in a feed (entry 2 missing)", data, invalid="gap in feed", entries_added=1,
        pinned=0, incomplete=0)
    for why, raw in (("an index whose signature does not verify", codec.encode(flipped)),
                     ("an index signed by another school", resign(b, "bundle-index", m))):
        forged = bundle.BundleIndex(exporter=index.exporter, time=index.time, feeds=index.feeds,
                                    pages=index.pages, sig=codec.decode(raw)["sig"], raw=raw)
        data, _ = build(a, [e1, e2], [res], index=forged)
        add(why, data, refused="bundle index is not valid")
    plain = car.encode_header([root]) + b"".join(car.encode_section(c, d) for c, d in blocks)
    add("plain IPFS content (no index)", plain, refused="not a schoolmesh bundle")
    out["bad_bundles"] = bad
    fork = records.sign_entry(a, seq=2, prev=e1.hash, time=T0 + 5, kind="profile",
                              body={"name": "青山小学（新）", "role": "school"})
    data, _ = build(a, [e1, fork], [])
    out["equivocation"] = {"why": "after the valid bundle: another entry 2 of the same feed",
                           "hex": data.hex(), "entry_hash": fork.hash.hex()}
    out["plain_car"] = {"hex": plain.hex(), "root": cid_to_str(root),
                        "files": {"教案.md": LESSON.hex()}}
    sample = ipfs_car_sample()
    if sample:
        out["ipfs_car"] = sample
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
