"""The teacher web library: search, preview, stream, download, publish, requests, feedback.

Served by the daemon on the school LAN (``schoolmesh start --web HOST:PORT``); see specs/web.md.
"""
