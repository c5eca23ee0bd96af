"""`make demo` is the product's main story: it must keep passing (separate processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_story_passes():
    res = subprocess.run([sys.executable, "-m", "cli.demo"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    for line in ("joined ", "error: the seed refused the invite: used",
                 "pinned by the demonstration school",
                 "byte-identical to samples/ although the publisher is offline",
                 "the lessons of the next two weeks are on Shiling's node",
                 "computed from 3 feeds", "feed heads",
                 "All steps passed."):
        assert line in out, line
