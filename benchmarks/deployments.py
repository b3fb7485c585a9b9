"""`bench rollouts`: abort-to-stable latency and engine overhead per tick.

Both cluster backends run in this process: the simulated cluster (database) and the kubernetes
backend over loopback HTTP against kmock's KubernetesEmulator. The abort figure is the time
from calling `rollout_abort` to the cluster reporting 100 % stable traffic, with the tick the
abort enqueues run inline (the broker hop to a worker is not included). Each run happens in a
transaction rolled back at the end: nothing is enqueued or published, nothing is left behind.
"""

import statistics
import time

from django.conf import settings
from django.db import transaction

from benchmarks.harness import TimedCalls, percentile, serve_asgi_in_thread
from benchmarks.rollouts_product import product_detection
from deployments.cluster import cluster_backend
from deployments.cluster.simulated import SimulatedCluster
from deployments.engine import rollout_advance
from deployments.models import Rollout, Service
from deployments.services import rollout_abort, rollout_start

FAST = {"interval_seconds": 0.2, "samples_per_step": 1, "failure_limit": 1}
BENCH_NS = "bench-rollouts"


class _Fixed:
    """A steady healthy reading for the emulator runs (no Prometheus here)."""

    def read(self, service, version):
        from deployments.metrics.base import Reading

        return Reading(
            request_rate=50, error_rate=0.4, p99_ms=150, cpu_percent=30, memory_percent=40
        )


def _measure_tick(rollout_id: int, *, cluster, metrics) -> tuple[float, float]:
    """(wall seconds of one tick, seconds of it spent in cluster calls)."""
    timed = TimedCalls(cluster)
    started = time.perf_counter()
    rollout_advance(rollout_id=rollout_id, cluster=timed, metrics=metrics)
    return time.perf_counter() - started, timed.seconds


def _run_one(name: str, cluster, metrics, *, ticks: list, on_tick=None) -> float:
    """Start a rollout, tick it until the canary has traffic, abort; seconds to 100 % stable.

    All in one transaction rolled back at the end: nothing enqueued, published or left behind.
    """
    with transaction.atomic():
        service = Service.objects.create(
            name=name, namespace=BENCH_NS, image="bench/app", replicas=4
        )
        rollout = rollout_start(service=service, image_tag="v2", by="bench", analysis=FAST)
        deadline = time.monotonic() + 30
        while cluster.get_canary_weight(service) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("canary never received traffic")
            ticks.append(_measure_tick(rollout.pk, cluster=cluster, metrics=metrics))
            if on_tick:
                on_tick(name)
        started = time.perf_counter()
        rollout_abort(rollout=rollout, by="bench", reason="bench")
        rollout_advance(rollout_id=rollout.pk, cluster=cluster, metrics=metrics)
        if cluster.get_canary_weight(service) != 0:
            raise RuntimeError("abort did not move traffic to stable")
        elapsed = time.perf_counter() - started
        if Rollout.objects.get(pk=rollout.pk).status != "aborted":
            raise RuntimeError("abort did not finish the rollout")
        transaction.set_rollback(True)
    return elapsed


def bench_rollouts(stdout, *, quick: bool = False) -> None:
    from deployments.metrics.simulated import SimulatedMetrics
    from testing.kubernetes_emulator import Emulator

    runs = 5 if quick else 30
    saved = settings.SIM_CLUSTER_READY_SECONDS, settings.KUBERNETES_API_URL
    settings.SIM_CLUSTER_READY_SECONDS = 0
    results = {}
    ticks = {"simulated": [], "kubernetes": []}
    try:
        sim = SimulatedCluster(ready_seconds=0)
        metrics = SimulatedMetrics(sim)
        times = [
            _run_one(f"bench-sim-{i}", sim, metrics, ticks=ticks["simulated"]) for i in range(runs)
        ]
        results["simulated"] = times

        # A fresh emulator per rollout: kmock keeps every request it served and slows down as
        # they pile up, which a real API server does not.
        times = []
        for i in range(runs):
            emulator = Emulator()
            try:
                settings.KUBERNETES_API_URL = emulator.url

                def controller(name, emulator=emulator):
                    for version in ("stable", "canary"):
                        emulator.mark_ready(BENCH_NS, f"{name}-{version}")

                k8s = cluster_backend("kubernetes")
                times.append(
                    _run_one(
                        f"bench-k8s-{i}",
                        k8s,
                        _Fixed(),
                        ticks=ticks["kubernetes"],
                        on_tick=controller,
                    )
                )
            finally:
                emulator.close()
        results["kubernetes"] = times
    finally:
        settings.SIM_CLUSTER_READY_SECONDS, settings.KUBERNETES_API_URL = saved

    for name, times in results.items():
        ms = [t * 1000 for t in times]
        stdout.write(
            f"abort → 100% stable, {name}: p50 {statistics.median(ms):.1f} ms, p95 {percentile(ms, 95):.1f} ms, "
            f"max {max(ms):.1f} ms over {len(ms)} rollouts (goal: p95 < 1000 ms)"
        )
    ratios = {}
    for name, rows in ticks.items():
        total = sum(t for t, _ in rows)
        cluster = sum(c for _, c in rows)
        ratios[name] = (total - cluster) / cluster if cluster else float("nan")
        stdout.write(
            f"tick, {name}: {len(rows)} ticks, mean {total / len(rows) * 1000:.1f} ms, "
            f"of which cluster calls {cluster / len(rows) * 1000:.1f} ms; engine overhead "
            f"{(total - cluster) / len(rows) * 1000:.1f} ms per tick"
        )
    p95_sim = percentile([t * 1000 for t in results["simulated"]], 95)
    p95_k8s = percentile([t * 1000 for t in results["kubernetes"]], 95)
    product = product_detection(stdout, quick=quick)
    caught = product["caught_minutes"]
    caught_text = f"{caught:g} min" if caught is not None else f"not in {product['horizon']} min"
    # The error-rate judge never catches it: its time is at least the horizon, so the ratio
    # is an upper bound (the product metric is at least this many times faster).
    ratio = (caught or product["horizon"]) / product["horizon"]
    stdout.write(
        f"rollouts: abort to 100% stable p95 {p95_sim:.1f} ms simulated, {p95_k8s:.1f} ms kubernetes "
        f"emulator (engine overhead {ratios['kubernetes']:.2f}x its cluster calls); a 10 % render "
        f"success regression rolled back by the product metric after {caught_text} of traffic, "
        f"ratio {ratio:.2f} vs the error-rate judge (caught {product['error_rate_caught']} of "
        f"{product['seeds']} in {product['horizon']} min)"
    )


