"""The one way the benchmarks time a call: a warm-up, then the median of ``reps`` calls."""

from __future__ import annotations

import statistics
import time


def median_ms(function, reps: int) -> float:
    """Median wall time of ``function()`` in milliseconds, after one call that is not counted
    (oneDNN and onnxruntime pick and cache their kernels on the first call; tables fill, memory
    is first touched)."""
    function()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000
