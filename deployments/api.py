"""The deployments API: services, rollouts and their controls. Writes need the engineer role."""

import itertools

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NOT_FOUND, UNPROCESSABLE
from core.pagination import MAX_LIMIT, MAX_OFFSET, BoundedLimitOffsetPagination
from core.roles import HasRole, Role
from deployments import matching, selectors, services
from deployments.metrics import templates
from deployments.models import (
    DNS_LABEL,
    IMAGE_REPOSITORY,
    IMAGE_TAG,
    HookType,
    RolloutStatus,
    Service,
)

WRITE = HasRole(Role.ENGINEER)


def _quantity() -> serializers.RegexField:
    """A Kubernetes quantity such as 500m, 2, 1Gi."""
    return serializers.RegexField(
        r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|K|M|G)?$", max_length=20, required=False
    )


# Input --------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 0, "maximum": 100},
            {
                "type": "object",
                "properties": {
                    "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                    "pause": {
                        "oneOf": [
                            {"type": "number", "minimum": 0, "maximum": 86400},
                            {"type": "string", "enum": ["indefinite"]},
                        ],
                        "nullable": True,
                    },
                },
                "required": ["weight"],
                "additionalProperties": False,
            },
        ]
    }
)
class StepField(serializers.Field):
    """A step: a weight (int) or {"weight": int, "pause": null | seconds | "indefinite"}."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("a step is a weight or {weight, pause}")
        if isinstance(data, float) and data.is_integer():  # JSON's 50.0 is the integer 50
            data = int(data)
        if isinstance(data, int):
            data = {"weight": data}
        if not isinstance(data, dict) or set(data) - {"weight", "pause"}:
            raise serializers.ValidationError("a step is a weight or {weight, pause}")
        weight, pause = data.get("weight"), data.get("pause")
        if isinstance(weight, float) and weight.is_integer():
            weight = int(weight)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise serializers.ValidationError("weight must be an integer from 0 to 100")
        if (
            pause is not None
            and pause != "indefinite"
            and (
                isinstance(pause, bool)
                or not isinstance(pause, int | float)
                or not 0 <= pause <= 86400
            )
        ):
            raise serializers.ValidationError(
                'pause must be null, seconds (0 to 86400) or "indefinite"'
            )
        return {"weight": weight, "pause": pause}

    def to_representation(self, value):
        return value


def validate_steps(steps: list) -> list:
    weights = [s["weight"] for s in steps]
    # Rules between the items, which the schema cannot state: 422 (core.errors.Unprocessable).
    if any(b <= a for a, b in itertools.pairwise(weights)):
        raise serializers.ValidationError("weights must increase step by step", code=UNPROCESSABLE)
    if weights and weights[-1] != 100:
        raise serializers.ValidationError("the last step must be 100", code=UNPROCESSABLE)
    return steps


def _rule_schema(key: str, key_pattern: str, value_key: str, description: str) -> dict:
    value = {"type": "string", "pattern": matching.VALUE_PATTERN, "maxLength": 256}
    if value_key == "regex":
        value = {**value, "format": "regex", "description": "RE2: no backreferences or lookarounds"}
    return {
        "type": "object",
        "description": description,
        "properties": {
            key: {"type": "string", "pattern": key_pattern, "maxLength": 64},
            value_key: value,
        },
        "required": [key, value_key],
        "additionalProperties": False,
    }


@extend_schema_field(
    {
        "oneOf": [
            _rule_schema("header", matching.HEADER_PATTERN, "exact", "the header equals"),
            _rule_schema("header", matching.HEADER_PATTERN, "prefix", "the header starts with"),
            _rule_schema("header", matching.HEADER_PATTERN, "regex", "the header matches"),
            _rule_schema("cookie", matching.COOKIE_PATTERN, "value", "the cookie has the value"),
        ]
    }
)
class MatchRuleField(serializers.Field):
    """One rule sending matching requests to canary (deployments/matching.py)."""

    def to_internal_value(self, data):
        try:
            return matching.validate_rules([data])[0]
        except matching.MatchError as exc:
            raise serializers.ValidationError(str(exc).removeprefix("rule 1: ")) from None

    def to_representation(self, value):
        return value


class MetricJudgeInput(serializers.Serializer):
    """How the statistical judge treats one metric."""

    direction = serializers.ChoiceField(
        choices=["increase", "decrease", "either"], required=False, help_text="which way is bad"
    )
    allowed_increase = serializers.FloatField(
        min_value=1,
        max_value=100,
        required=False,
        help_text="ratio of canary to stable means tolerated upwards (1.2: +20 %)",
    )
    allowed_decrease = serializers.FloatField(
        min_value=0, max_value=1, required=False, help_text="the same downwards (0.8: -20 %)"
    )
    weight = serializers.FloatField(min_value=0, max_value=100, required=False)
    critical = serializers.BooleanField(
        required=False, help_text="failing this metric makes the score 0"
    )


class StatisticalMetricsInput(serializers.Serializer):
    error_rate = MetricJudgeInput(required=False)
    p99_ms = MetricJudgeInput(required=False)
    cpu_percent = MetricJudgeInput(required=False)
    memory_percent = MetricJudgeInput(required=False)


class AnalysisInput(serializers.Serializer):
    schema_extra = {"additionalProperties": False}  # an unknown setting is refused

    interval_seconds = serializers.FloatField(min_value=0.2, max_value=3600, required=False)
    samples_per_step = serializers.IntegerField(min_value=1, max_value=100, required=False)
    max_error_rate = serializers.FloatField(min_value=0, max_value=100, required=False)
    max_p99_ms = serializers.FloatField(min_value=1, max_value=600000, required=False)
    max_cpu_percent = serializers.FloatField(
        min_value=1, max_value=1000, required=False, allow_null=True
    )
    max_memory_percent = serializers.FloatField(
        min_value=1, max_value=1000, required=False, allow_null=True
    )
    failure_limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    compare_to_stable = serializers.BooleanField(required=False)
    error_rate_tolerance = serializers.FloatField(min_value=0, max_value=100, required=False)
    p99_tolerance_percent = serializers.FloatField(min_value=0, max_value=1000, required=False)
    judge = serializers.ChoiceField(
        choices=["threshold", "statistical"],
        required=False,
        help_text="statistical: each step's samples are also compared with stable's "
        "(Mann-Whitney U and a score, Kayenta's judge); needs samples_per_step >= 3",
    )
    pass_score = serializers.FloatField(min_value=0, max_value=100, required=False)
    marginal_score = serializers.FloatField(
        min_value=0,
        max_value=100,
        required=False,
        help_text="a score below pass_score and at least this pauses; below it rolls back",
    )
    statistical_metrics = StatisticalMetricsInput(required=False)

    def validate(self, attrs):
        if attrs.get("judge") == "statistical" and attrs.get("samples_per_step", 3) < 3:
            raise serializers.ValidationError(
                {"samples_per_step": ["the statistical judge needs at least 3 samples per step"]},
                code=UNPROCESSABLE,
            )
        if attrs.get("marginal_score", 0) > attrs.get("pass_score", 100):
            raise serializers.ValidationError(
                {"marginal_score": ["must not be above pass_score"]}, code=UNPROCESSABLE
            )
        return attrs

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {k: ["unknown analysis setting"] for k in unknown}
                )
        return super().to_internal_value(data)


class MetricTemplateInput(serializers.Serializer):
    schema_extra = {"additionalProperties": False}  # an unknown field is refused

    """A metric template for one rollout: naming one of the service's templates changes the
    fields given; naming none adds a template (kind and query or params needed)."""

    name = serializers.RegexField(templates.NAME_PATTERN, max_length=63)
    kind = serializers.ChoiceField(choices=list(templates.KINDS), required=False)
    query = serializers.CharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="PromQL with placeholders: "
        + ", ".join(f"{{{{ {name} }}}} ({what})" for name, what in templates.PLACEHOLDERS.items()),
    )
    params = serializers.DictField(required=False, help_text="settings of the kind (store kind)")
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True)
    interval = serializers.RegexField(
        templates.INTERVAL_PATTERN, required=False, help_text="the query's window: 30s, 1m, 5m"
    )
    min_value = serializers.FloatField(required=False, allow_null=True, help_text="fail below")
    max_value = serializers.FloatField(required=False, allow_null=True, help_text="fail above")
    direction = serializers.ChoiceField(
        choices=[templates.LOWER, templates.HIGHER],
        required=False,
        help_text="which values are better",
    )
    stable_tolerance = serializers.FloatField(
        min_value=0,
        required=False,
        allow_null=True,
        help_text="while stable serves traffic, fail when the canary is worse than stable by "
        "more than this",
    )
    stable_tolerance_unit = serializers.ChoiceField(
        choices=[templates.ABSOLUTE, templates.PERCENT], required=False
    )
    effect_size_tolerance = serializers.FloatField(
        min_value=1,
        max_value=100,
        required=False,
        help_text="statistical judge: canary/stable mean ratio tolerated in the bad direction",
    )
    weight = serializers.FloatField(
        min_value=0, max_value=100, required=False, help_text="statistical judge; 0 leaves it out"
    )
    critical = serializers.BooleanField(required=False)
    failure_limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="consecutive failed checks: rollback"
    )
    inconclusive_limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="consecutive unanswered: pause"
    )
    dry_run = serializers.BooleanField(required=False, help_text="measured, shown, never decides")
    enabled = serializers.BooleanField(required=False)

    def validate_query(self, value):
        problems = templates.placeholder_problems(value)
        if problems:  # the query's grammar, which the schema cannot state (422)
            raise serializers.ValidationError(problems, code=UNPROCESSABLE)
        return value

    def validate(self, attrs):
        low, high = attrs.get("min_value"), attrs.get("max_value")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"max_value": ["must not be below min_value"]}, code=UNPROCESSABLE
            )
        return attrs

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["unknown template field"] for k in unknown})
        return super().to_internal_value(data)


def _unique_names(value: list[dict]) -> list[dict]:
    # A PATCH validates partially, nested templates included: a template without its name
    # is refused here rather than failing below.
    if any("name" not in t for t in value):
        raise serializers.ValidationError("every template needs its name")
    names = [t["name"] for t in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        # items of the list that are each valid: a rule between them (422)
        raise serializers.ValidationError(
            f"template named twice: {', '.join(repeated)}", code=UNPROCESSABLE
        )
    return value


class StepsField(serializers.ListField):
    child = StepField()

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=20, validators=[validate_steps], **kwargs)


class RolloutStartInput(serializers.Serializer):
    service = serializers.CharField(max_length=63)
    image_tag = serializers.RegexField(IMAGE_TAG.regex, max_length=128)
    steps = StepsField(required=False)
    analysis = AnalysisInput(required=False)
    match = serializers.ListField(
        child=MatchRuleField(),
        required=False,
        max_length=matching.MAX_RULES,
        help_text="requests matching any rule go to canary at every step; with rules a step "
        "may have weight 0 (only matching requests reach canary)",
    )
    metrics = MetricTemplateInput(
        many=True,
        required=False,
        max_length=30,
        help_text="metric templates for this rollout: by name, changes to the service's; new "
        "names add templates",
    )

    def validate(self, attrs):
        steps = attrs.get("steps") or []
        if not attrs.get("match") and any(step["weight"] == 0 for step in steps):
            raise serializers.ValidationError(
                {"steps": ["a step of weight 0 needs match rules (who reaches canary)"]},
                code=UNPROCESSABLE,
            )
        return attrs

    def validate_metrics(self, value):
        return _unique_names(value)

    def validate_service(self, value):
        service = Service.objects.filter(name=value).first()
        if service is None:
            raise serializers.ValidationError(f"unknown service {value!r}", code=NOT_FOUND)
        return service


class ServiceInput(serializers.Serializer):
    schema_extra = {"additionalProperties": False}  # an unknown field is refused
    name = serializers.RegexField(DNS_LABEL.regex, max_length=63)
    namespace = serializers.RegexField(DNS_LABEL.regex, max_length=63)
    image = serializers.RegexField(IMAGE_REPOSITORY.regex, max_length=255)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False)
    replicas = serializers.IntegerField(min_value=1, max_value=500, required=False)
    cpu_request = _quantity()
    cpu_limit = _quantity()
    memory_request = _quantity()
    memory_limit = _quantity()
    stable_tag = serializers.RegexField(IMAGE_TAG.regex, max_length=128, required=False)
    secret_env = serializers.DictField(
        child=serializers.RegexField(r"^[a-z0-9][-a-z0-9.]*(/[-._a-zA-Z0-9]+)?$"), required=False
    )
    default_steps = StepsField(required=False, allow_null=True)
    default_analysis = AnalysisInput(required=False)
    metric_templates = MetricTemplateInput(
        many=True,
        required=False,
        max_length=30,
        help_text="the service's whole set of metric templates: an entry naming one it has "
        "changes the fields given, a new name adds one, templates not named are removed "
        "(absent on create: the five built-ins)",
    )

    def validate_metric_templates(self, value):
        return _unique_names(value)


# Output -------------------------------------------------------------------------------------


class MetricTemplateOutput(serializers.Serializer):
    """A metric template as the rollout holds it (copied from the service at start)."""

    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=list(templates.KINDS))
    query = serializers.CharField(help_text="PromQL template (prometheus kind)")
    params = serializers.DictField(help_text="settings of the kind")
    unit = serializers.CharField()
    interval = serializers.CharField()
    min_value = serializers.FloatField(allow_null=True)
    max_value = serializers.FloatField(allow_null=True)
    direction = serializers.ChoiceField(choices=[templates.LOWER, templates.HIGHER])
    stable_tolerance = serializers.FloatField(allow_null=True)
    stable_tolerance_unit = serializers.ChoiceField(choices=[templates.ABSOLUTE, templates.PERCENT])
    effect_size_tolerance = serializers.FloatField()
    weight = serializers.FloatField()
    critical = serializers.BooleanField()
    failure_limit = serializers.IntegerField()
    inconclusive_limit = serializers.IntegerField()
    dry_run = serializers.BooleanField()
    enabled = serializers.BooleanField()


class ServiceOutput(serializers.ModelSerializer):
    current_rollout = serializers.SerializerMethodField()
    metric_templates = serializers.SerializerMethodField(
        help_text="what the service's next rollouts are judged by"
    )

    class Meta:
        model = Service
        fields = [
            "name",
            *services.SERVICE_FIELDS,
            "metric_templates",
            "current_rollout",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(MetricTemplateOutput(many=True))
    def get_metric_templates(self, obj):
        return [t.as_dict() for t in obj.metric_templates.order_by("id")]

    def get_current_rollout(self, obj) -> int | None:
        current = getattr(obj, "current", None)
        if current is None and not hasattr(obj, "current"):
            current = obj.rollouts.filter(status__in=["pending", "progressing", "paused"]).first()
        return current.pk if current else None


class RolloutSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField(source="service.name")
    image_tag = serializers.CharField()
    from_tag = serializers.CharField()
    status = serializers.CharField()
    current_step = serializers.IntegerField()
    current_weight = serializers.IntegerField(help_text="canary traffic %")
    reason = serializers.CharField()
    started_by = serializers.CharField(source="started_by_label")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True, help_text="null: still running")


class HookAnswerOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.IntegerField(allow_null=True, help_text="HTTP status; null: no answer")
    detail = serializers.CharField()
    attempts = serializers.IntegerField()
    ms = serializers.FloatField()
    at = serializers.DateTimeField()


class HookOutput(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=HookType.choices)
    host = serializers.CharField()
    enabled = serializers.BooleanField()
    last = HookAnswerOutput(allow_null=True, help_text="the hook's last answer in this rollout")


class MetricResultOutput(serializers.Serializer):
    """A template's latest check in this rollout."""

    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=list(templates.KINDS))
    unit = serializers.CharField()
    min_value = serializers.FloatField(allow_null=True)
    max_value = serializers.FloatField(allow_null=True)
    direction = serializers.ChoiceField(choices=[templates.LOWER, templates.HIGHER])
    dry_run = serializers.BooleanField(help_text="measured and shown, never decides")
    enabled = serializers.BooleanField()
    verdict = serializers.ChoiceField(
        choices=[templates.PASS, templates.FAIL, templates.INCONCLUSIVE],
        allow_null=True,
        help_text="null: not measured yet",
    )
    value = serializers.FloatField(allow_null=True, help_text="canary")
    stable = serializers.FloatField(allow_null=True)
    why = serializers.CharField(help_text="why it failed or was inconclusive")
    failures = serializers.IntegerField(help_text="consecutive failed checks")
    failure_limit = serializers.IntegerField()
    inconclusive = serializers.IntegerField(help_text="consecutive inconclusive checks")
    inconclusive_limit = serializers.IntegerField()
    at = serializers.DateTimeField(allow_null=True, help_text="when last measured")
    detail = serializers.DictField(help_text="what the kind adds (counts, p-values...)")


