"""Experiments API: assignment for machine clients, the experiment list and results for staff."""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.store.base import QueryTimeout, StoreError
from core.api_keys import Scope, authenticate_publishable
from core.auth import ApiKeyAuthentication, HasScope, JsonOnlyNegotiation
from core.errors import error_body
from core.strict import StrictJSONParser
from experiments.assignment import assign
from experiments.dimensions import FIRST_EXPOSURE, HELP, MAX_DIMENSIONS, USER, dimensions_parse
from experiments.dimensions import PATTERN as DIMENSION_PATTERN
from experiments.models import HOLDOUT_FEATURE_PREFIX, HOLDOUT_GROUPS, Experiment, Holdout, Metric
from experiments.releases import experiment_release_warning
from experiments.results import experiment_results_cached, holdout_results_cached
from experiments.sdk import CACHE_CONTROL, sdk_payload
from experiments.services import exposures_record


class AssignInput(serializers.Serializer):
    user_id = serializers.CharField(max_length=200, trim_whitespace=False)
    attributes = serializers.DictField(required=False, default=dict)
    experiments = serializers.ListField(
        child=serializers.CharField(max_length=80, trim_whitespace=False),
        required=False,
        max_length=200,
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _character_problem(text: str) -> str | None:
    """What DRF's CharField refuses besides length: NUL and lone surrogates (JSON can carry
    both as escapes; neither can reach the store as UTF-8 text)."""
    if "\x00" in text:
        return "Null characters are not allowed."
    if m := _SURROGATE.search(text):
        return f"Surrogate characters are not allowed: U+{ord(m[0]):X}."
    return None


def assign_input(data) -> tuple[str, dict, list[str] | None]:
    """The assignment body checked by plain code (the hot path), by the rules AssignInput
    documents; a test holds the two to the same answers. Raises ValidationError naming the
    field."""
    if not isinstance(data, dict):
        raise ValidationError({"body": ["expected a JSON object"]})
    user_id = data.get("user_id")
    if "user_id" not in data:
        raise ValidationError({"user_id": ["This field is required."]})
    if user_id is None:
        raise ValidationError({"user_id": ["This field may not be null."]})
    if not isinstance(user_id, str):  # a JSON body's types are strict (core.strict)
        raise ValidationError({"user_id": ["Not a valid string."]})
    if not user_id:
        raise ValidationError({"user_id": ["This field may not be blank."]})
    if len(user_id) > 200:
        raise ValidationError({"user_id": ["Ensure this field has no more than 200 characters."]})
    if problem := _character_problem(user_id):
        raise ValidationError({"user_id": [problem]})
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ValidationError({"attributes": ["Expected a dictionary of items."]})
    keys = data.get("experiments")
    if "experiments" in data:
        if not isinstance(keys, list):
            raise ValidationError({"experiments": ["Expected a list of items."]})
        if len(keys) > 200:
            raise ValidationError(
                {"experiments": ["Ensure this field has no more than 200 elements."]}
            )
        for key in keys:
            if not isinstance(key, str) or not key:
                raise ValidationError({"experiments": ["Each item must be a non-blank string."]})
            if len(key) > 80:
                raise ValidationError({"experiments": ["Each item has at most 80 characters."]})
            if problem := _character_problem(key):
                raise ValidationError({"experiments": [problem]})
    return user_id, attributes, keys


class ExperimentAssignApi(APIView):
    """`POST /api/experiments/assign/`: the variants of the running experiments a user is in."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope(Scope.EXPERIMENTS_ASSIGN)]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(
        request=AssignInput,
        responses={
            200: inline_serializer(
                "AssignOutput",
                {
                    "user_id": serializers.CharField(),
                    "assignments": serializers.DictField(child=serializers.CharField()),
                    "holdouts": serializers.DictField(
                        child=serializers.ChoiceField(choices=HOLDOUT_GROUPS),
                        help_text="{holdout key: group} for the running holdouts of the "
                        "experiments evaluated that hold the user (holdoutcontrol: no covered "
                        "experiment) or measure them as the general population "
                        "(holdouttreatment); users in neither are absent",
                    ),
                    "unknown_experiments": serializers.ListField(child=serializers.CharField()),
                },
            ),
            400: OpenApiResponse(description="a field of the body is invalid (named in detail)"),
        },
        summary="Assign a user to the running experiments (records exposure events)",
    )
    def post(self, request):
        user_id, attributes, keys = assign_input(request.data)
        assignments, holdouts, unknown = assign(user_id, attributes, keys)
        exposures_record(
            assignments={
                **assignments,
                **{HOLDOUT_FEATURE_PREFIX + key: group for key, group in holdouts.items()},
            },
            user_id=user_id,
            api_key=request.auth,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(
            {
                "user_id": user_id,
                "assignments": assignments,
                "holdouts": holdouts,
                "unknown_experiments": unknown,
            }
        )


class VariantOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    weight = serializers.FloatField()
    control = serializers.BooleanField(source="is_control")


class ExperimentOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    coverage = serializers.FloatField()
    seed = serializers.CharField()
    hash_version = serializers.SerializerMethodField()
    namespace = serializers.SerializerMethodField()
    conditions = serializers.JSONField()
    sticky_bucketing = serializers.BooleanField(
        help_text="a user keeps the first variant they get (GrowthBook's sticky bucketing)"
    )
    bucket_version = serializers.IntegerField(
        min_value=0, help_text="GrowthBook's bucketVersion: raised when re-randomized"
    )
    min_bucket_version = serializers.IntegerField(
        min_value=0,
        help_text="GrowthBook's minBucketVersion: users bucketed under a lower version are "
        "excluded",
    )
    variants = VariantOutput(many=True)
    started_at = serializers.DateTimeField(allow_null=True, help_text="null: not started")
    ended_at = serializers.DateTimeField(allow_null=True, help_text="null: not ended")
    winner = serializers.CharField(source="winner.key", default=None, allow_null=True)
    conclusion = serializers.CharField()

    def get_hash_version(self, obj) -> int:
        return 2

    def get_namespace(self, obj) -> dict | None:
        if not obj.namespace:
            return None
        return {"id": obj.namespace, "start": obj.namespace_start, "end": obj.namespace_end}


class ExperimentListApi(APIView):
    """`GET /api/experiments/`: every experiment with what is needed to assign offline."""

    @extend_schema(responses=ExperimentOutput(many=True), summary="List experiments")
    def get(self, request):
        experiments = Experiment.objects.prefetch_related("variants").select_related("winner")
        return Response(ExperimentOutput(experiments, many=True).data)


def _number(nullable: bool = False, **extra) -> dict:
    return {"type": "number", "format": "double", "nullable": nullable, **extra}


def _object(properties: dict, description: str = "") -> dict:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_INTERVAL = {
    "type": "array",
    "items": {"type": "number", "format": "double"},
    "minItems": 2,
    "maxItems": 2,
    "nullable": True,
    "description": "[low, high] of the relative lift",
}
_PROBABILITY = _number(True, minimum=0, maximum=1)
FREQUENTIST_COMPARISON = _object(
    {
        "lift": _number(True, description="relative lift vs control (0.03 = +3%)"),
        "ci": _INTERVAL,
        "p_value": _PROBABILITY,
        "p_value_adjusted": {
            **_PROBABILITY,
            "description": "Holm-adjusted across goal metrics and variants (guardrails: raw)",
        },
    },
    "frequentist engine (null values: not enough data, a zero baseline or zero variance)",
)
BAYESIAN_COMPARISON = _object(
    {
        "lift": _number(True, description="posterior mean of the relative lift"),
        "ci": _INTERVAL,
        "chance_to_win": _PROBABILITY,
        "risk": _number(True, minimum=0, description="expected relative loss of shipping it"),
        "risk_control": _number(
            True, minimum=0, description="expected relative loss of keeping control"
        ),
    },
    "Bayesian engine (null values: not enough data, a zero baseline or zero variance)",
)
_USERS = {"type": "integer", "minimum": 0}
CONVERSION_SUMMARY = _object(
    {
        "users": _USERS,
        "conversions": _number(
            minimum=0, description="after CUPED: users x the adjusted rate (not a whole number)"
        ),
    },
    "conversion metric",
)
MEAN_SUMMARY = _object(
    {"users": _USERS, "mean": _number(), "variance": _number(minimum=0)},
    "mean metric, or ratio metric (mean: the ratio of sums; variance: per user, delta method)",
)


@extend_schema_field(
    {
        "oneOf": [FREQUENTIST_COMPARISON, BAYESIAN_COMPARISON],
        "nullable": True,
        "description": "null for the control; the experiment's engine's quantities only",
    }
)
class ComparisonField(serializers.JSONField):
    pass


QUANTILE_SUMMARY = _object(
    {
        "users": _USERS,
        "values": {
            "type": "integer",
            "minimum": 0,
            "description": "the values the quantile is over: events, or users with an event",
        },
        "mean": _number(True, description="the quantile (as `quantile`)"),
        "quantile": _number(True, description="the sample quantile, e.g. p90"),
        "variance": _number(
            True, minimum=0, description="per value, from the order-statistic interval"
        ),
        "ci": {
            **_INTERVAL,
            "description": "[low, high] of the quantile itself, (1 - alpha) confidence",
        },
    },
    "quantile metric (null quantities: too few values for an interval)",
)


@extend_schema_field({"oneOf": [CONVERSION_SUMMARY, MEAN_SUMMARY, QUANTILE_SUMMARY]})
class SummaryField(serializers.JSONField):
    pass


class ResultVariantOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    control = serializers.BooleanField()
    raw = SummaryField()
    adjusted = SummaryField(help_text="after CUPED and capping; equal to raw when neither applies")
    comparison = ComparisonField(allow_null=True)


class CupedOutput(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="the metric has CUPED on")
    applied = serializers.BooleanField(help_text="the pre-exposure data had variance to use")
    pre_period_days = serializers.IntegerField(min_value=1)
    theta = serializers.FloatField(allow_null=True)
    variance_reduction = serializers.FloatField(
        allow_null=True, help_text="1 - variance after CUPED / before, pooled over variants"
    )


class CappingOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=Metric.Capping.values)
    value = serializers.FloatField(allow_null=True, help_text="the metric's setting")
    cap = serializers.FloatField(allow_null=True, help_text="the cap applied to user values")


class QuantileSettingOutput(serializers.Serializer):
    level = serializers.FloatField(min_value=0, max_value=1, help_text="e.g. 0.9")
    scope = serializers.ChoiceField(
        choices=Metric.QuantileScope.values,
        help_text="event: over every event's value; user: over each user's total",
    )
    label = serializers.CharField(help_text="e.g. p90, median")


class ResultMetricOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Metric.Kind.values)
    role = serializers.ChoiceField(choices=["primary", "secondary", "guardrail"])
    direction = serializers.ChoiceField(choices=Metric.Direction.values)
    window_days = serializers.IntegerField(min_value=1)
    quantile = QuantileSettingOutput(allow_null=True, help_text="quantile metrics only")
    cuped = CupedOutput()
    capping = CappingOutput()
    variants = ResultVariantOutput(many=True)


class SrmOutput(serializers.Serializer):
    p_value = serializers.FloatField(min_value=0, max_value=1)
    ok = serializers.BooleanField()
    users = serializers.DictField(child=serializers.IntegerField(min_value=0))
    expected_share = serializers.DictField(child=serializers.FloatField(min_value=0))
    unknown_variant_users = serializers.IntegerField(min_value=0)


class DecisionOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["winner", "loser", "flat", "srm", "empty"])
    variant = serializers.CharField(allow_null=True)
    guardrail_harmed = serializers.BooleanField()
    failing_guardrails = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()


class PriorOutput(serializers.Serializer):
    mean = serializers.FloatField()
    stddev = serializers.FloatField()
    proper = serializers.BooleanField()


class SeriesOutput(serializers.Serializer):
    rate = serializers.ListField(child=serializers.FloatField(allow_null=True))
    low = serializers.ListField(child=serializers.FloatField(allow_null=True))
    high = serializers.ListField(child=serializers.FloatField(allow_null=True))


class TimeseriesOutput(serializers.Serializer):
    days = serializers.ListField(child=serializers.DateField())
    exposures = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=0))
    )
    primary = serializers.DictField(child=SeriesOutput())


class DimensionMetricOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Metric.Kind.values)
    role = serializers.ChoiceField(choices=["primary", "secondary", "guardrail"])
    variants = ResultVariantOutput(
        many=True,
        help_text="as the readout's, for this value's users; frequentist p_value_adjusted is "
        "Benjamini-Hochberg across the dimension",
    )


class DimensionValueOutput(serializers.Serializer):
    value = serializers.CharField(
        allow_null=True, allow_blank=True, help_text="null for the folded rest; '' when not set"
    )
    label = serializers.CharField()
    other = serializers.BooleanField(help_text="every value past the top ones, together")
    users = serializers.DictField(
        child=serializers.IntegerField(min_value=0), help_text="exposed users per variant"
    )
    metrics = DimensionMetricOutput(many=True)


class CorrectionOutput(serializers.Serializer):
    method = serializers.ChoiceField(choices=["benjamini-hochberg", "none"])
    adjusted = serializers.ListField(
        child=serializers.CharField(), help_text="the comparison fields the correction adjusts"
    )
    text = serializers.CharField()


class DimensionOutput(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    source = serializers.ChoiceField(
        choices=[FIRST_EXPOSURE, USER],
        help_text="the property on the user's first exposure, or the user's property now",
    )
    pre_registered = serializers.BooleanField(
        help_text="set in the experiment's dimensions before it started"
    )
    warning = serializers.CharField(
        allow_null=True, help_text="chosen after looking: not pre-registered"
    )
    top_values = serializers.IntegerField(
        min_value=1, help_text="values shown apart; the rest are folded into one 'other'"
    )
    correction = CorrectionOutput()
    values = DimensionValueOutput(many=True)


class ReleaseOutput(serializers.Serializer):
    service = serializers.CharField()
    image_tag = serializers.CharField()
    kind = serializers.ChoiceField(choices=["start", "promoted", "rollback"])
    at = serializers.DateTimeField()
    label = serializers.CharField()


class ReleaseWarningOutput(serializers.Serializer):
    message = serializers.CharField()
    rollouts = ReleaseOutput(many=True, help_text="oldest first")


class ResultsOutput(serializers.Serializer):
    experiment = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.values)
    engine = serializers.ChoiceField(choices=Experiment.Engine.values)
    sequential = serializers.BooleanField(help_text="frequentist sequential testing (always-valid)")
    alpha = serializers.FloatField()
    prior = PriorOutput(allow_null=True, help_text="Bayesian engine only")
    risk_threshold = serializers.FloatField(allow_null=True, help_text="Bayesian engine only")
    srm = SrmOutput()
    metrics = ResultMetricOutput(many=True)
    required_users_per_variant = serializers.IntegerField(allow_null=True)
    users_per_variant_so_far = serializers.IntegerField(min_value=0)
    decision = DecisionOutput()
    verdict = serializers.CharField()
    computed_at = serializers.DateTimeField()
    timeseries = TimeseriesOutput()
    dimensions = DimensionOutput(
        many=True, help_text="one block per `dimension` asked for, in that order (else empty)"
    )
    release_warning = ReleaseWarningOutput(
        allow_null=True,
        help_text="rollouts (start, promotion, rollback) of the services the experiment "
        "depends on while it ran; null when none (or no services are set)",
    )


ErrorOutput = inline_serializer(
    "ExperimentErrorOutput",
    {"error": serializers.CharField(), "detail": serializers.JSONField()},
)


def _store_read_responses(output, what: str) -> dict:
    return {
        200: output,
        401: OpenApiResponse(ErrorOutput, description="not authenticated"),
        403: OpenApiResponse(ErrorOutput, description="not a staff role"),
        404: OpenApiResponse(ErrorOutput, description=f"no {what} with this key"),
        503: OpenApiResponse(ErrorOutput, description="the analytics store did not answer"),
    }


class StoreReadApi(APIView):
    """A view reading the analytics store: a store that cannot answer is a 503."""

    def handle_exception(self, exc):
        if isinstance(exc, StoreError):
            code = "query_timeout" if isinstance(exc, QueryTimeout) else "store_unavailable"
            return Response(
                error_body(code, f"the analytics store could not answer ({exc}); try again"),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return super().handle_exception(exc)


class ExperimentResultsApi(StoreReadApi):
    """`GET /api/experiments/<key>/results/`: the readout by the experiment's engine,
    recomputed at most once a minute. The dictionary is the readout itself (the page reads
    the same one); ResultsOutput documents it exactly."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "dimension",
                {"type": "array", "items": {"type": "string", "pattern": DIMENSION_PATTERN}},
                OpenApiParameter.QUERY,
                required=False,
                style="form",
                explode=True,
                description=f"split the results by this dimension (repeat for up to "
                f"{MAX_DIMENSIONS} distinct ones; more answer 422): {HELP}",
            )
        ],
        responses={
            **_store_read_responses(ResultsOutput, "experiment"),
            400: OpenApiResponse(
                ErrorOutput, description="an unknown dimension, or too many (named in detail)"
            ),
        },
        summary="Results of an experiment, by its engine (frequentist or Bayesian)",
    )
    def get(self, request, key: str):
        experiment = get_object_or_404(Experiment, key=key)
        dimensions = dimensions_parse(request.query_params.getlist("dimension"))
        return Response(
            {
                **experiment_results_cached(experiment=experiment, dimensions=dimensions),
                "release_warning": experiment_release_warning(experiment=experiment),
            }
        )


class HoldoutExperimentOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.values)
    winner = serializers.CharField(allow_null=True, help_text="concluded with this variant")


class HoldoutCrossingOutput(serializers.Serializer):
    grp = serializers.ChoiceField(choices=HOLDOUT_GROUPS, help_text="the holdout group")
    experiment = serializers.CharField(help_text="a covered experiment")
    variant = serializers.CharField()
    users = serializers.IntegerField(min_value=0)


class HoldoutResultsOutput(serializers.Serializer):
    holdout = serializers.CharField()
    tracking_key = serializers.CharField(
        help_text="the experiment_id of the holdout's exposure events and its SDK feature"
    )
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Holdout.Status.values)
    percentage = serializers.FloatField(min_value=0, max_value=0.5)
    engine = serializers.ChoiceField(choices=Experiment.Engine.values)
    sequential = serializers.BooleanField(help_text="frequentist sequential testing (always-valid)")
    alpha = serializers.FloatField()
    experiments = HoldoutExperimentOutput(many=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True, help_text="planned end")
    ended_at = serializers.DateTimeField(allow_null=True)
    days_running = serializers.FloatField(min_value=0)
    srm = SrmOutput(help_text="the holdout and the general population sample, planned 50/50")
    metrics = ResultMetricOutput(
        many=True,
        help_text="variants: holdoutcontrol (the holdout, control) and holdouttreatment (the "
        "general population sample); comparison: the general population vs the holdout",
    )
    crossing = HoldoutCrossingOutput(
        many=True, help_text="users of each group exposed to each covered experiment's variants"
    )
    leaked_users = serializers.IntegerField(
        min_value=0, help_text="held users exposed to a covered experiment (should be 0)"
    )
    verdict = serializers.CharField()
    computed_at = serializers.DateTimeField()
    timeseries = TimeseriesOutput()


class HoldoutListOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Holdout.Status.values)
    percentage = serializers.FloatField(min_value=0, max_value=0.5)
    tracking_key = serializers.CharField()
    seed = serializers.CharField()
    experiments = serializers.SerializerMethodField(help_text="keys of the covered experiments")
    started_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)

    def get_experiments(self, obj) -> list[str]:
        return [e.key for e in obj.experiments.all()]


class HoldoutListApi(APIView):
    """`GET /api/holdouts/`: every holdout and the experiments it covers."""

    @extend_schema(responses=HoldoutListOutput(many=True), summary="List holdouts")
    def get(self, request):
        holdouts = Holdout.objects.prefetch_related("experiments")
        return Response(HoldoutListOutput(holdouts, many=True).data)


class HoldoutResultsApi(StoreReadApi):
    """`GET /api/holdouts/<key>/results/`: the holdout vs the general population on the goal
    metrics, by the holdout's engine, recomputed at most once a minute."""

    @extend_schema(
        responses=_store_read_responses(HoldoutResultsOutput, "holdout"),
        summary="Long-run readout of a holdout: the covered experiments' combined effect",
    )
    def get(self, request, key: str):
        holdout = get_object_or_404(Holdout, key=key)
        return Response(holdout_results_cached(holdout=holdout))


