"""School identity: one Ed25519 key, which is also the libp2p host key.

* ``school id`` = the libp2p peer id of the key: base58btc of the identity multihash of the
  protobuf-encoded libp2p ``PublicKey{Type: Ed25519, Data: 32 bytes}`` (libp2p peer-ids spec).
* Signatures are domain separated: the signed message is
  ``b"schoolmesh/v1/" + record_type + b"\\0" + canonical_bytes`` so a signature can never be
  replayed as another record type, nor as a libp2p signature (those never start with this prefix).
* The key file is PKCS#8 PEM (readable by openssl), encrypted with the passphrase when one is
  given, written atomically with mode 0600.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from functools import lru_cache

import base58
from cryptography.hazmat.primitives.asymmetric import ed25519

DOMAIN_PREFIX = b"schoolmesh/v1/"
# libp2p crypto.proto: KeyType Ed25519 = 1; field 1 (Type, varint), field 2 (Data, bytes).
_LIBP2P_ED25519_PUBKEY_PREFIX = b"\x08\x01\x12\x20"
# multihash "identity" (0x00) of the 36-byte protobuf: libp2p uses it for keys <= 42 bytes.
_IDENTITY_MULTIHASH_PREFIX = b"\x00\x24"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class BadSignature(Exception):
    """A signature did not verify for the given key, domain and bytes."""


class BadKeyFile(Exception):
    """The key file is missing, unreadable, or not a schoolmesh Ed25519 key."""


class WrongPassphrase(BadKeyFile):
    """The key file is encrypted and the passphrase is missing or wrong."""


def _signed_message(record_type: str, data: bytes) -> bytes:
    if not record_type or "\0" in record_type:
        raise ValueError("record_type must be a non-empty string without NUL")
    return DOMAIN_PREFIX + record_type.encode("ascii") + b"\0" + data


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key (32 raw bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != PUBLIC_KEY_SIZE:
            raise ValueError("an Ed25519 public key is exactly 32 bytes")

    @property
    def school_id(self) -> str:
        """The libp2p peer id string ("12D3KooW...")."""
        return _peer_id(self.raw)

    @classmethod
    def from_school_id(cls, school_id: str) -> PublicKey:
        """Recover the public key from a peer id; raises ValueError if it is not an Ed25519 id."""
        try:
            mh = base58.b58decode(school_id.encode("ascii"))
        except ValueError as exc:  # bad base58 characters (UnicodeEncodeError is one too)
            raise ValueError(f"not a school id: {school_id!r}") from exc
        prefix = _IDENTITY_MULTIHASH_PREFIX + _LIBP2P_ED25519_PUBKEY_PREFIX
        if len(mh) != len(prefix) + PUBLIC_KEY_SIZE or not mh.startswith(prefix):
            raise ValueError(f"not a school id (Ed25519 peer id expected): {school_id!r}")
        return cls(mh[len(prefix):])

    def verify(self, record_type: str, data: bytes, signature: bytes) -> None:
        """Raise :class:`BadSignature` unless ``signature`` signs ``data`` as ``record_type``."""
        if len(signature) != SIGNATURE_SIZE:
            raise BadSignature("signature must be 64 bytes")
        key = ed25519.Ed25519PublicKey.from_public_bytes(self.raw)
        try:
            key.verify(signature, _signed_message(record_type, data))
        except InvalidSignature:
            raise BadSignature(f"bad {record_type} signature") from None


@lru_cache(maxsize=4096)
def _peer_id(raw: bytes) -> str:
    # peer ids are bare base58btc (no multibase 'z') of the identity multihash
    mh = _IDENTITY_MULTIHASH_PREFIX + _LIBP2P_ED25519_PUBKEY_PREFIX + raw
    return base58.b58encode(mh).decode("ascii")


class SchoolKey:
    """A school's private key."""

    __slots__ = ("_key", "public")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> SchoolKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SchoolKey:
        """From the 32-byte Ed25519 seed (used for test vectors and the libp2p adapter)."""
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte seed; libp2p's ``Ed25519PrivateKey.new(seed)`` gives the same key."""
        return self._key.private_bytes_raw()

    @property
    def school_id(self) -> str:
        return self.public.school_id

    def sign(self, record_type: str, data: bytes) -> bytes:
        return self._key.sign(_signed_message(record_type, data))

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> SchoolKey:
        encrypted = b"ENCRYPTED PRIVATE KEY" in pem
        if encrypted and not passphrase:
            raise WrongPassphrase("the school key is encrypted: a passphrase is needed")
        try:
            key = serialization.load_pem_private_key(pem, passphrase if encrypted else None)
        except ValueError as exc:
            if encrypted:
                raise WrongPassphrase("wrong passphrase for the school key") from exc
            raise BadKeyFile(f"not a valid key file: {exc}") from exc
        except TypeError as exc:
            raise BadKeyFile(f"not a valid key file: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise BadKeyFile("the key file does not hold an Ed25519 key")
        return cls(key)


def save_key(path: Path, key: SchoolKey, passphrase: bytes | None = None) -> None:
    """Write the key atomically with mode 0600; refuse to overwrite an existing key."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"a key already exists at {path}")
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "its folder does not exist", str(path))
    data = key.to_pem(passphrase)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite a key
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(tmp)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_key(path: Path, passphrase: bytes | None = None) -> SchoolKey:
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise BadKeyFile(f"cannot read the school key {path}: {exc.strerror}") from exc
    return SchoolKey.from_pem(pem, passphrase)
