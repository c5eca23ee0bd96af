"""Everything that touches py-libp2p lives here, so its quirks stay in one room
(docs/py-libp2p.md)."""
