"""Log lines caused by remote peers, bounded: a hostile or broken peer cannot grow the log.

Each (peer, kind) gets one line per window; repeats inside the window are counted, and the
count is reported in one line when that peer causes the same kind again after the window.
Each kind also has a budget of lines per window across all peers (a peer can change its
identity cheaply), beyond which lines are counted per kind.  Memory is bounded too: at most
``max_keys`` (peer, kind) pairs are remembered, the oldest forgotten first.

Each service owns its own ``PeerLog`` (no module-level state); the clock is injectable so the
rules are testable without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WINDOW_S = 600.0          # one line per peer and kind per ten minutes
LINES_PER_KIND = 50       # lines per kind per window, all peers together
MAX_KEYS = 2048           # (peer, kind) pairs remembered


@dataclass(slots=True)
class _Window:
    until: float
    suppressed: int = 0


class PeerLog:
    def __init__(self, logger: logging.Logger, *, window: float = WINDOW_S,
                 lines_per_kind: int = LINES_PER_KIND, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.window = window
        self.lines_per_kind = lines_per_kind
        self.max_keys = max_keys
        self.clock = clock
        self._peers: dict[tuple[str, str], _Window] = {}
        self._kinds: dict[str, tuple[_Window, int]] = {}   # kind -> (window, lines logged)

    def warning(self, peer: Any, kind: str, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, peer, kind, msg, *args)

    def info(self, peer: Any, kind: str, msg: str, *args: Any) -> None:
        self.log(logging.INFO, peer, kind, msg, *args)

    def log(self, level: int, peer: Any, kind: str, msg: str, *args: Any) -> None:
        """Log ``msg % args`` unless ``peer`` already caused a ``kind`` line this window."""
        if not self.logger.isEnabledFor(level):
            return
        now = self.clock()
        key = (str(peer), kind)
        w = self._peers.get(key)
        if w is not None and now < w.until:
            w.suppressed += 1
            return
        if w is not None and w.suppressed:
            self.logger.log(level, "%s: %d more from %s in the last %.0f s (not logged)",
                            kind, w.suppressed, key[0], self.window)
        self._peers.pop(key, None)
        self._peers[key] = _Window(until=now + self.window)
        while len(self._peers) > self.max_keys:
            del self._peers[next(iter(self._peers))]
        if not self._kind_budget(level, kind, now):
            return
        self.logger.log(level, msg, *args)

    def _kind_budget(self, level: int, kind: str, now: float) -> bool:
        w, lines = self._kinds.get(kind, (None, 0))
        if w is None or now >= w.until:
            if w is not None and w.suppressed:
                self.logger.log(level, "%s: %d more lines from other peers in the last %.0f s"
                                " (not logged)", kind, w.suppressed, self.window)
            w, lines = _Window(until=now + self.window), 0
        if lines >= self.lines_per_kind:
            w.suppressed += 1
            self._kinds[kind] = (w, lines)
            return False
        self._kinds[kind] = (w, lines + 1)
        return True
