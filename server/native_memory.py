"""Give freed memory back to the system (glibc). The server's big arrays are short-lived: the
workspace token table's sort temporaries (tens of MB, every 30 s while files change) and the KV
caches of each request. glibc's default raises its mmap threshold to the size of each large block
freed (up to 32 MB), so from the second rebuild on those arrays came from the heap and stayed
there: a large workspace took the server from 584 to 655 MB in minutes of typing. A fixed
threshold keeps every block over it in its own mapping, returned the moment it is freed
(bench/soak.py: the same session plateaus at 400 MB). Elsewhere (macOS, Windows, musl) nothing
is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter; setting it also stops the dynamic adjustment
MMAP_THRESHOLD_BYTES = 256 * 1024


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl has no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    if not done:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused: freed memory may stay with the server")
    return done
