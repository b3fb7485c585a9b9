"""`bench store`: the shared analytics store access."""

import statistics

from analytics.store import store
from benchmarks.harness import time_calls


def bench_store(stdout, *, quick: bool = False) -> None:
    """A query that opens and closes the store (what a process pays when another one had it)
    vs a query on the connection its last statement left open (lingering) and in a session."""
    db = store()
    n = 10 if quick else 50
    db.ping()  # first open initializes the engine; not part of any figure

    def open_query_close():
        db.release()
        db.ping()
        db.release()

    short_lived = time_calls(open_query_close, n)
    lingering = time_calls(db.ping, n)
    with db.session():
        held = time_calls(db.ping, n)
    med_short, med_linger = statistics.median(short_lived), statistics.median(lingering)
    stdout.write(f"open, query, close: median {med_short * 1000:.1f} ms over {n}")
    stdout.write(f"query on the lingering connection: median {med_linger * 1000:.2f} ms over {n}")
    stdout.write(
        f"query in a held session: median {statistics.median(held) * 1000:.2f} ms over {n}"
    )
    stdout.write(
        f"store: {med_linger * 1000:.2f} ms per query on a lingering connection, ratio "
        f"{med_short / med_linger:.1f} vs opening and closing the store for it "
        f"({med_short * 1000:.1f} ms)"
    )
