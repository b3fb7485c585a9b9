"""Prometheus metrics of the platform, summed across every web and worker process.

prometheus_client runs in multiprocess mode: each process writes its counters and histograms
to files under PROMETHEUS_MULTIPROC_DIR (set by settings before prometheus_client is first
imported) and `/metrics` merges them. Values that are not per-process counts (queue lengths,
rollouts by status, the business metrics computed from the analytics store) are read at
scrape time by collectors, so no process ever owns a stale gauge.
"""

import hmac
import json
import logging
import os
import time

from django.conf import settings

# Loading the settings first sets PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads on
# import to choose its file-backed values.
MULTIPROC_DIR = settings.PROMETHEUS_MULTIPROC_DIR

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (  # noqa: E402
    GaugeMetricFamily,
    HistogramMetricFamily,
)

log = logging.getLogger(__name__)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "book2video_http_requests",
    "HTTP requests answered, by view and status code.",
    ["method", "view", "status"],
)
HTTP_LATENCY = Histogram(
    "book2video_http_request_duration_seconds",
    "Time to answer an HTTP request, by view.",
    ["method", "view"],
    buckets=HTTP_BUCKETS,
)
CELERY_TASKS = Counter(
    "book2video_celery_tasks",
    "Celery tasks finished, by task name and outcome (succeeded, failed, retried).",
    ["task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "book2video_celery_task_duration_seconds",
    "Run time of Celery tasks, by task name.",
    ["task"],
    buckets=TASK_BUCKETS,
)


def _view_label(request) -> str:
    # The URL pattern's name, never the raw path: the label set stays small and fixed.
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unresolved"
    return match.view_name or match._func_path


class RequestMetricsMiddleware:
    """Counts every request and its latency, labelled by view name and status code."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        view = _view_label(request)
        HTTP_LATENCY.labels(request.method, view).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(request.method, view, str(response.status_code)).inc()
        return response


# Celery signal handlers, connected by config.celery in every process that runs tasks.
_task_started: dict[str, float] = {}


def on_task_prerun(task_id=None, **kwargs) -> None:
    _task_started[task_id] = time.perf_counter()


def on_task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    if started is not None:
        CELERY_TASK_DURATION.labels(name).observe(time.perf_counter() - started)
    outcome = {"SUCCESS": "succeeded", "RETRY": "retried"}.get(state or "", "failed")
    CELERY_TASKS.labels(name, outcome).inc()


def on_worker_process_shutdown(**kwargs) -> None:
    multiprocess.mark_process_dead(os.getpid())


def serve_worker_metrics(port: int):
    """Serve this container's task metrics on `port` (a worker pod has no web process).

    Only the per-process files: queue lengths and business metrics come from the web pods.
    Like `/metrics`, it asks for `Authorization: Bearer <METRICS_TOKEN>` when the token is set
    (always in production, where start refuses without one). Returns (server, thread).
    """
    import threading
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    app = make_wsgi_app(registry)

    def guarded(environ, start_response):
        token = settings.METRICS_TOKEN
        given = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if token and not hmac.compare_digest(given.encode(), token.encode()):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/json"),
                    ("WWW-Authenticate", 'Bearer realm="metrics"'),
                ],
            )
            return [
                b'{"error": "not_authenticated", "detail": "Authorization: Bearer <METRICS_TOKEN>"}'
            ]
        return app(environ, start_response)

    server = make_server(
        "0.0.0.0", port, guarded, ThreadingWSGIServer, handler_class=_SilentHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


# --- values read at scrape time ---------------------------------------------------------------

# kombu's Redis transport keeps a queue with priorities in one list per priority step.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_lengths() -> dict[str, int]:
    """Messages waiting per Celery queue, read from the broker (what the autoscaler scales on)."""
    from core.queues import Queue
    from core.redis import redis_client

    pipe = redis_client().pipeline(transaction=False)
    for queue in Queue:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue.value + suffix)
    counts = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {q.value: sum(counts[i * step : (i + 1) * step]) for i, q in enumerate(Queue)}


class QueueLengthCollector:
    def collect(self):
        family = GaugeMetricFamily(
            "book2video_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        try:
            lengths = queue_lengths()
        except Exception as exc:  # a scrape must not fail because the broker is away
            log.warning("queue lengths unavailable: %s", exc)
            return
        for queue, length in lengths.items():
            family.add_metric([queue], length)
        yield family


class RolloutStatusCollector:
    """Rollouts of the deployments app by status (one small GROUP BY per scrape)."""

    def collect(self):
        from django.db.models import Count

        from deployments.models import Rollout, RolloutStatus

        family = GaugeMetricFamily(
            "book2video_rollouts", "Canary rollouts by status.", labels=["status"]
        )
        try:
            counts = dict(Rollout.objects.order_by().values_list("status").annotate(n=Count("id")))
        except Exception as exc:
            log.warning("rollout counts unavailable: %s", exc)
            return
        for status in RolloutStatus.values:
            family.add_metric([status], counts.get(status, 0))
        yield family


BUSINESS_METRICS_KEY = "metrics:business"


class BusinessMetricsCollector:
    """The business metrics of the last scheduled computation (operations.kpis)."""

    def collect(self):
        from core.redis import redis_client

        try:
            raw = redis_client().get(BUSINESS_METRICS_KEY)
        except Exception as exc:
            log.warning("business metrics unavailable: %s", exc)
            return
        if not raw:
            return
        yield from business_metric_families(json.loads(raw))


def business_metric_families(snapshot: dict):
    computed = GaugeMetricFamily(
        "book2video_business_metrics_computed_timestamp_seconds",
        "When the business metrics were last computed from the analytics store.",
    )
    computed.add_metric([], snapshot["computed_at"])
    yield computed

    processing = HistogramMetricFamily(
        "book2video_processing_duration_seconds",
        "Time taken to turn a book into a video (video_completed events, all time).",
        labels=["user_tier", "book_type", "video_duration"],
    )
    for row in snapshot["processing"]:
        buckets = [
            (_bound(bound), count)
            for bound, count in zip(snapshot["processing_buckets"], row["buckets"], strict=True)
        ]
        buckets.append(("+Inf", row["count"]))
        processing.add_metric(
            [row["user_tier"], row["book_type"], row["video_duration"]],
            buckets,
            sum_value=row["sum"],
        )
    yield processing

    for name, doc, labels, rows in (
        (
            "book2video_ai_cost_dollars",
            "AI spend in dollars to date (video_completed ai_cost_dollars).",
            ["ai_service", "user_tier"],
            snapshot["ai_cost"],
        ),
        (
            "book2video_user_satisfaction_score",
            "Mean satisfaction score (1-10) over the last 30 days.",
            ["user_tier", "video_style"],
            snapshot["satisfaction"],
        ),
        (
            "book2video_conversion_rate",
            "Share of signed-up users who started a paid subscription, by signup source.",
            ["signup_source"],
            snapshot["conversion"],
        ),
    ):
        family = GaugeMetricFamily(name, doc, labels=labels)
        for row in rows:
            family.add_metric([row[label] for label in labels], row["value"])
        yield family


def _bound(value: float) -> str:
    return repr(float(value))


_extra_collectors: list = [
    QueueLengthCollector(),
    RolloutStatusCollector(),
    BusinessMetricsCollector(),
]


def render(*, path: str | None = None, collectors: list | None = None) -> bytes:
    """The Prometheus text exposition of every process's metrics and the scrape-time ones."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    for collector in _extra_collectors if collectors is None else collectors:
        registry.register(collector)
    return generate_latest(registry)


def metrics_view(request):
    """`GET /metrics`: bearer token from METRICS_TOKEN. Open when the token is unset only with
    DEBUG=1 (production settings refuse to start without a token; refused here as well)."""
    from django.http import HttpResponse, JsonResponse

    token = settings.METRICS_TOKEN
    if not token and not settings.DEMO_MODE:
        return JsonResponse(
            {"error": "not_configured", "detail": "METRICS_TOKEN is not set"}, status=503
        )
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            response = JsonResponse(
                {"error": "not_authenticated", "detail": "Authorization: Bearer <METRICS_TOKEN>"},
                status=401,
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    if request.method != "GET":
        return JsonResponse({"error": "method_not_allowed", "detail": "use GET"}, status=405)
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
