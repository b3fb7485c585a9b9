"""Benchmark of the shared analytics store access (`bench store`)."""

import statistics
import time

from analytics.store import store


def _timed(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def bench_store(stdout, *, quick: bool = False) -> None:
    """Per-call open+query+close under the inter-process lock vs queries in one held session."""
    db = store()
    n = 10 if quick else 50
    db.ping()  # first open initializes the engine; not part of either figure
    short_lived = _timed(db.ping, n)
    with db.session():
        held = _timed(db.ping, n)
    med_short, med_held = statistics.median(short_lived), statistics.median(held)
    stdout.write(f"short-lived connection per query: median {med_short * 1000:.1f} ms over {n}")
    stdout.write(f"query in a held session: median {med_held * 1000:.2f} ms over {n}")
    stdout.write(
        f"store: {med_short * 1000:.1f} ms per short-lived query, ratio {med_short / med_held:.1f} vs held session"
    )


from platform_site.bench_ops import bench_ops  # noqa: E402

AREAS = {"store": bench_store, "ops": bench_ops}
