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


class DiskFull(StoreError):
    """The disk (or the database on it) is full: nothing was changed."""

    def __init__(self, message: str = "the disk is full: free some space and try again "
                 "('schoolmesh gc' removes blocks nothing needs)") -> None:
        super().__init__(message)
