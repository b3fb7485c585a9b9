"""Benchmark areas of the analytics app (`manage.py bench <area> [--quick]`)."""

import shutil
import tempfile
import time

from analytics.store import store_for_url
from analytics.store.migrate import store_migrate


def scratch_store():
    """A fresh embedded store in a temporary directory (benchmarks never touch real data)."""
    path = tempfile.mkdtemp(prefix="bench_store_")
    db = store_for_url(f"chdb://{path}/chdb")
    store_migrate(target=db)
    return db, path


def bench_generate(stdout, *, quick: bool = False) -> None:
    """generate_events speed (goal: 10 M events < 60 s) vs the store's own copy rate."""
    from analytics.generator import GenerationSpec, generate

    users = 12_000 if quick else 120_000
    db, path = scratch_store()
    try:
        result = generate(GenerationSpec(users=users, months=12, seed=1), db=db)
        stdout.write(
            f"generated {result.events:,} events for {users:,} users in {result.seconds:.1f} s "
            f"({result.events_per_second:,.0f} events/s)"
        )
        with db.session():
            db.command("CREATE TABLE events_copy AS events")
            started = time.perf_counter()
            db.command(
                "INSERT INTO events_copy (uuid, event, user_id, timestamp, properties, "
                "session_id, user_agent) SELECT uuid, event, user_id, timestamp, properties, "
                "session_id, user_agent FROM events"
            )
            copy_rate = result.events / (time.perf_counter() - started)
        stdout.write(f"store copy of the same rows (INSERT ... SELECT): {copy_rate:,.0f} events/s")
        per_10m = 10_000_000 / result.events_per_second
        stdout.write(f"projected time for 10 M events: {per_10m:.0f} s (goal < 60 s)")
        stdout.write(
            f"generate: {result.events_per_second:,.0f} events/s, "
            f"ratio {result.events_per_second / copy_rate:.2f} vs store copy rate"
        )
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bench_ml(stdout, *, quick: bool = False) -> None:
    from analytics.ml.bench import bench_ml as run

    run(stdout, quick=quick)


AREAS = {"generate": bench_generate, "ml": bench_ml}
