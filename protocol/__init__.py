"""Sans-IO protocol layer: records, canonical codec, UnixFS/dag-pb, validation rules, limits.

No trio, libp2p, sockets, files or clocks here: callers pass bytes and times in.
"""
