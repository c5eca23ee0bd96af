"""glibc malloc settings for a process that moves bulk data (docs/py-libp2p.md).

A block on its way from the socket to the store passes through buffers of 64 KiB to 4 MiB
(the socket read, the Noise plaintext, the Yamux frame and stream buffer, the Bitswap message,
the block).  glibc serves such sizes with fresh ``mmap``\\ s, or from the top of the heap that
it gives back to the kernel as soon as 128 KiB there are free, so nearly every buffer is new
memory, and every 4 KiB page of it costs a page fault on first touch: a 256 MiB fetch on
loopback took 83,000 minor faults in the fetcher.  Serving sizes up to
:data:`MMAP_THRESHOLD` from the heap and keeping up to :data:`TRIM_THRESHOLD` of it free lets
the buffers reuse the same pages: 33,000 faults, and the fetch 10-15 % faster (bench/bitswap.py).
The cost is at most that much more resident memory per malloc arena while the process is idle.

Only on glibc (``mallopt`` is glibc's); elsewhere, and where ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` is set in the environment (an operator's choice), nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import platform

MMAP_THRESHOLD = 16 * 1024 * 1024   # sizes below this come from the heap, not their own mmap
TRIM_THRESHOLD = 32 * 1024 * 1024   # free memory at the top of a heap kept for reuse

_M_TRIM_THRESHOLD = -1   # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3

_done = False


def install() -> bool:
    """Apply the settings once per process; True if they are in effect."""
    global _done
    if _done:
        return True
    if platform.libc_ver()[0] != "glibc" or any(
            k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting the mmap threshold also ends glibc's dynamic one
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