class RolloutOutput(RolloutSummaryOutput):
    phase = serializers.CharField()
    steps = serializers.ListField(child=serializers.DictField())
    match = serializers.ListField(child=MatchRuleField())
    hooks = serializers.SerializerMethodField()
    promotion_confirmed = serializers.BooleanField()
    analysis = serializers.DictField()
    metrics = serializers.SerializerMethodField(help_text="the templates this rollout is judged by")
    metric_results = serializers.SerializerMethodField(
        help_text="each template's latest check, in template order"
    )
    judgement = serializers.DictField(source="last_judgement")
    actions = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()
    latest_samples = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(allow_null=True, help_text="null: not started yet")
    retry_of = serializers.IntegerField(source="retry_of_id", allow_null=True)
    reverts = serializers.IntegerField(
        source="reverts_id",
        allow_null=True,
        help_text="a fast rollback: the promotion it undoes (steps and analysis skipped)",
    )

    @extend_schema_field(HookOutput(many=True))
    def get_hooks(self, obj):
        return selectors.rollout_hooks(obj)

    @extend_schema_field(MetricTemplateOutput(many=True))
    def get_metrics(self, obj):
        return selectors.rollout_templates(obj)

    @extend_schema_field(MetricResultOutput(many=True))
    def get_metric_results(self, obj):
        return selectors.rollout_metric_results(obj)

    def get_actions(self, obj) -> list[str]:
        return selectors.rollout_actions(obj)

    def get_events(self, obj) -> list[dict]:
        return [selectors.event_dict(e) for e in obj.events.all()]

    def get_latest_samples(self, obj) -> dict:
        return selectors.latest_samples(obj)