def _client_key(raw: str):
    """The active publishable key named in the URL (GrowthBook SDKs put the client key in the
    path, never in a header): 401 unknown, 403 secret or without the scope, 429 over its rate."""
    return authenticate_publishable(raw, scope=Scope.EXPERIMENTS_PAYLOAD)


_FEATURE = {
    "type": "object",
    "required": ["defaultValue", "rules"],
    "properties": {
        "defaultValue": {
            "type": "string",
            "nullable": True,
            "description": "null: users outside the experiment get no variant",
        },
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "a GrowthBook experiment rule (running experiment: id, key, "
                "name, seed, hashAttribute 'id', hashVersion 2, variations (variant keys), "
                "weights, coverage, meta, phase, and condition and namespace when set) or a "
                "force rule (concluded experiment: id, force = winner or control key)",
                "additionalProperties": True,
            },
        },
    },
}
SDK_PAYLOAD_SCHEMA = {
    "type": "object",
    "required": ["status", "features", "experiments"],
    "properties": {
        "status": {"type": "integer", "enum": [200]},
        "features": {
            "type": "object",
            "additionalProperties": _FEATURE,
            "description": "one feature per running or concluded experiment, keyed by its key",
        },
        "experiments": {"type": "array", "items": {"type": "object"}, "maxItems": 0},
        "savedGroups": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "members of each saved cohort a running experiment targets "
            "(cohort-<id>); absent when none",
        },
        "encryptedFeatures": {
            "type": "string",
            "description": "a key with SDK payload encryption on: `features` encrypted "
            "(base64 IV '.' base64 AES-CBC ciphertext, the key's decryption key), and "
            "`features` is then empty",
        },
        "encryptedSavedGroups": {
            "type": "string",
            "description": "a key with encryption on: `savedGroups` encrypted the same way",
        },
    },
}


