"""Length-prefixed frames (unsigned LEB128 length, then the payload) as Bitswap and the
community protocol put them on a stream: a sans-IO decoder that cuts a byte stream into
payloads, joining received pieces once per frame."""

from __future__ import annotations

from .errors import RemoteProtocolError
from .varint import decode_uvarint, encode_uvarint


def encode_frame(payload: bytes) -> bytes:
    """Length-prefix one payload (the caller enforces its own size limit)."""
    return encode_uvarint(len(payload)) + payload


class FrameDecoder:
    """Cut a byte stream into messages: feed bytes with :meth:`receive_data`, then call
    :meth:`next_frame` until it returns None (needs more data).

    A length prefix above ``max_size`` is refused as soon as it is read, so at most one
    incomplete message (≤ ``max_size`` bytes plus what was fed past it) is ever buffered.
    Received pieces are kept as a list and joined once per message (appending to one growing
    buffer would copy it again and again).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._max_prefix = len(encode_uvarint(max_size))
        self._chunks: list[bytes] = []
        self._size = 0
        self._need = -1     # bytes of the current frame, prefix included; -1: prefix not read
        self._start = 0     # where the current frame's payload starts (after its prefix)

    @property
    def buffered(self) -> int:
        return self._size

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._chunks.append(bytes(data))
            self._size += len(data)

    def next_frame(self) -> memoryview | None:
        """The next complete message (a view of its bytes), or None if more data is needed."""
        if self._need < 0:
            if not self._size:
                return None
            head = self._chunks[0]
            if len(head) < self._max_prefix and len(self._chunks) > 1:
                head = self._chunks[0] = b"".join(self._chunks)
                del self._chunks[1:]
            for i in range(min(len(head), self._max_prefix)):
                if not head[i] & 0x80:
                    break
            else:
                if len(head) >= self._max_prefix:
                    raise RemoteProtocolError(f"message length exceeds {self.max_size} bytes")
                return None
            n, pos = decode_uvarint(head, 0)
            if n > self.max_size:
                raise RemoteProtocolError(f"message of {n} bytes exceeds {self.max_size}")
            self._need, self._start = pos + n, pos
        if self._size < self._need:
            return None
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        need, start = self._need, self._start
        rest = data[need:]
        self._chunks = [rest] if rest else []
        self._size = len(rest)
        self._need = -1
        return memoryview(data)[start:need]

    def end_of_stream(self) -> None:
        """The stream ended: raise if it stopped inside a message."""
        if self._size:
            raise RemoteProtocolError(f"stream ended inside a message ({self._size} bytes)")
