"""Services, their canary rollouts, rollout timelines, metric samples and the simulated cluster."""

import math

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

DNS_LABEL = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "must be a DNS label: lowercase letters, digits and '-', at most 63 characters",
)
IMAGE_TAG = RegexValidator(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
    "must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
)
IMAGE_REPOSITORY = RegexValidator(
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
    "must be an image repository without tag, such as registry.example/team/api",
)

DEFAULT_STEPS = [
    {"weight": 10, "pause": None},
    {"weight": 25, "pause": None},
    {"weight": 50, "pause": None},
    {"weight": 100, "pause": None},
]


def default_analysis() -> dict:
    """Analysis settings a rollout starts with unless the service or the request says otherwise.

    What is measured and its limits are the metric templates (`MetricTemplate`); the older
    settings `max_error_rate`, `max_p99_ms`, `max_cpu_percent`, `max_memory_percent`,
    `error_rate_tolerance`, `p99_tolerance_percent`, `compare_to_stable` and `failure_limit`
    are still accepted and change the built-in templates they stand for
    (metrics/templates.py). `failure_limit` here also counts failed hooks."""
    return {
        "interval_seconds": settings.ROLLOUT_ANALYSIS_INTERVAL_SECONDS,
        "samples_per_step": settings.ROLLOUT_SAMPLES_PER_STEP,
        "failure_limit": 2,
    }


def default_steps() -> list[dict]:
    return [dict(step) for step in DEFAULT_STEPS]


class Service(models.Model):
    """A workload the platform rolls out: its image repository, size and stable version."""

    name = models.CharField(max_length=63, unique=True, validators=[DNS_LABEL])
    namespace = models.CharField(max_length=63, validators=[DNS_LABEL])
    image = models.CharField(max_length=255, validators=[IMAGE_REPOSITORY])
    port = models.PositiveIntegerField(default=8000)
    replicas = models.PositiveIntegerField(default=3)
    cpu_request = models.CharField(max_length=20, default="500m")
    cpu_limit = models.CharField(max_length=20, default="2000m")
    memory_request = models.CharField(max_length=20, default="1Gi")
    memory_limit = models.CharField(max_length=20, default="4Gi")
    stable_tag = models.CharField(max_length=128, default="v1", validators=[IMAGE_TAG])
    secret_env = models.JSONField(
        default=dict,
        blank=True,
        help_text='environment variables from secrets: {"ENV": "secret-name/key"}',
    )
    default_steps = models.JSONField(null=True, blank=True)
    default_analysis = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "name"]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def stable_image(self) -> str:
        return f"{self.image}:{self.stable_tag}"

    def image_for(self, tag: str) -> str:
        return f"{self.image}:{tag}"


class RolloutStatus(models.TextChoices):
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    FAILED = "failed"


UNFINISHED = (RolloutStatus.PENDING, RolloutStatus.PROGRESSING, RolloutStatus.PAUSED)
FINISHED = (
    RolloutStatus.PROMOTED,
    RolloutStatus.ROLLED_BACK,
    RolloutStatus.ABORTED,
    RolloutStatus.FAILED,
)


class Phase(models.TextChoices):
    """Where the engine is inside the current status (internal, shown on the page)."""

    START = "start"
    SCALE = "scale"  # canary Deployment sized for the step; waiting for ready replicas
    ANALYZE = "analyze"  # traffic at the step's weight; sampling and judging
    PROMOTE = "promote"  # stable Deployment on the new image; waiting for it to be ready
    ROLLBACK = "rollback"  # traffic to stable first, then canary to zero
    DONE = "done"


