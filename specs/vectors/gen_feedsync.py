"""Generate specs/vectors/feedsync.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_feedsync.py > specs/vectors/feedsync.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crypto import SchoolKey  # noqa: E402
from protocol import codec, feedsync  # noqa: E402


def main() -> None:
    key = SchoolKey.from_seed(bytes(range(32)))
    f = key.public.raw
    msgs = [
        feedsync.HeadsRequest(feeds=(f,)),
        feedsync.Heads(heads=(feedsync.Head(feed=f, seq=4, hash=bytes(range(32))),)),
        feedsync.EntriesRequest(feed=f, after=1, limit=256),
        feedsync.Entries(feed=f, entries=(b"\x01\x02",), more=False),
        feedsync.Error(code="bad-request", message="expected heads? or entries?"),
    ]
    head = feedsync.sign_head(key, seq=4, hash=bytes(range(32)), time=1_763_900_000_000)
    m = codec.decode(head.raw)
    from protocol import records
    e1 = records.sign_entry(key, seq=1, prev=None, time=1, kind="profile",
                            body={"name": "x", "role": "school"})
    carrying = feedsync.sign_head(key, seq=1, hash=e1.hash, time=2, entry=e1.raw)
    # a hostile member signs a head of its own feed whose hash is another school's entry
    other = SchoolKey.from_seed(bytes(range(1, 33)))
    smuggling = feedsync.sign_head(other, seq=1, hash=e1.hash, time=2, entry=e1.raw)
    wrong_seq = feedsync.sign_head(key, seq=2, hash=e1.hash, time=2, entry=e1.raw)
    out = {
        "generator": "specs/vectors/gen_feedsync.py", "spec": "specs/feedsync.md",
        "seed": key.seed.hex(),
        "frames": [{"t": x.to_msg()["t"], "hex": feedsync.encode_frame(x.to_msg()).hex()}
                   for x in msgs],
        "bad_frames": [
            {"why": "length over 4 MiB", "hex": "8180808002"},
            {"why": "length varint too long", "hex": "ffffffffffffff"},
            {"why": "body is not a map", "hex": "029101"},
            {"why": "unknown message type", "hex": feedsync.encode_frame({"t": "x"}).hex()},
            {"why": "limit above 256", "hex": feedsync.encode_frame(
                {"t": "entries?", "feed": f, "after": 0, "limit": 257}).hex()},
        ],
        "head": {"hex": head.raw.hex(), "seq": 4, "time": 1_763_900_000_000},
        "head_with_entry": {"hex": carrying.raw.hex(), "entry": e1.raw.hex()},
        "bad_heads": [
            {"why": "seq changed after signing", "hex": codec.encode({**m, "seq": 5}).hex()},
            {"why": "unknown version", "hex": codec.encode({**m, "v": 2}).hex()},
            {"why": "extra field", "hex": codec.encode({**m, "x": 1}).hex()},
            {"why": "carried entry does not hash to the head",
             "hex": codec.encode({**codec.decode(carrying.raw), "entry": b"forged"}).hex()},
            {"why": "carried entry is another feed's (hash matches)", "hex": smuggling.raw.hex()},
            {"why": "carried entry is another seq's (hash matches)", "hex": wrong_seq.raw.hex()},
        ],
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
