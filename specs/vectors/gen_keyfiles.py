"""Generate specs/vectors/keyfiles.json (kept in the repo, not run in CI).

    .venv/bin/python specs/vectors/gen_keyfiles.py > specs/vectors/keyfiles.json

Salt and nonce are fixed below, so the format 2 file is stable. The format 1 file is the one in
tests/data/key-v1-encrypted.pem (written by schoolmesh before format 2; PBKDF2 salts are
random, so it is copied, not regenerated). Negative cases each break one rule.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto import SchoolKey  # noqa: E402
from crypto.keys import KEY_FILE_LABEL  # noqa: E402

SEED = bytes(range(32))
PASSPHRASE = "校园网 correct horse"
SALT = bytes(range(0x10, 0x20))
NONCE = bytes(range(0x40, 0x4C))


def rearmour(pem: bytes, change) -> str:
    """The format 2 file with its decoded body changed by ``change(bytearray)``."""
    lines = pem.strip().splitlines()
    body = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    change(body)
    b64 = base64.b64encode(bytes(body))
    return b"\n".join([lines[0], *[b64[i:i + 64] for i in range(0, len(b64), 64)],
                       lines[-1], b""]).decode("ascii")


def main() -> None:
    key = SchoolKey.from_seed(SEED)
    pem = key.to_pem(PASSPHRASE.encode("utf-8"), salt=SALT, nonce=NONCE)

    def flip_last(b: bytearray) -> None:
        b[-1] ^= 1

    def version_3(b: bytearray) -> None:
        b[0] = 3

    def huge_n(b: bytearray) -> None:
        b[1] = 30  # n = 2**30: 128 GiB at r = 8

    out = {
        "generator": "specs/vectors/gen_keyfiles.py", "spec": "specs/records.md",
        "label": KEY_FILE_LABEL.decode("ascii"),
        "format2": {"seed": SEED.hex(), "school_id": key.school_id, "passphrase": PASSPHRASE,
                    "salt": SALT.hex(), "nonce": NONCE.hex(), "pem": pem.decode("ascii")},
        "format1": {"school_id": key.school_id, "passphrase": "legacy pass",
                    "pem": (ROOT / "tests/data/key-v1-encrypted.pem").read_text("ascii")},
        "bad": [
            {"why": "wrong passphrase", "error": "wrong passphrase",
             "passphrase": PASSPHRASE + "!", "pem": pem.decode("ascii")},
            {"why": "ciphertext changed", "error": "wrong passphrase",
             "passphrase": PASSPHRASE, "pem": rearmour(pem, flip_last)},
            {"why": "unknown version", "error": "format 3 is not supported",
             "passphrase": PASSPHRASE, "pem": rearmour(pem, version_3)},
            {"why": "scrypt memory over the limit", "error": "scrypt parameters out of range",
             "passphrase": PASSPHRASE, "pem": rearmour(pem, huge_n)},
            {"why": "base64 damaged", "error": "bad base64", "passphrase": PASSPHRASE,
             "pem": pem.decode("ascii").replace("\n", "\n*", 1)},
        ],
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
