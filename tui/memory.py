"""How the app's own process hands memory back to the system.

The app is a long-lived process of ours whose analysis passes allocate and free arrays
of tens of megabytes. glibc's allocator raises its threshold for serving a block from a
mapping of its own each time such a block is freed (up to 32 MB), so the blocks after
that come from the heap, and once freed they stay in the process's resident memory: at
10M records the app held ~140 MB more after its passes than it used. :func:`settle`
fixes the threshold at 2 MB, so big arrays go back to the system when freed and the
small ones keep the heap's speed. On other C libraries it does nothing. Library code
(``features``, ``steering``) never does this: it is a visitor in someone else's process.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter (malloc.h)."""
THRESHOLD = 2 << 20


def settle() -> bool:
    """Fix glibc's mapping threshold at :data:`THRESHOLD` for this process; whether the C
    library took it."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
