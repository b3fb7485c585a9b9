"""Experiments, their variants and the metrics they are judged on.

Invariants that protect users from re-randomization live here: once an experiment has
started, its key, seed, namespace and variant keys are frozen. Coverage, targeting and
weights may change while sticky bucketing keeps every user already bucketed in place
(GrowthBook's semantics; `bucket_version` re-randomizes).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.errors import InvalidRequest
from experiments.conditions import ConditionError, condition_validate
from experiments.dimensions import dimension_names_validate

FROZEN_WHEN_STARTED = (
    "key",
    "engine",
    "hash_seed",
    "sticky_bucketing",
    "namespace",
    "namespace_start",
    "namespace_end",
)
WEIGHT_TOLERANCE = 1e-6


def default_engine() -> str:
    """The project's statistics engine (EXPERIMENTS_ENGINE) for a new experiment."""
    return settings.EXPERIMENTS_ENGINE


def _unit(name: str):
    return [MinValueValidator(0.0, f"{name} must be at least 0"), MaxValueValidator(1.0)]


class Metric(models.Model):
    """What an experiment is judged on, computed per exposed user from the analytics store."""

    class Kind(models.TextChoices):
        CONVERSION = "conversion", "conversion (did the user do the event)"
        MEAN = "mean", "mean (per-user sum or count)"
        RATIO = "ratio", "ratio (sum or count of the event over count of a denominator event)"
        QUANTILE = "quantile", "quantile (e.g. p90 of a numeric property, such as render time)"

    class QuantileScope(models.TextChoices):
        EVENT = "event", "events (every event's value, e.g. p90 of all renders)"
        USER = "user", "users (each user's total in the window)"

    class Direction(models.TextChoices):
        INCREASE = "increase", "increase is good"
        DECREASE = "decrease", "decrease is good"

    class Capping(models.TextChoices):
        NONE = "none", "no capping"
        ABSOLUTE = "absolute", "absolute (a fixed cap)"
        PERCENTILE = "percentile", "percentile of the experiment's users"

    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CONVERSION)
    event = models.CharField(max_length=100, help_text="event name, e.g. video_completed")
    filter_property = models.CharField(
        max_length=100, blank=True, help_text="optional: only events whose property ..."
    )
    filter_value = models.CharField(max_length=200, blank=True, help_text="... equals this value")
    value_property = models.CharField(
        max_length=100,
        blank=True,
        help_text="mean metrics: the numeric property summed per user (e.g. amount); "
        "empty counts the events",
    )
    denominator_event = models.CharField(
        max_length=100,
        blank=True,
        help_text="ratio metrics: the event counted as the denominator, e.g. session_start "
        "(videos rendered per session)",
    )
    window_days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="events count within this many days after the user's first exposure",
    )
    quantile = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001), MaxValueValidator(0.999)],
        help_text="quantile metrics: the level, e.g. 0.5 (median) or 0.9 (p90)",
    )
    quantile_scope = models.CharField(
        max_length=10,
        choices=QuantileScope.choices,
        default=QuantileScope.EVENT,
        help_text="quantile metrics: over every event's value (clustered by user), or over "
        "each user's total",
    )
    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.INCREASE
    )
    cuped = models.BooleanField(
        "CUPED",
        default=True,
        help_text="variance reduction with the same metric in the 30 days before each user's "
        "first exposure",
    )
    capping = models.CharField(
        max_length=12,
        choices=Capping.choices,
        default=Capping.NONE,
        help_text="mean metrics: winsorize each user's value (outliers)",
    )
    cap_value = models.FloatField(
        null=True,
        blank=True,
        help_text="absolute: the largest value a user counts with; percentile: a fraction, "
        "e.g. 0.99 caps at the 99th percentile of the experiment's users",
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key

    @property
    def has_cuped(self) -> bool:
        """CUPED applies (not to ratio or quantile metrics: gbstats has no regression
        adjustment for either)."""
        return self.cuped and self.kind not in (self.Kind.RATIO, self.Kind.QUANTILE)

    def clean(self) -> None:
        if (self.kind == self.Kind.RATIO) != bool(self.denominator_event):
            raise ValidationError(
                {"denominator_event": "a ratio metric needs its denominator event; only ratios"}
            )
        if bool(self.filter_property) != bool(self.filter_value):
            raise ValidationError(
                {"filter_value": "give both the filter property and its value, or neither"}
            )
        if self.kind == self.Kind.CONVERSION and self.value_property:
            raise ValidationError(
                {"value_property": "only mean metrics sum a property; leave it empty"}
            )
        if self.kind == self.Kind.QUANTILE:
            if not self.value_property:
                raise ValidationError(
                    {
                        "value_property": "a quantile metric needs the numeric property, e.g. "
                        "processing_seconds"
                    }
                )
            if self.quantile is None or not 0 < self.quantile < 1:
                raise ValidationError({"quantile": "give the level, e.g. 0.9 for p90"})
            if self.capping != self.Capping.NONE:
                raise ValidationError({"capping": "a quantile needs no capping: leave it off"})
        elif self.quantile is not None:
            raise ValidationError({"quantile": "only quantile metrics have a level"})
        if self.capping != self.Capping.NONE and self.kind == self.Kind.CONVERSION:
            raise ValidationError({"capping": "a conversion is 0 or 1 per user: nothing to cap"})
        if self.capping == self.Capping.NONE and self.cap_value is not None:
            raise ValidationError({"cap_value": "choose a capping type, or leave this empty"})
        if self.capping == self.Capping.ABSOLUTE and (
            self.cap_value is None or self.cap_value <= 0
        ):
            raise ValidationError({"cap_value": "give the cap, a number above 0"})
        if self.capping == self.Capping.PERCENTILE and not (
            self.cap_value is not None and 0 < self.cap_value < 1
        ):
            raise ValidationError({"cap_value": "give the percentile as a fraction, e.g. 0.99"})


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        STOPPED = "stopped"
        CONCLUDED = "concluded"

    class Engine(models.TextChoices):
        FREQUENTIST = "frequentist", "frequentist (p-values and confidence intervals)"
        BAYESIAN = "bayesian", "Bayesian (chance to win, risk and credible intervals)"

    key = models.SlugField(
        max_length=80, unique=True, help_text="sent by clients; frozen once started"
    )
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    coverage = models.FloatField(
        default=1.0,
        validators=_unit("coverage"),
        help_text="share of eligible users included (0-1)",
    )
    hash_seed = models.CharField(
        max_length=100, blank=True, help_text="hashing seed; empty uses the key"
    )
    namespace = models.SlugField(
        max_length=80,
        blank=True,
        help_text="mutual exclusion: experiments in one namespace take disjoint ranges",
    )
    namespace_start = models.FloatField(default=0.0, validators=_unit("namespace start"))
    namespace_end = models.FloatField(default=1.0, validators=_unit("namespace end"))
    conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text='targeting, GrowthBook syntax, e.g. {"country": {"$in": ["US", "CA"]}, '
        '"app_version": {"$gte": "2.1.0"}}',
    )
    primary_metric = models.ForeignKey(
        Metric, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    secondary_metrics = models.ManyToManyField(Metric, blank=True, related_name="+")
    guardrail_metrics = models.ManyToManyField(Metric, blank=True, related_name="+")
    minimum_detectable_effect = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.001), MaxValueValidator(10.0)],
        help_text="relative, 0.05 = 5%",
    )
    alpha = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)]
    )
    power = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(0.999)]
    )
    minimum_runtime_days = models.PositiveIntegerField(default=7)
    depends_on_services = models.JSONField(
        "depends on services",
        default=list,
        blank=True,
        help_text="services whose releases can move this experiment's metrics: the readout "
        "warns when one of them was rolled out while the experiment ran",
    )
    sequential_testing = models.BooleanField(
        default=True,
        help_text="frequentist: always-valid intervals and p-values, safe to look every hour",
    )
    engine = models.CharField(
        max_length=20,
        choices=Engine.choices,
        default=default_engine,
        help_text="the statistics the page, the API and auto-conclusion use (project default: "
        "EXPERIMENTS_ENGINE); frozen once started",
    )
    prior_mean = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(-1.0), MaxValueValidator(10.0)],
        help_text="Bayesian: prior mean of the relative lift (0 = no change expected)",
    )
    prior_stddev = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.001), MaxValueValidator(10.0)],
        help_text="Bayesian: prior standard deviation of the relative lift (GrowthBook: 0.3)",
    )
    proper_prior = models.BooleanField(
        default=True, help_text="Bayesian: use the prior (off: a flat prior, data only)"
    )
    risk_threshold = models.FloatField(
        default=0.0025,
        validators=[MinValueValidator(0.00001), MaxValueValidator(0.5)],
        help_text="Bayesian: ship a variant only when its risk (expected relative loss) is "
        "below this, 0.0025 = 0.25%",
    )
    sticky_bucketing = models.BooleanField(
        default=True,
        help_text="a user keeps the first variant they get, whatever later changes to targeting, "
        "coverage or weights (GrowthBook's sticky bucketing); frozen once started",
    )
    bucket_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="sticky bucketing: raised to re-randomize; assignments of older versions are "
        "no longer used",
    )
    min_bucket_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="sticky bucketing: users bucketed under a version below this are excluded",
    )
    dimensions = models.JSONField(
        default=list,
        blank=True,
        help_text='dimensions to split results by, e.g. ["country", "device_type", '
        '"user.signup_source", "exposure.app_version"]; those set before the experiment starts '
        "are pre-registered, one added later is shown with a 'chosen after looking' warning",
    )
    preregistered_dimensions = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="the dimensions set when the experiment started",
    )
    sequential_tuning = models.FloatField(
        null=True, blank=True, editable=False, help_text="set at start from the planned sample"
    )
    power_analysis = models.JSONField(default=dict, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_by = models.CharField(max_length=200, blank=True, editable=False)
    conclusion = models.TextField(blank=True, editable=False)
    winner = models.ForeignKey(
        "Variant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    last_results = models.JSONField(default=dict, blank=True, editable=False)
    results_computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    srm_flagged = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(coverage__gte=0, coverage__lte=1), name="experiment_coverage_0_1"
            ),
            models.CheckConstraint(
                condition=models.Q(namespace_start__lt=models.F("namespace_end")),
                name="experiment_namespace_range",
            ),
            models.CheckConstraint(
                condition=models.Q(min_bucket_version__lte=models.F("bucket_version")),
                name="experiment_min_bucket_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def seed(self) -> str:
        return self.hash_seed or self.key

    @property
    def has_started(self) -> bool:
        return self.status != self.Status.DRAFT

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.RUNNING

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            condition_validate(self.conditions)
        except ConditionError as exc:
            errors["conditions"] = str(exc)
        try:
            dimension_names_validate(self.dimensions)
        except InvalidRequest as exc:
            errors["dimensions"] = exc.problem
        if self.namespace_start >= self.namespace_end:
            errors["namespace_end"] = "the namespace range end must be above its start"
        if self.pk:
            stored = Experiment.objects.filter(pk=self.pk).first()
            if stored is not None and stored.has_started:
                frozen = FROZEN_WHEN_STARTED + (() if stored.sticky_bucketing else ("coverage",))
                for field in frozen:
                    if getattr(stored, field) != getattr(self, field):
                        errors[field] = (
                            "cannot change once the experiment has started (it would "
                            "re-randomize users); stop it and start a new experiment"
                        )
        if errors:
            raise ValidationError(errors)


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=80, help_text="returned to clients, e.g. control, b")
    name = models.CharField(max_length=200, blank=True)
    weight = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="share of traffic: fractions summing to 1, or percentages summing to 100",
    )
    is_control = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.key

    def clean(self) -> None:
        if not (self.experiment_id and self.experiment.has_started):
            return
        stored = Variant.objects.filter(pk=self.pk).first() if self.pk else None
        changed = (
            stored is None
            or (stored.key, stored.is_control) != (self.key, self.is_control)
            or (stored.weight != self.weight and not self.experiment.sticky_bucketing)
        )
        if changed:
            raise ValidationError(
                "variants cannot change once the experiment has started (it would re-randomize "
                "users); only weights may change, and only with sticky bucketing"
            )