class Rollout(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="rollouts")
    image_tag = models.CharField(max_length=128, validators=[IMAGE_TAG])
    from_tag = models.CharField(max_length=128, blank=True)
    steps = models.JSONField(default=default_steps)
    match = models.JSONField(
        default=list,
        blank=True,
        help_text="header/cookie rules whose requests go to canary at every step "
        "(deployments/matching.py)",
    )
    analysis = models.JSONField(default=default_analysis)
    metrics = models.JSONField(
        default=list,
        blank=True,
        help_text="the metric templates this rollout is judged by: the service's with this "
        "rollout's overrides, copied at start (empty: the built-ins, for older rollouts)",
    )
    metric_state = models.JSONField(
        default=dict,
        blank=True,
        help_text="per template: consecutive failures and inconclusives, last check",
    )
    status = models.CharField(
        max_length=20, choices=RolloutStatus.choices, default=RolloutStatus.PENDING, db_index=True
    )
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.START)
    current_step = models.PositiveIntegerField(default=0)
    current_weight = models.PositiveIntegerField(default=0, help_text="canary traffic %")
    step_started_at = models.DateTimeField(null=True, blank=True)
    phase_started_at = models.DateTimeField(null=True, blank=True)
    pause_until = models.DateTimeField(null=True, blank=True)
    samples_in_step = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_sample_at = models.DateTimeField(null=True, blank=True)
    last_judgement = models.JSONField(default=dict, blank=True)
    hook_state = models.JSONField(
        default=dict, blank=True, help_text="last answer of each hook: {name: {...}}"
    )
    promotion_confirmed = models.BooleanField(
        default=False, help_text="every confirm-promotion hook answered 2xx"
    )
    abort_requested = models.BooleanField(default=False)
    promote_requested = models.BooleanField(default=False)
    final_status = models.CharField(
        max_length=20, blank=True, help_text="status a rollback in progress ends in"
    )
    reason = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_label = models.CharField(max_length=200, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    reverts = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the recent promotion this fast rollback undoes (steps and analysis skipped)",
    )
    tick_seq = models.PositiveIntegerField(default=0, help_text="token of the scheduled tick")
    next_tick_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service"],
                condition=models.Q(status__in=["pending", "progressing", "paused"]),
                name="one_unfinished_rollout_per_service",
            )
        ]

    def __str__(self) -> str:
        return f"rollout #{self.pk} {self.service.name}:{self.image_tag}"

    FINISHED_STATUSES = FINISHED

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def step(self) -> dict:
        return self.steps[min(self.current_step, len(self.steps) - 1)]

    def canary_replicas_for(self, weight: int) -> int:
        """Canary pods for a traffic weight: max(1, ceil(replicas * w / 100))."""
        return max(1, math.ceil(self.service.replicas * weight / 100))


class RolloutEvent(models.Model):
    """One row of a rollout's timeline: a transition, a judgement, an action by a person."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=40)
    message = models.TextField()
    actor_label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.kind}: {self.message}"


class Version(models.TextChoices):
    STABLE = "stable"
    CANARY = "canary"


class MetricSample(models.Model):
    """Metrics of one version of a service at one moment; None means the backend had no data."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="samples")
    rollout = models.ForeignKey(
        Rollout, null=True, blank=True, on_delete=models.CASCADE, related_name="samples"
    )
    version = models.CharField(max_length=10, choices=Version.choices)
    image_tag = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(db_index=True)
    request_rate = models.FloatField(null=True, blank=True, help_text="requests per second")
    error_rate = models.FloatField(null=True, blank=True, help_text="% of requests answered 5xx")
    p99_ms = models.FloatField(null=True, blank=True)
    cpu_percent = models.FloatField(null=True, blank=True, help_text="% of the CPU limit")
    memory_percent = models.FloatField(null=True, blank=True, help_text="% of the memory limit")
    values = models.JSONField(
        default=dict, blank=True, help_text="every template's value at that moment: {name: value}"
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["rollout", "version", "at"])]

    def __str__(self) -> str:
        return f"{self.service.name} {self.version} @ {self.at:%H:%M:%S}"


