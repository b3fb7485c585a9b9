"""`bench store`: the shared analytics store access."""

import statistics
import time

from django.conf import settings

from analytics.store import store
from analytics.store.base import rows_to_json_each_row
from benchmarks.harness import time_calls


def bench_store(stdout, *, quick: bool = False) -> None:
    """A query that opens and closes the embedded store (what a process pays when another one
    had it) vs a query on the connection its last statement left open (lingering) and in a
    session; then the embedded and the server paths side by side (`store_paths`)."""
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
        f"embedded store: {med_linger * 1000:.2f} ms per query on a lingering connection, "
        f"{med_short / med_linger:.1f}x faster than opening and closing the store for it "
        f"({med_short * 1000:.1f} ms)"
    )
    store_paths(stdout, quick=quick)


def store_paths(stdout, *, quick: bool = False) -> None:
    """The embedded store and the server path side by side on the same data: insert rows/s
    (the events writer's batches of JSONEachRow, rollups included) and the analyses' query
    p50/p95. The server is the loopback emulator of ClickHouse's HTTP interface (testing/):
    clickhouse-connect, HTTP and the real engine in another process are measured, a real
    server's own speed (its threads, its disks) is not."""
    import shutil

    from django.test.utils import override_settings

    from analytics.simulation import generate
    from analytics.store import store_for_url
    from analytics.store.cache import cache_invalidate
    from analytics.store.migrate import store_migrate
    from benchmarks.analytics_queries import bench_analyses, bench_spec
    from benchmarks.harness import percentile
    from core.embedded import ensure_embedded_redis
    from testing.clickhouse_server import ClickHouseEmulator

    ensure_embedded_redis()
    root = settings.VAR_DIR / "bench-store-paths"
    shutil.rmtree(root, ignore_errors=True)
    spec, start, end = bench_spec(2_000 if quick else 25_000)
    source = store_for_url(f"chdb://{root / 'source'}")
    store_migrate(target=source)
    generate(spec, db=source)
    columns = "uuid, event, user_id, timestamp, properties, session_id, user_agent, ip"
    batches, offset = [], 0
    while True:
        rows = source.query(
            f"SELECT {columns} FROM events ORDER BY timestamp, uuid LIMIT 50000 OFFSET {offset}"
        )
        if not rows:
            break
        batches.append(rows_to_json_each_row(rows))
        offset += len(rows)
    users = source.query("SELECT * FROM users")
    source.release()
    stdout.write(f"{offset:,} simulated events in {len(batches)} batches of up to 50,000")

    results = {}
    with ClickHouseEmulator(root / "server") as emulator:
        for name, url in (
            ("embedded", f"chdb://{root / 'embedded'}"),
            ("server", emulator.url),
        ):
            db = store_for_url(url)
            store_migrate(target=db)
            db.insert("users", users)
            started = time.perf_counter()
            for payload in batches:
                db.insert_json_each_row("events", payload)
            rate = offset / (time.perf_counter() - started)
            with override_settings(CLICKHOUSE_URL=url):
                times = []
                for analysis in bench_analyses(start, end).values():
                    for _ in range(7 if quick else 15):
                        cache_invalidate()
                        began = time.perf_counter()
                        analysis()
                        times.append(time.perf_counter() - began)
            results[name] = (rate, percentile(times, 50), percentile(times, 95))
            stdout.write(
                f"{name} ({emulator.engine_version if name == 'server' else 'chdb'}): insert "
                f"{rate:,.0f} rows/s; analyses cold p50 {results[name][1] * 1000:.1f} ms, "
                f"p95 {results[name][2] * 1000:.1f} ms"
            )
            db.release()
    shutil.rmtree(root, ignore_errors=True)
    (server_rate, server_p50, _), (embedded_rate, embedded_p50, _) = (
        results["server"],
        results["embedded"],
    )
    stdout.write(
        f"store: server path {server_rate:,.0f} rows/s and query p50 "
        f"{server_p50 * 1000:.1f} ms, ratio {server_rate / embedded_rate:.2f} vs the embedded "
        f"store's insert rate ({embedded_rate:,.0f} rows/s; its query p50 "
        f"{embedded_p50 * 1000:.1f} ms)"
    )
