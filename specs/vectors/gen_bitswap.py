"""Generate specs/vectors/bitswap.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_bitswap.py > specs/vectors/bitswap.json

Positive vectors are encoded by implementations other than ours, so the tests check our codec
against them rather than against itself:
* "protobuf": Google's protobuf runtime with the Bitswap schema that py-libp2p ships
  (``libp2p/bitswap/pb/bitswap_pb2.py``, same field numbers and types as boxo's
  ``message.proto``).  proto3 leaves default values out, as our encoder does, so these are
  also our canonical encodings (``canonical: true``).
* "helia": @helia/bitswap's own protons encoder (tests/js/node_modules), which writes
  ``optional`` fields even when false; our decoder must accept them (``canonical: false``).
Negative vectors are built by hand, each breaking one rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from crypto import CID_DAG_PB, CID_RAW, cid_to_str, make_cid  # noqa: E402
from protocol.varint import encode_uvarint  # noqa: E402

HELLO = b"hello schools"
NODE = bytes.fromhex("0a020801")  # a UnixFS directory node with no links
CID_HELLO = make_cid(CID_RAW, HELLO)
CID_EMPTY = make_cid(CID_RAW, b"")
CID_NODE = make_cid(CID_DAG_PB, NODE)
CIDV0_NODE = CID_NODE[2:]  # the same block named by a CIDv0 (a bare sha2-256 multihash)

HELIA_SCRIPT = r"""
import path from 'node:path'
import { pathToFileURL } from 'node:url'
const dir = process.argv[1]
const { BitswapMessage, WantType, BlockPresenceType } = await import(pathToFileURL(
  path.join(dir, 'node_modules/@helia/bitswap/dist/src/pb/message.js')).href)
const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'))
const input = JSON.parse(process.argv[2])
const out = {}
out.wantlist = Buffer.from(BitswapMessage.encode({
  wantlist: { full: false, entries: input.wants.map(c => ({
    cid: hex(c), priority: 1, cancel: false, wantType: WantType.WantBlock, sendDontHave: true })) },
  blocks: [], blockPresences: [] })).toString('hex')
out.cancel = Buffer.from(BitswapMessage.encode({
  wantlist: { entries: [{ cid: hex(input.wants[0]), priority: 1, cancel: true }] },
  blocks: [], blockPresences: [] })).toString('hex')
out.reply = Buffer.from(BitswapMessage.encode({
  blocks: [{ prefix: hex(input.prefix), data: hex(input.data) }],
  blockPresences: [{ cid: hex(input.absent), type: BlockPresenceType.DoNotHaveBlock },
                   { cid: hex(input.wants[0]), type: BlockPresenceType.HaveBlock }],
  pendingBytes: 0 })).toString('hex')
console.log(JSON.stringify(out))
"""


def pb_vectors() -> list[dict]:
    from libp2p.bitswap.pb import bitswap_pb2 as pb
    M = pb.Message
    WL = M.Wantlist

    def entry(cid: bytes, **kw: object) -> object:
        return WL.Entry(block=cid, **kw)

    cases = [
        ("want-block-and-have", "two wants: a block (with sendDontHave) and a presence",
         M(wantlist=WL(entries=[entry(CID_HELLO, priority=1, sendDontHave=True),
                                entry(CID_NODE, priority=7, wantType=WL.Have)]))),
        ("cancel", "cancel one want",
         M(wantlist=WL(entries=[entry(CID_HELLO, priority=1, cancel=True)]))),
        ("full-wantlist", "the wantlist replaces the previous one",
         M(wantlist=WL(full=True, entries=[entry(CID_NODE, priority=1)]))),
        ("cidv0-want", "a want naming a block by CIDv0",
         M(wantlist=WL(entries=[entry(CIDV0_NODE, priority=1, sendDontHave=True)]))),
        ("negative-priority", "priority -1: an int32 written as a 10-byte varint",
         M(wantlist=WL(entries=[entry(CID_HELLO, priority=-1)]))),
        ("payload", "two blocks with CID prefixes, one of them empty",
         M(payload=[M.Block(prefix=CID_HELLO[:4], data=HELLO),
                    M.Block(prefix=CID_EMPTY[:4], data=b""),
                    M.Block(prefix=CID_NODE[:4], data=NODE)])),
        ("presences", "HAVE and DONT_HAVE, and pendingBytes",
         M(blockPresences=[M.BlockPresence(cid=CID_HELLO, type=M.Have),
                           M.BlockPresence(cid=CID_NODE, type=M.DontHave)],
           pendingBytes=1234)),
        ("v1.0.0-blocks", "Bitswap 1.0.0: raw block data in field 2, CIDv0 implied",
         M(blocks=[NODE])),
        ("empty", "an empty message", M()),
    ]
    return [{"name": n, "description": d, "encoder": "protobuf",
             "canonical": n != "v1.0.0-blocks", "hex": m.SerializeToString(deterministic=True).hex(),
             "expect": expect_pb(m)} for n, d, m in cases]


def expect_pb(m: object) -> dict:
    """What a decoder must find in ``m``, read back through protobuf's own accessors."""
    blocks = [{"prefix": b.prefix.hex(), "data": b.data.hex()} for b in m.payload]
    blocks += [{"prefix": "00701220", "data": b.hex()} for b in m.blocks]  # 1.0.0: CIDv0
    return {
        "wantlist": [{"cid": e.block.hex(), "priority": e.priority, "cancel": e.cancel,
                      "want_type": e.wantType, "send_dont_have": e.sendDontHave}
                     for e in m.wantlist.entries],
        "full": m.wantlist.full,
        "blocks": blocks,
        "presences": [{"cid": p.cid.hex(), "type": p.type} for p in m.blockPresences],
        "pending_bytes": m.pendingBytes,
    }


