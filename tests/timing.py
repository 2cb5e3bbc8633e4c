"""CPU-time measurement for the tests that bound growth (never a benchmark: see benchmarks/).

``cpu_seconds`` is the best of a few runs in process CPU time (other processes on a shared
machine do not count) with the cyclic garbage collector paused, as ``timeit`` does: its passes
over every live object grow with the heap, not with the algorithm being measured.

``confirmed`` is how a timing bound fails: a measurement that breaks the bound is taken once
more before the test fails, because a loaded 2-core CI machine occasionally stretches one run;
a real superlinear cost breaks the bound both times.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cpu_seconds(work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            work()
            best = min(best, time.process_time() - start)
        finally:
            gc.enable()
    return best


def confirmed(measure: Callable[[], T], holds: Callable[[T], bool]) -> T:
    """``measure()``; when its result breaks ``holds``, the result of a second ``measure()``."""
    first = measure()
    return first if holds(first) else measure()
