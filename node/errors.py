"""Errors the node reports to its callers (the CLI turns them into one-line messages)."""


class NodeError(Exception):
    """Root of node errors: a plain sentence for the operator."""


class HomeError(NodeError):
    """The node's home is missing, already exists, or is unusable."""


class NotFound(NodeError):
    """No such resource, CID, or school."""


class StoreError(NodeError):
    """The block store cannot read or write (disk full, permissions, corruption)."""


class CorruptBlock(StoreError):
    """A stored block no longer matches its CID."""