class MetricTemplate(models.Model):
    """A metric a service's canaries are judged by (Flagger's MetricTemplate, Argo's
    AnalysisTemplate): how to measure it (its kind) and how to judge it. Kinds and their
    checks live in metrics/templates.py; `clean` validates through the kind."""

    class Kind(models.TextChoices):
        PROMETHEUS = "prometheus", "Prometheus query (PromQL template)"
        STORE = "store", "analytics store (product events per version)"

    class Direction(models.TextChoices):
        LOWER = "lower", "lower is better"
        HIGHER = "higher", "higher is better"

    class ToleranceUnit(models.TextChoices):
        ABSOLUTE = "absolute", "in the metric's unit"
        PERCENT = "percent", "% of stable's value"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="metric_templates")
    name = models.CharField(
        max_length=63,
        validators=[
            RegexValidator(r"^[a-z][a-z0-9_-]{0,62}$", "lowercase letters, digits, '_', '-'")
        ],
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PROMETHEUS)
    query = models.TextField(
        blank=True,
        help_text="PromQL with placeholders {{ namespace }}, {{ service }}, {{ target }}, "
        "{{ version }}, {{ image_tag }}, {{ interval }} (prometheus kind)",
    )
    params = models.JSONField(
        default=dict, blank=True, help_text="settings of the kind (store kind: see README)"
    )
    unit = models.CharField(max_length=20, blank=True, help_text="shown with values: %, ms")
    interval = models.CharField(
        max_length=10, default="1m", help_text="the query's window, {{ interval }}: 30s, 1m, 5m"
    )
    min_value = models.FloatField(null=True, blank=True, help_text="fail below (blank: none)")
    max_value = models.FloatField(null=True, blank=True, help_text="fail above (blank: none)")
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.LOWER)
    stable_tolerance = models.FloatField(
        null=True,
        blank=True,
        help_text="while stable serves traffic, fail when the canary is worse than stable by "
        "more than this (blank: no comparison)",
    )
    stable_tolerance_unit = models.CharField(
        max_length=10, choices=ToleranceUnit.choices, default=ToleranceUnit.ABSOLUTE
    )
    effect_size_tolerance = models.FloatField(
        default=1.25,
        help_text="statistical judge: ratio of canary to stable means tolerated in the bad "
        "direction (1.25: 25 % worse)",
    )
    weight = models.FloatField(default=1.0, help_text="statistical judge: 0 leaves it out")
    critical = models.BooleanField(
        default=False, help_text="statistical judge: failing it makes the score 0"
    )
    failure_limit = models.PositiveSmallIntegerField(
        default=2, help_text="consecutive failed checks that roll the canary back"
    )
    inconclusive_limit = models.PositiveSmallIntegerField(
        default=1, help_text="consecutive checks without an answer that pause the rollout"
    )
    dry_run = models.BooleanField(default=False, help_text="measured and shown, never decides")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["service", "id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="unique_metric_template"),
            models.CheckConstraint(
                condition=models.Q(min_value__isnull=True)
                | models.Q(max_value__isnull=True)
                | models.Q(min_value__lte=models.F("max_value")),
                name="metric_template_range",
            ),
            models.CheckConstraint(
                condition=models.Q(failure_limit__gte=1, inconclusive_limit__gte=1),
                name="metric_template_limits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service.name}/{self.name} ({self.kind})"

    FIELDS = (
        "name",
        "kind",
        "query",
        "params",
        "unit",
        "interval",
        "min_value",
        "max_value",
        "direction",
        "stable_tolerance",
        "stable_tolerance_unit",
        "effect_size_tolerance",
        "weight",
        "critical",
        "failure_limit",
        "inconclusive_limit",
        "dry_run",
        "enabled",
    )

    def as_dict(self) -> dict:
        return {field: getattr(self, field) for field in self.FIELDS}

    def clean(self):
        from django.core.exceptions import ValidationError

        from deployments.metrics.templates import validate

        problems = validate(self.as_dict())
        if problems:
            raise ValidationError(problems)


class SimDeployment(models.Model):
    """A Deployment of the simulated cluster. Pods are ready `ready_delay` after a change."""

    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=130)
    image = models.CharField(max_length=400)
    replicas = models.PositiveIntegerField(default=0)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    changed_at = models.DateTimeField()
    ready_at = models.DateTimeField()
    ready_replicas_before = models.PositiveIntegerField(
        default=0, help_text="ready pods until ready_at (the old replica set)"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="unique_sim_deployment")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class SimTrafficSplit(models.Model):
    """The simulated VirtualService: how much traffic a service sends to its canary."""

    namespace = models.CharField(max_length=63)
    service = models.CharField(max_length=63)
    canary_weight = models.PositiveIntegerField(default=0)
    match = models.JSONField(
        default=list, blank=True, help_text="Istio HTTPMatchRequests routed to canary"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "service"], name="unique_sim_traffic")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}: canary {self.canary_weight}%"