def rollout_response(rollout, code=status.HTTP_200_OK) -> Response:
    rollout.refresh_from_db()
    return Response(RolloutOutput(rollout).data, status=code)


# Views --------------------------------------------------------------------------------------

STATE_CONFLICT = OpenApiResponse(
    description="The rollout's state does not allow this (e.g. it has finished), or the service "
    "already has an unfinished rollout"
)


class ServiceListApi(APIView):
    permission_classes = [WRITE]

    @extend_schema(responses=ServiceOutput(many=True), summary="Services")
    def get(self, request):
        return Response(ServiceOutput(selectors.service_list(), many=True).data)

    @extend_schema(
        request=ServiceInput, responses={201: ServiceOutput}, summary="Register a service"
    )
    def post(self, request):
        data = ServiceInput(data=request.data)
        data.is_valid(raise_exception=True)
        service = services.service_create(by=request.user, **data.validated_data)
        return Response(ServiceOutput(service).data, status=status.HTTP_201_CREATED)


class ServiceDetailApi(APIView):
    permission_classes = [WRITE]

    @extend_schema(responses=ServiceOutput, summary="One service")
    def get(self, request, name):
        return Response(ServiceOutput(get_object_or_404(Service, name=name)).data)

    @extend_schema(request=ServiceInput, responses=ServiceOutput, summary="Change a service")
    def patch(self, request, name):
        service = get_object_or_404(Service, name=name)
        data = ServiceInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "name" in fields and fields.pop("name") != service.name:
            from core.errors import Unprocessable

            raise Unprocessable("name", "a service cannot be renamed")
        service = services.service_update(service=service, by=request.user, **fields)
        return Response(ServiceOutput(service).data)