def expect(wantlist: list | None = None, blocks: list | None = None,
           presences: list | None = None) -> dict:
    return {"wantlist": wantlist or [], "full": False, "blocks": blocks or [],
            "presences": presences or [], "pending_bytes": 0}


def helia_vectors() -> list[dict]:
    js = REPO / "tests" / "js"
    arg = json.dumps({"wants": [CID_HELLO.hex(), CID_NODE.hex()], "prefix": CID_HELLO[:4].hex(),
                      "data": HELLO.hex(), "absent": CID_EMPTY.hex()})
    out = subprocess.run(["node", "--input-type=module", "-e", HELIA_SCRIPT, str(js), arg],
                         capture_output=True, text=True, check=True, cwd=js)
    enc = json.loads(out.stdout)

    def want(cid: bytes, cancel: bool = False, send_dont_have: bool = True) -> dict:
        return {"cid": cid.hex(), "priority": 1, "cancel": cancel, "want_type": 0,
                "send_dont_have": send_dont_have}
    return [
        {"name": "helia-wantlist", "description": "Helia's wants: optional fields written "
         "even when false", "encoder": "helia", "canonical": False, "hex": enc["wantlist"],
         "expect": expect(wantlist=[want(CID_HELLO), want(CID_NODE)])},
        {"name": "helia-cancel", "description": "Helia's cancel", "encoder": "helia",
         "canonical": False, "hex": enc["cancel"],
         "expect": expect(wantlist=[want(CID_HELLO, cancel=True, send_dont_have=False)])},
        {"name": "helia-reply", "description": "Helia's reply: a block and two presences",
         "encoder": "helia", "canonical": False, "hex": enc["reply"],
         "expect": expect(blocks=[{"prefix": CID_HELLO[:4].hex(), "data": HELLO.hex()}],
                          presences=[{"cid": CID_EMPTY.hex(), "type": 1},
                                     {"cid": CID_HELLO.hex(), "type": 0}])},
    ]


def negative_vectors() -> list[dict]:
    def field(tag: int, payload: bytes) -> bytes:
        return encode_uvarint(tag) + encode_uvarint(len(payload)) + payload

    entry = field(0x0A, CID_HELLO)
    return [
        {"name": "truncated-field", "error": "truncated",
         "hex": (b"\x0a\x10" + field(0x0A, entry)).hex()},
        {"name": "wire-type-3", "error": "wire type", "hex": b"\x0b".hex()},
        {"name": "unknown-want-type", "error": "want type",
         "hex": field(0x0A, field(0x0A, entry + b"\x20\x07")).hex()},
        {"name": "entry-without-cid", "error": "CID", "hex": field(0x0A, field(0x0A, b"\x10\x01")).hex()},
        {"name": "unknown-presence-type", "error": "presence type",
         "hex": field(0x22, field(0x0A, CID_HELLO) + b"\x10\x02").hex()},
        {"name": "block-without-prefix", "error": "prefix", "hex": field(0x1A, field(0x12, HELLO)).hex()},
        {"name": "pending-bytes-not-int32", "error": "int32",
         "hex": (b"\x28" + encode_uvarint(1 << 40)).hex()},
        {"name": "non-minimal-varint", "error": "non-minimal", "hex": b"\x28\x81\x00".hex()},
        {"name": "field-number-0", "error": "field number 0", "hex": b"\x02\x00".hex()},
        {"name": "wantlist-as-varint", "error": "wire type", "hex": b"\x08\x01".hex()},
    ]


def frame_vectors(messages: list[dict]) -> dict:
    """A stream carrying every positive message in turn, each behind its varint length."""
    msgs = [bytes.fromhex(m["hex"]) for m in messages]
    stream = b"".join(encode_uvarint(len(m)) + m for m in msgs)
    return {
        "stream": {"description": "every message above, in order, on one stream",
                   "hex": stream.hex(), "messages": [m["name"] for m in messages]},
        "bad": [
            {"name": "length-over-4MiB", "error": "exceeds",
             "hex": encode_uvarint(4 * 1024 * 1024 + 1).hex()},
            {"name": "length-prefix-too-long", "error": "exceeds", "hex": "8080808080"},
            {"name": "non-minimal-length", "error": "non-minimal", "hex": "8000"},
        ],
    }


def main() -> None:
    out = {
        "generator": "specs/vectors/gen_bitswap.py",
        "spec": "specs/bitswap.md",
        "cids": {"hello": cid_to_str(CID_HELLO), "empty": cid_to_str(CID_EMPTY),
                 "node": cid_to_str(CID_NODE), "hello_data_hex": HELLO.hex(),
                 "node_data_hex": NODE.hex()},
        "messages": (messages := pb_vectors() + helia_vectors()),
        "bad_messages": negative_vectors(),
        "frames": frame_vectors(messages),
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