def variants_validate(variants: list[dict]) -> None:
    """Raise ValidationError unless the variants form a valid split: at least two, unique keys,
    exactly one control, weights summing to 1 (or 100)."""
    if len(variants) < 2:
        raise ValidationError("an experiment needs at least two variants")
    keys = [v["key"] for v in variants]
    if len(set(keys)) != len(keys):
        raise ValidationError("variant keys must be unique within the experiment")
    controls = sum(1 for v in variants if v["is_control"])
    if controls != 1:
        raise ValidationError(f"exactly one variant must be the control (found {controls})")
    total = sum(v["weight"] for v in variants)
    if not (abs(total - 1.0) < WEIGHT_TOLERANCE or abs(total - 100.0) < 100 * WEIGHT_TOLERANCE):
        raise ValidationError(f"variant weights must sum to 1 (or 100%); they sum to {total:g}")


def normalized_weights(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else weights


class StickyAssignment(models.Model):
    """One sticky bucket: the variant a user got in one bucket version of an experiment.

    GrowthBook keeps one document per hash attribute value, `{"attributeName",
    "attributeValue", "assignments": {"<experiment>__<bucket version>": "<variant key>"}}`;
    a row per assignment is the same document normalized, so concurrent assignments of one
    user in several processes never overwrite each other (first writer wins)."""

    attribute_name = models.CharField(max_length=100, default="id")
    attribute_value = models.CharField(max_length=200)
    experiment_key = models.CharField(max_length=80)
    bucket_version = models.PositiveIntegerField(default=0)
    variant_key = models.CharField(max_length=80)
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["attribute_name", "attribute_value", "experiment_key", "bucket_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["attribute_name", "attribute_value", "experiment_key", "bucket_version"],
                name="sticky_assignment_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attribute_name}||{self.attribute_value}: {self.doc_key} = {self.variant_key}"

    @property
    def doc_key(self) -> str:
        return sticky_key(self.experiment_key, self.bucket_version)


def sticky_key(experiment_key: str, bucket_version: int) -> str:
    """GrowthBook's key of an experiment's bucket version in an assignment document."""
    return f"{experiment_key}__{bucket_version}"


HOLDOUT_CONTROL = "holdoutcontrol"
HOLDOUT_TREATMENT = "holdouttreatment"
HOLDOUT_GROUPS = (HOLDOUT_CONTROL, HOLDOUT_TREATMENT)
HOLDOUT_FEATURE_PREFIX = "$holdout:"


class Holdout(models.Model):
    """A share of users kept out of a set of experiments, to measure what those experiments
    (and the winners they ship) do together over the long run.

    GrowthBook's holdout: the users hashed into twice the held share are split in half, the
    holdout (`holdoutcontrol`: no covered experiment, the control value of concluded ones) and
    an equal random sample of everyone else (`holdouttreatment`: the general population, in
    the experiments as usual); the readout compares the two."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        ENDED = "ended"

    key = models.SlugField(max_length=80, unique=True, help_text="frozen once started")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    percentage = models.FloatField(
        default=0.05,
        validators=[
            MinValueValidator(0.001, "hold out at least 0.1% of users"),
            MaxValueValidator(0.5, "hold out at most 50% of users"),
        ],
        help_text="share of users held out (0.05 = 5%); an equal share of everyone else is "
        "measured as the general population; frozen once started",
    )
    hash_seed = models.CharField(
        max_length=100, blank=True, help_text="hashing seed; empty uses the tracking key"
    )
    experiments = models.ManyToManyField(
        Experiment,
        blank=True,
        related_name="holdouts",
        help_text="the experiments held-out users never see (add them before they start)",
    )
    metrics = models.ManyToManyField(
        Metric,
        blank=True,
        related_name="+",
        help_text="goal metrics of the readout; empty: the covered experiments' primary and "
        "secondary metrics",
    )
    engine = models.CharField(
        max_length=20,
        choices=Experiment.Engine.choices,
        default=default_engine,
        help_text="the statistics of the readout (project default: EXPERIMENTS_ENGINE)",
    )
    alpha = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)]
    )
    sequential_testing = models.BooleanField(
        default=True,
        help_text="frequentist: always-valid intervals, safe to read the holdout any day",
    )
    ends_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="planned end: held-out users rejoin the experiments from then on (empty: "
        "until ended by hand)",
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The engines' settings an experiment has and a holdout takes at their defaults.
    prior_mean = 0.0
    prior_stddev = 0.3
    proper_prior = True
    risk_threshold = 0.0025
    sequential_tuning = None

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(percentage__gt=0, percentage__lte=0.5),
                name="holdout_percentage_0_half",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def tracking_key(self) -> str:
        """The experiment key of the holdout's exposure events and of its SDK feature
        (GrowthBook's `$holdout:<id>`): never an experiment's key (slugs have no `$`)."""
        return HOLDOUT_FEATURE_PREFIX + self.key

    @property
    def seed(self) -> str:
        return self.hash_seed or self.tracking_key

    @property
    def coverage(self) -> float:
        return 2 * self.percentage

    @property
    def has_started(self) -> bool:
        return self.status != self.Status.DRAFT

    def clean(self) -> None:
        if self.pk:
            stored = Holdout.objects.filter(pk=self.pk).first()
            if stored is not None and stored.has_started:
                for field in ("key", "percentage", "hash_seed"):
                    if getattr(stored, field) != getattr(self, field):
                        raise ValidationError(
                            {
                                field: "cannot change once the holdout has started (it would "
                                "move users in or out of it); end it and start a new one"
                            }
                        )