class RolloutListApi(APIView):
    permission_classes = [WRITE]

    @extend_schema(
        parameters=[
            OpenApiParameter("service", str, description="service name"),
            OpenApiParameter("status", str, enum=RolloutStatus.values),
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, required=False
            ),
            OpenApiParameter(
                "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, required=False
            ),
        ],
        operation_id="api_rollouts_list",
        responses=inline_serializer(
            "PaginatedRolloutSummaryList",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": RolloutSummaryOutput(many=True),
            },
        ),
        summary="Rollouts, newest first (paginated)",
    )
    def get(self, request):
        wanted = request.query_params.get("status", "")
        if wanted and wanted not in RolloutStatus.values:
            from core.errors import InvalidRequest

            raise InvalidRequest("status", f"must be one of {', '.join(RolloutStatus.values)}")
        qs = selectors.rollout_list(service=request.query_params.get("service", ""), status=wanted)
        pager = BoundedLimitOffsetPagination()
        page = pager.paginate_queryset(qs, request, view=self)
        return pager.get_paginated_response(RolloutSummaryOutput(page, many=True).data)

    @extend_schema(
        request=RolloutStartInput,
        responses={201: RolloutOutput, 409: STATE_CONFLICT},
        summary="Start a canary rollout",
    )
    def post(self, request):
        data = RolloutStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        rollout = services.rollout_start(by=request.user, **data.validated_data)
        return rollout_response(rollout, status.HTTP_201_CREATED)


