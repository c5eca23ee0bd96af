"""node/p2p/malloc_tuning.py: glibc's allocator set for bulk data, in a fresh process each (the
settings are process-wide)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="mallopt is glibc's; elsewhere install() changes nothing")

PROBE = """
import ctypes, resource, sys
from node.p2p import malloc_tuning
on = sys.argv[1] == "on" and malloc_tuning.install()
if on:
    assert malloc_tuning.install()              # idempotent
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for size in [(1 + i % 4) * 1024 * 1024 for i in range(200)]:  # 1-4 MiB buffers, as a transfer
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)                   # touch every page
    libc.free(p)
print(on, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(mode: str, **env: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env={**os.environ, **env},
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    on, faults = out.stdout.split()
    return on == "True", int(faults)


def test_buffers_of_a_transfer_reuse_their_pages_once_installed():
    on, tuned = _run("on")
    assert on
    off, default = _run("off")
    assert not off
    # 200 buffers of 1-4 MiB: glibc's defaults give most of them fresh pages (a fault per
    # 4 KiB), the tuned heap reuses the first ones' pages
    assert tuned * 2 < default, (tuned, default)


def test_an_operator_s_own_malloc_setting_is_left_alone():
    on, _ = _run("on", MALLOC_TRIM_THRESHOLD_="131072")
    assert not on
