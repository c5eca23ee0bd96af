"""The node: stores, library operations and (later) the trio runtime. Owns every file."""
