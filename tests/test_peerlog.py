"""Warnings caused by remote peers are bounded (node/peerlog.py): one line per peer and kind
per window, then a count; a budget per kind across peers; bounded memory."""

from __future__ import annotations

import logging

from node.peerlog import PeerLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(caplog, **kw) -> tuple[PeerLog, Clock]:
    caplog.set_level(logging.INFO, logger="test.peerlog")
    clock = Clock()
    return PeerLog(logging.getLogger("test.peerlog"), clock=clock, **kw), clock


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.peerlog"]


def test_one_line_per_peer_and_kind_then_a_count(caplog):
    plog, clock = make(caplog, window=60)
    for i in range(10_000):
        plog.warning("peerA", "bad message", "bad message from %s: #%d", "peerA", i)
    plog.warning("peerB", "bad message", "bad message from %s", "peerB")
    plog.warning("peerA", "stream failed", "stream with %s failed", "peerA")
    assert lines(caplog) == ["bad message from peerA: #0", "bad message from peerB",
                             "stream with peerA failed"]
    clock.now = 61
    plog.warning("peerA", "bad message", "bad message from %s: #%d", "peerA", 10_000)
    assert lines(caplog)[3:] == ["bad message: 9999 more from peerA in the last 60 s (not logged)",
                                 "bad message from peerA: #10000"]


def test_a_peer_changing_identity_hits_the_kind_budget(caplog):
    plog, clock = make(caplog, window=60, lines_per_kind=5)
    for i in range(1_000):
        plog.warning(f"peer{i}", "bad head", "bad head from peer%d", i)
    assert len(lines(caplog)) == 5
    clock.now = 61
    plog.warning("peerX", "bad head", "bad head from peerX")
    assert lines(caplog)[5:] == ["bad head: 995 more lines from other peers in the last 60 s "
                                 "(not logged)", "bad head from peerX"]


def test_memory_is_bounded(caplog):
    plog, _ = make(caplog, max_keys=100, lines_per_kind=10**9)
    for i in range(10_000):
        plog.info(f"peer{i}", "refused", "refused %d", i)
    assert len(plog._peers) == 100
    assert len(lines(caplog)) == 10_000   # every new peer gets its line, none is lost silently


def test_disabled_levels_cost_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="test.peerlog")
    plog = PeerLog(logging.getLogger("test.peerlog"))
    plog.info("p", "k", "never")
    assert plog._peers == {} and lines(caplog) == []