class RolloutDetailApi(APIView):
    permission_classes = [WRITE]

    @extend_schema(responses=RolloutOutput, summary="One rollout with events and latest samples")
    def get(self, request, pk):
        return Response(RolloutOutput(selectors.rollout_get(pk)).data)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


def _control_view(action: str, summary: str):
    service_fn = getattr(services, f"rollout_{action}")

    class ControlApi(APIView):
        permission_classes = [WRITE]

        @extend_schema(
            request=ReasonInput,
            responses={200: RolloutOutput, 409: STATE_CONFLICT},
            summary=summary,
        )
        def post(self, request, pk):
            data = ReasonInput(data=request.data)
            data.is_valid(raise_exception=True)
            rollout = service_fn(
                rollout=selectors.rollout_get(pk), by=request.user, **data.validated_data
            )
            return rollout_response(rollout)

    ControlApi.__name__ = f"Rollout{action.title()}Api"
    ControlApi.__qualname__ = ControlApi.__name__
    return ControlApi


RolloutPauseApi = _control_view("pause", "Pause a rollout")
RolloutResumeApi = _control_view("resume", "Resume a paused rollout")
RolloutPromoteApi = _control_view("promote", "Skip remaining steps and promote")
RolloutAbortApi = _control_view("abort", "Abort: traffic to stable, canary to zero")


class RolloutRetryApi(APIView):
    permission_classes = [WRITE]

    @extend_schema(
        request=None,
        responses={201: RolloutOutput, 409: STATE_CONFLICT},
        summary="Retry as a new rollout",
    )
    def post(self, request, pk):
        rollout = services.rollout_retry(rollout=selectors.rollout_get(pk), by=request.user)
        return rollout_response(rollout, status.HTTP_201_CREATED)
