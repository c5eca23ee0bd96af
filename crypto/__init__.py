"""Keys, signatures and content hashes. The only importer of ``cryptography``.

Nothing here does I/O except :func:`save_key` / :func:`load_key`, which read and write the key file.
"""

from .cid import (
    CID_DAG_PB,
    CID_RAW,
    BadCID,
    cid_codec,
    cid_digest,
    cid_from_str,
    cid_to_str,
    make_cid,
    sha256,
    verify_block,
)
from .keys import (
    BadKeyFile,
    BadSignature,
    PublicKey,
    SchoolKey,
    WeakPassphrase,
    WrongPassphrase,
    check_new_passphrase,
    load_key,
    loose_permissions,
    save_key,
    seal,
    unseal,
)

__all__ = [
    "BadCID", "BadKeyFile", "BadSignature", "CID_DAG_PB", "CID_RAW", "PublicKey", "SchoolKey",
    "WeakPassphrase", "WrongPassphrase", "check_new_passphrase", "cid_codec", "cid_digest",
    "cid_from_str", "cid_to_str", "load_key", "loose_permissions", "make_cid", "save_key",
    "seal", "sha256", "unseal", "verify_block",
]