# Browsers fetch the payload from the app's origin; the payload is as public as the key.
SDK_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match, Cache-Control",
    "Access-Control-Expose-Headers": "ETag",
    "Access-Control-Max-Age": "86400",
}


class SdkFeaturesApi(APIView):
    """`GET /api/features/<client_key>`: the GrowthBook SDK payload (the path every GrowthBook
    SDK fetches from its `apiHost`)."""

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    def options(self, request, *args, **kwargs):
        return Response(status=status.HTTP_204_NO_CONTENT, headers=SDK_CORS)

    def get_authenticate_header(self, request) -> str:
        return "Api-Key"  # a refused key answers 401, not DRF's 403 for views without auth

    @extend_schema(
        auth=[],
        parameters=[
            OpenApiParameter(
                "client_key",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="a publishable API key (GrowthBook's clientKey)",
            ),
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="the ETag of a payload the SDK holds; 304 when unchanged",
            ),
        ],
        responses={
            200: OpenApiResponse(SDK_PAYLOAD_SCHEMA, description="the SDK payload"),
            304: OpenApiResponse(description="unchanged since the ETag given"),
            401: OpenApiResponse(ErrorOutput, description="not a valid, active key"),
            403: OpenApiResponse(
                ErrorOutput, description="a secret key, or a key without experiments:payload"
            ),
            429: OpenApiResponse(ErrorOutput, description="rate limit of the key; Retry-After"),
        },
        summary="GrowthBook SDK payload: running experiments as features",
    )
    def get(self, request, client_key: str):
        key = _client_key(client_key)
        secret = key.sdk_decryption_key if key.encrypt_sdk_payload else None
        body, etag = sdk_payload(secret=secret)
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, **SDK_CORS}
        if etag in request.headers.get("If-None-Match", ""):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(body, headers=headers)
