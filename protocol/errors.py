"""One root error; local misuse vs. bad data from outside (h11's split)."""


class ProtocolError(Exception):
    """Root of every error raised by ``protocol/``."""


class LocalProtocolError(ProtocolError):
    """We were asked to build something invalid (bad metadata, bad path, oversize...)."""


class RemoteProtocolError(ProtocolError):
    """Bytes from outside (a peer, a bundle, the disk) are invalid: never trust them."""
