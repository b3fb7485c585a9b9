"""What every benchmark shares: timing, medians and percentiles, and the real servers and
workers a benchmark starts (a free port, the ASGI app in a thread, a Celery worker).

The servers and the worker are the ones the tests use (`testing.servers`); they are
re-exported here so that a benchmark needs this one module.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable

from testing.servers import celery_worker_running, free_port, serve_asgi_in_thread

__all__ = [
    "PeakMemory",
    "TimedCalls",
    "celery_worker_running",
    "free_port",
    "median_seconds",
    "percentile",
    "serve_asgi_in_thread",
    "time_calls",
]


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    """Seconds taken by each of `n` calls of `fn`."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def median_seconds(fn: Callable[[], object], n: int) -> float:
    """The median of `n` timed calls of `fn`, in seconds."""
    return statistics.median(time_calls(fn, n))


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 to 100) of `values`, interpolating linearly between the closest
    ranks (numpy's default method); a single value is its own percentile."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class TimedCalls:
    """Wraps an object (a cluster backend, say) and adds up the seconds spent in calls of its
    methods, so a benchmark times them from outside the code that makes them."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


class PeakMemory:
    """The most resident memory this process held above its level at the start, sampled every
    few milliseconds while the block runs (for an embedded engine, that is the query's peak)."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        import threading

        self.base = self.process.memory_info().rss
        self.peak_bytes = 0
        self.done = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()
        return self

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak_bytes = max(self.peak_bytes, self.process.memory_info().rss - self.base)
            self.done.wait(self.interval)

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.sampler.join()
        self.peak_bytes = max(self.peak_bytes, self.process.memory_info().rss - self.base)
