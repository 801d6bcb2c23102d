"""How the process's C allocator treats freed memory, which decides the speed of large windows.

A window of a simulation allocates tensors of tens of MB (10 steps x 100 examples x 16 x 34 x 34
floats is 74 MB). glibc's malloc serves blocks above its mmap threshold (at most 32 MB) with a
fresh ``mmap`` and gives them back to the system when freed, so every window touches new pages,
and a page touched for the first time costs a fault: on this project's test machine (a virtual
machine) that made one window of 10 convolution steps 2.8x slower than ten windows of one step.
:func:`retain_freed_memory` raises the thresholds so freed blocks are kept and reused; the
numbers do not change, only where the memory comes from (``benchmarks/results/profile.md``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST = 2**31 - 1
"""The largest value mallopt takes (an int): blocks up to 2 GiB come from the reused heap."""


def retain_freed_memory() -> bool:
    """Ask glibc to serve blocks up to 2 GiB from its heap and to keep freed memory for reuse
    (``mallopt(M_MMAP_THRESHOLD)`` and ``mallopt(M_TRIM_THRESHOLD)``). The process then holds on
    to its peak memory. Returns whether it was applied (False off glibc, e.g. macOS, musl)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(libc.mallopt(M_TRIM_THRESHOLD, LARGEST))
