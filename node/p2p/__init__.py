"""Everything that touches py-libp2p lives here, so its quirks stay in one room (FACTS.md)."""
