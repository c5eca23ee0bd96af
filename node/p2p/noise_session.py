"""Noise transport messages read in bulk (docs/py-libp2p.md).

py-libp2p's Noise session reads every transport message with two socket reads (its 2-byte
length, then its body, retried until whole), copies the body through a ``BytesIO`` and two
``bytearray``\\ s, and Yamux then reads its 12-byte header and each frame body from that one
message at a time: about five trips through trio per 64 KiB received.  This session keeps the
same wire format, cipher state and semantics, but reads what the socket has (up to
:data:`READ_CHUNK` bytes), decrypts every whole message in it at once, and serves reads from
the plaintext buffer.

:class:`NoiseTransport` is py-libp2p's Noise transport whose sessions are of this kind (the
handshake is py-libp2p's, untouched).  Writes are py-libp2p's.
"""

from __future__ import annotations

from typing import Any

from libp2p.io.exceptions import IncompleteReadError
from libp2p.security.noise.transport import Transport as _NoiseTransport
from libp2p.security.secure_session import SecureSession
from noise.exceptions import NoiseInvalidMessage, NoiseMaxNonceError

READ_CHUNK = 256 * 1024   # socket read size while no message is half received
_LEN = 2                  # Noise transport message length prefix (big-endian)


class BufferedSecureSession(SecureSession):
    """A SecureSession over Noise whose reads drain a buffer of decrypted messages.

    ``read(n)`` keeps SecureSession's contract: exactly ``n`` bytes, fewer only if the
    connection ends after some; ``read()`` returns what is buffered, or the next message.
    End of connection with nothing buffered raises IncompleteReadError (as the Noise reader
    does), a bad message the cipher's error.
    """

    def _adopt(self) -> None:
        rw = self.conn                                  # NoiseTransportReadWriter
        self._raw = rw.read_writer.read_write_closer    # RawConnection
        self._protocol = rw.noise_state.noise_protocol
        self._cipher = bytearray()   # received, not yet a whole message
        self._plain = bytearray()    # decrypted, not yet read
        self._pos = 0                # read offset in _plain

    async def _more(self) -> bool:
        """Read the socket once and decrypt the whole messages now buffered; False at the end
        of the connection."""
        buf = self._cipher
        data = await self._raw.read(READ_CHUNK)   # > one whole message (65,537 bytes)
        if not data:
            return False
        buf += data
        end = len(buf)
        off = 0
        plain = self._plain
        if self._pos and self._pos == len(plain):
            plain.clear()
            self._pos = 0
        with memoryview(buf) as view:   # released before buf is resized
            while end - off >= _LEN:
                size = (buf[off] << 8) | buf[off + 1]
                stop = off + _LEN + size
                if stop > end:
                    break
                plain += self._decrypt(view[off + _LEN:stop])
                off = stop
        if off:
            del buf[:off]
        if not buf:   # the bytes read so far end on a message boundary
            at_boundary = getattr(getattr(self._raw, "stream", None), "at_boundary", None)
            if at_boundary is not None:
                at_boundary()
        return True

    def _decrypt(self, message: memoryview) -> bytes:
        """NoiseConnection.decrypt without its copy (it takes only ``bytes``)."""
        try:
            return self._protocol.cipher_state_decrypt.decrypt_with_ad(None, message)
        except NoiseMaxNonceError:
            raise
        except Exception as exc:   # cryptography's InvalidTag (only crypto/ imports it)
            raise NoiseInvalidMessage("Failed authentication of message") from exc

    def _take(self, n: int) -> bytes:
        plain = self._plain
        start = self._pos
        stop = min(len(plain), start + n)
        with memoryview(plain) as view:   # one copy, released before plain is resized
            out = bytes(view[start:stop])
        self._pos = stop
        if stop == len(plain):
            plain.clear()
            self._pos = 0
        elif stop > 1024 * 1024:
            del plain[:stop]
            self._pos = 0
        return out

    def _eof(self, expected: int, received: int) -> IncompleteReadError:
        return IncompleteReadError(
            f"Connection closed during read operation: expected {expected} bytes but "
            f"received {received} bytes", expected_bytes=expected, received_bytes=received)

    async def read(self, n: int | None = None) -> bytes:
        if n == 0:
            return b""
        if n is None:
            while self._pos == len(self._plain):
                if not await self._more():
                    raise self._eof(_LEN, len(self._cipher))
            return self._take(len(self._plain))
        while len(self._plain) - self._pos < n:
            if not await self._more():
                have = len(self._plain) - self._pos
                if have:
                    return self._take(have)
                raise self._eof(_LEN, len(self._cipher))
        return self._take(n)


class NoiseTransport(_NoiseTransport):
    """py-libp2p's Noise transport (same handshake, same protocol id) with
    :class:`BufferedSecureSession` sessions."""

    async def secure_inbound(self, conn: Any) -> Any:
        return _buffered(await super().secure_inbound(conn))

    async def secure_outbound(self, conn: Any, peer_id: Any) -> Any:
        return _buffered(await super().secure_outbound(conn, peer_id))


def _buffered(session: Any) -> Any:
    if type(session) is SecureSession and getattr(session.conn, "noise_state", None):
        session.__class__ = BufferedSecureSession
        session._adopt()
    return session
