"""School identity: one Ed25519 key, which is also the libp2p host key.

* ``school id`` = the libp2p peer id of the key: base58btc of the identity multihash of the
  protobuf-encoded libp2p ``PublicKey{Type: Ed25519, Data: 32 bytes}`` (libp2p peer-ids spec).
* Signatures are domain separated: the signed message is
  ``b"schoolmesh/v1/" + record_type + b"\\0" + canonical_bytes`` so a signature can never be
  replayed as another record type, nor as a libp2p signature (those never start with this prefix).
* Key files (specs/records.md, "Key files"): without a passphrase PKCS#8 PEM (readable by
  openssl); with one, format 2: scrypt (memory-hard) + AES-256-GCM around the PKCS#8 bytes.
  Format 1 (PKCS#8 ``ENCRYPTED PRIVATE KEY``, PBKDF2 with 2,048 rounds, written before 2026-12)
  still loads. Written atomically with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import base58
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

DOMAIN_PREFIX = b"schoolmesh/v1/"
# libp2p crypto.proto: KeyType Ed25519 = 1; field 1 (Type, varint), field 2 (Data, bytes).
_LIBP2P_ED25519_PUBKEY_PREFIX = b"\x08\x01\x12\x20"
# multihash "identity" (0x00) of the 36-byte protobuf: libp2p uses it for keys <= 42 bytes.
_IDENTITY_MULTIHASH_PREFIX = b"\x00\x24"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

# Encrypted key files, format 2 (specs/records.md, "Key files").
KEY_FILE_VERSION = 2
KEY_FILE_LABEL = b"SCHOOLMESH ENCRYPTED PRIVATE KEY"
SCRYPT_LOG2_N = 17        # n = 2**17, r = 8, p = 1: 128 MiB, ~0.56 s on a 2-core machine (2026-12)
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_MEMORY = 256 * 2**20  # reading: a file asking scrypt for more memory is refused
MAX_SCRYPT_P = 4                 # ... and for more passes
SALT_SIZE = 16
NONCE_SIZE = 12
# version, log2(n), r, p, salt, nonce; the whole header is the AES-GCM associated data
_HEADER = struct.Struct(f">BBBB{SALT_SIZE}s{NONCE_SIZE}s")
MIN_PASSPHRASE_CHARS = 10  # new passphrases; keys encrypted earlier with shorter ones still load


class BadSignature(Exception):
    """A signature did not verify for the given key, domain and bytes."""


class BadKeyFile(Exception):
    """The key file is missing, unreadable, or not a schoolmesh Ed25519 key."""


class WrongPassphrase(BadKeyFile):
    """The key file is encrypted and the passphrase is missing or wrong."""


class WeakPassphrase(ValueError):
    """A new passphrase is too short."""


def check_new_passphrase(passphrase: bytes) -> None:
    """Refuse a new passphrase shorter than MIN_PASSPHRASE_CHARS characters (UTF-8)."""
    n = len(passphrase.decode("utf-8", errors="replace"))
    if n < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} "
                             f"characters (this one has {n})")


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

    def to_pem(self, passphrase: bytes | None = None, *, salt: bytes | None = None,
               nonce: bytes | None = None) -> bytes:
        """The key file: PKCS#8 PEM, or format 2 when a passphrase is given (``salt`` and
        ``nonce`` are random unless given, for test vectors)."""
        if not passphrase:
            return self._key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
        der = self._key.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        header = _HEADER.pack(KEY_FILE_VERSION, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P,
                              salt or os.urandom(SALT_SIZE), nonce or os.urandom(NONCE_SIZE))
        body = header + AESGCM(_derive(passphrase, header)).encrypt(
            header[-NONCE_SIZE:], der, header)
        b64 = base64.b64encode(body)
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return b"\n".join([b"-----BEGIN " + KEY_FILE_LABEL + b"-----", *lines,
                           b"-----END " + KEY_FILE_LABEL + b"-----", b""])

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> SchoolKey:
        """Load any key file format (plain PKCS#8, format 1, format 2)."""
        if b"-----BEGIN " + KEY_FILE_LABEL in pem:
            if not passphrase:
                raise WrongPassphrase("the school key is encrypted: a passphrase is needed")
            der = _open_v2(pem, passphrase)
            try:
                key = serialization.load_der_private_key(der, None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise BadKeyFile(f"not a valid key file: {exc}") from exc
        else:
            key = _load_pkcs8(pem, passphrase)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise BadKeyFile("the key file does not hold an Ed25519 key")
        return cls(key)


def seal(passphrase: bytes, plaintext: bytes, magic: bytes, *, salt: bytes | None = None,
         nonce: bytes | None = None) -> bytes:
    """``magic`` + the format 2 header + AES-256-GCM(scrypt(passphrase)) of ``plaintext``: the
    key file scheme (same header, KDF parameters and checks) for other secrets such as backups
    (specs/backup.md). The associated data is ``magic`` + header."""
    header = _HEADER.pack(KEY_FILE_VERSION, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P,
                          salt or os.urandom(SALT_SIZE), nonce or os.urandom(NONCE_SIZE))
    return magic + header + AESGCM(_derive(passphrase, header)).encrypt(
        header[-NONCE_SIZE:], plaintext, magic + header)


def unseal(data: bytes, passphrase: bytes, magic: bytes) -> bytes:
    """The plaintext of :func:`seal`; BadKeyFile if damaged, WrongPassphrase on a failed tag."""
    if not data.startswith(magic):
        raise BadKeyFile("not a schoolmesh backup file")
    body = data[len(magic):]
    if len(body) <= _HEADER.size:
        raise BadKeyFile("the file is too short")
    header = body[:_HEADER.size]
    _check_header(header)
    try:
        return AESGCM(_derive(passphrase, header)).decrypt(header[-NONCE_SIZE:],
                                                           body[_HEADER.size:], magic + header)
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase (or the file is damaged)") from None


def _check_header(header: bytes) -> None:
    """Refuse another version and scrypt parameters beyond the limits, before running scrypt."""
    version, log2_n, r, p, _salt, _nonce = _HEADER.unpack(header)
    if version != KEY_FILE_VERSION:
        raise BadKeyFile(f"format {version} is not supported (this version reads "
                         f"format {KEY_FILE_VERSION})")
    if not (1 <= log2_n < 64 and 1 <= r and 1 <= p <= MAX_SCRYPT_P
            and 128 * r * 2 ** log2_n <= MAX_SCRYPT_MEMORY):
        raise BadKeyFile(f"scrypt parameters out of range (n=2^{log2_n}, r={r}, p={p})")


def _derive(passphrase: bytes, header: bytes) -> bytes:
    _version, log2_n, r, p, salt, _nonce = _HEADER.unpack(header)
    return Scrypt(salt=salt, length=32, n=2 ** log2_n, r=r, p=p).derive(passphrase)


def _open_v2(pem: bytes, passphrase: bytes) -> bytes:
    """The PKCS#8 DER inside a format 2 file."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0].strip() != b"-----BEGIN " + KEY_FILE_LABEL + b"-----" \
            or lines[-1].strip() != b"-----END " + KEY_FILE_LABEL + b"-----":
        raise BadKeyFile("not a valid key file: damaged PEM armour")
    try:
        body = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadKeyFile(f"not a valid key file: bad base64 ({exc})") from None
    if len(body) <= _HEADER.size:
        raise BadKeyFile("not a valid key file: too short")
    header = body[:_HEADER.size]
    nonce = header[-NONCE_SIZE:]
    try:
        _check_header(header)
    except BadKeyFile as exc:
        raise BadKeyFile(f"not a valid key file: {exc}") from None
    try:
        return AESGCM(_derive(passphrase, header)).decrypt(nonce, body[_HEADER.size:], header)
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase for the school key "
                              "(or the key file is damaged)") from None


def _load_pkcs8(pem: bytes, passphrase: bytes | None) -> object:
    """Plain PKCS#8 PEM, or format 1 (PKCS#8 ENCRYPTED PRIVATE KEY)."""
    encrypted = b"ENCRYPTED PRIVATE KEY" in pem
    if encrypted and not passphrase:
        raise WrongPassphrase("the school key is encrypted: a passphrase is needed")
    try:
        return serialization.load_pem_private_key(pem, passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise WrongPassphrase("wrong passphrase for the school key") from exc
        raise BadKeyFile(f"not a valid key file: {exc}") from exc
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise BadKeyFile(f"not a valid key file: {exc}") from exc


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
    """Load a key file; errors other than a missing or wrong passphrase name the file."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise BadKeyFile(f"cannot read the school key {path}: {exc.strerror}") from exc
    try:
        return SchoolKey.from_pem(pem, passphrase)
    except WrongPassphrase:
        raise
    except BadKeyFile as exc:
        raise BadKeyFile(f"{path}: {exc}") from exc


def loose_permissions(path: Path) -> bool:
    """True if others than the owner may read or write the key file (group/other bits)."""
    return bool(os.stat(path).st_mode & 0o077)