# bench console -----------------------------------------------------------------------------


def _deliveries(
    port: int, rollout_id: int, cookie: str, viewers: int, messages: int
) -> list[float]:
    """Viewers in a child process (as browsers are), samples published from here to the group."""
    import asyncio
    import multiprocessing

    from channels.layers import get_channel_layer

    from core.consumers import relay_envelope
    from deployments.services import rollout_group

    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    url = f"ws://127.0.0.1:{port}/ws/rollouts/{rollout_id}/"
    from benchmarks.deployments_viewers import viewers_process

    child = ctx.Process(
        target=viewers_process, args=(url, cookie, viewers, messages, ready, results)
    )
    child.start()
    if not ready.wait(120):
        child.kill()
        raise RuntimeError("the viewers did not connect")

    async def publish():
        layer = get_channel_layer()
        for n in range(messages):
            message = {"type": "sample", "rollout": rollout_id, "n": n, "sent_at": time.time()}
            await layer.group_send(rollout_group(rollout_id), relay_envelope(message))
            await asyncio.sleep(0.5)  # a busy rollout page: two samples a second

    asyncio.run(publish())
    latencies = results.get(timeout=120)
    child.join(30)
    time.sleep(0.5)  # let the consumers leave their group before the next run
    return latencies


def _console_run(
    stdout, label: str, *, viewers: int, messages: int, rollout_id: int, cookie: str
) -> dict:

    from channels.layers import channel_layers

    channel_layers.backends.clear()  # the layer for the current CHANNEL_LAYERS setting
    server, thread, port = serve_asgi_in_thread()
    try:
        results = {}
        for n in (1, viewers):
            lat = sorted(_deliveries(port, rollout_id, cookie, n, messages))
            ms = [x * 1000 for x in lat]
            p99 = percentile(ms, 99)
            results[n] = p99
            stdout.write(
                f"{label}, {n} viewer{'s' if n > 1 else ''}: {len(ms)} deliveries, "
                f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
            )
        return results
    finally:
        server.should_exit = True
        thread.join(10)


def bench_console(stdout, *, quick: bool = False) -> None:
    """N websocket viewers on one rollout: latency from publishing to a viewer receiving it."""
    import os

    import redis
    from django.contrib.auth import get_user_model
    from django.test import Client

    from core.embedded import ensure_embedded_redis

    viewers = int(os.environ.get("BENCH_VIEWERS", 20 if quick else 200))
    messages = 5 if quick else 20
    ensure_embedded_redis()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-viewer", defaults={"is_staff": True}
    )
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="engineer"))
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    service, _ = Service.objects.get_or_create(
        name="bench-console", defaults={"namespace": BENCH_NS, "image": "bench/app"}
    )
    rollout = Rollout.objects.create(
        service=service, image_tag="v2", from_tag="v1", status="promoted"
    )
    layers = [
        (
            "configured Redis" + (" (embedded)" if settings.REDIS_EMBEDDED else ""),
            settings.REDIS_URL,
        )
    ]
    server_url = os.environ.get("BENCH_REDIS_SERVER_URL", "redis://127.0.0.1:6379/1")
    if settings.REDIS_EMBEDDED:
        try:
            redis.Redis.from_url(server_url, socket_connect_timeout=0.5).ping()
            layers.append((f"Redis server {server_url}", server_url))
        except redis.RedisError:
            stdout.write(f"no Redis server at {server_url}: only the embedded Redis is measured")
    saved = settings.CHANNEL_LAYERS
    results = {}
    try:
        for label, url in layers:
            settings.CHANNEL_LAYERS = {
                "default": {
                    "BACKEND": saved["default"]["BACKEND"],
                    "CONFIG": {
                        "hosts": [{**saved["default"]["CONFIG"]["hosts"][0], "address": url}],
                        "prefix": "bench-console",
                    },
                }
            }
            results[label] = _console_run(
                stdout,
                label,
                viewers=viewers,
                messages=messages,
                rollout_id=rollout.pk,
                cookie=cookie,
            )
    finally:
        from channels.layers import channel_layers

        settings.CHANNEL_LAYERS = saved
        channel_layers.backends.clear()
        rollout.delete()
        service.delete()
        user.delete()
    for label, figures in results.items():
        stdout.write(
            f"console: p99 {figures[viewers]:.1f} ms publish-to-receipt with {viewers} viewers on "
            f"{label} (goal < 100 ms), ratio {figures[viewers] / figures[1]:.1f} vs a single viewer"
        )