def _check_outbound_url(url: str) -> None:
    """Admin forms refuse a URL the outbound guard would refuse (its form; the addresses are
    checked again at every call, since DNS answers change)."""
    from django.core.exceptions import ValidationError

    from core import outbound

    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as exc:
        raise ValidationError({"url": str(exc)}) from None


class HookType(models.TextChoices):
    """Flagger's webhook types (https://docs.flagger.app/usage/webhooks), same semantics."""

    PRE_ROLLOUT = "pre-rollout", "pre-rollout: before any traffic reaches the canary"
    ROLLOUT = "rollout", "rollout: every analysis interval, before the metrics (e.g. a load test)"
    CONFIRM_PROMOTION = "confirm-promotion", "confirm-promotion: a gate before promotion"
    POST_ROLLOUT = "post-rollout", "post-rollout: after promotion or rollback (result only logged)"
    ROLLBACK = "rollback", "rollback: asked every interval; 2xx rolls the canary back"


class RolloutHook(models.Model):
    """A webhook the engine calls at one point of every rollout of a service (Flagger's model:
    HTTP POST with the rollout's context; 2xx means go)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="hooks")
    name = models.CharField(max_length=63, validators=[DNS_LABEL])
    type = models.CharField(max_length=20, choices=HookType.choices)
    url = models.URLField(max_length=500, help_text="called through the outbound guard")
    timeout_seconds = models.FloatField(
        default=10.0, help_text="per attempt, at most 30 (the engine waits for the answer)"
    )
    retries = models.PositiveSmallIntegerField(
        default=1, help_text="extra attempts after a connection error or a 5xx, at most 3"
    )
    metadata = models.JSONField(
        default=dict, blank=True, help_text="sent as `metadata` (e.g. a load test's command)"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["service", "type", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="unique_hook_name"),
            models.CheckConstraint(
                condition=models.Q(timeout_seconds__gt=0, timeout_seconds__lte=30),
                name="hook_timeout_range",
            ),
            models.CheckConstraint(condition=models.Q(retries__lte=3), name="hook_retries_max"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name}/{self.name} ({self.type})"

    def clean(self):
        _check_outbound_url(self.url)


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class AlertProvider(models.Model):
    """Where rollout notifications go (Flagger's AlertProvider, Argo's notification service):
    a Slack-compatible incoming webhook or a generic JSON webhook, for one service, one
    namespace or everything, at or above a severity."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack-compatible incoming webhook (also Mattermost, Rocket.Chat)"
        JSON = "json", "generic JSON webhook"

    name = models.CharField(max_length=63, unique=True, validators=[DNS_LABEL])
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SLACK)
    url = models.URLField(max_length=500, help_text="called through the outbound guard")
    namespace = models.CharField(
        max_length=63, blank=True, help_text="only rollouts in this namespace (blank: all)"
    )
    service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_providers",
        help_text="only rollouts of this service (blank: all in the namespace)",
    )
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.min_severity}+)"

    def clean(self):
        _check_outbound_url(self.url)
