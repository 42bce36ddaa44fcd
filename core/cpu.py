"""Process settings for CPU work. Why each is what it is: benchmarks/README.md."""

from __future__ import annotations

import ctypes
import os
import platform


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory; True when it was set (glibc on Linux only).

    By default glibc serves every allocation over 32 MB with a fresh mmap, and its first
    touch page-faults, which costs more than the work done in it: so large blocks come from
    the heap (M_MMAP_MAX = 0) and up to 1 GiB of freed memory stays mapped
    (M_TRIM_THRESHOLD), and each photo reuses the last one's pages. Process-wide: only a
    program that owns its process (the command line, training) asks for it.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))
