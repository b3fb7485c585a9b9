"""Read APIs of the product analyses: parse the query string, call a selector, answer JSON.

Any staff role may read (token or session). Bad parameters answer 400 naming the field; a
query past ANALYTICS_QUERY_TIMEOUT answers 503 `query_timeout`, never a 500. The input
serializers are shared with the pages (views_product.py), so both accept the same URLs.
"""

from __future__ import annotations

import datetime as dt
import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.queries.common import Breakdown, Period, check_range
from analytics.queries.funnels import (
    MAX_STEPS,
    FunnelQuery,
    Order,
    Step,
    funnel,
    funnel_dropped_users,
)
from analytics.queries.overview import OverviewQuery, overview
from analytics.queries.retention import (
    CohortType,
    Mode,
    RetentionQuery,
    retention,
    retention_users,
)
from analytics.queries.revenue import RevenueQuery, revenue
from analytics.queries.satisfaction import SatisfactionQuery, satisfaction
from analytics.queries.usage import Dimension, UsageQuery, feature_usage
from analytics.store.base import QueryTimeout
from core.errors import InvalidRequest, error_body

EVENT_NAME = re.compile(r"^[A-Za-z0-9_.\-$]{1,100}$")
DEFAULT_DAYS = 90


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _event_field(default: str) -> serializers.RegexField:
    return serializers.RegexField(
        EVENT_NAME,
        default=default,
        error_messages={"invalid": "an event name: 1-100 letters, digits, '_', '.', '-' or '$'"},
    )


class RangeInput(serializers.Serializer):
    """date_from / date_to (UTC days, inclusive), period and an optional breakdown."""

    default_days = DEFAULT_DAYS
    default_period = Period.WEEK
    breakdowns = True

    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    period = serializers.ChoiceField(choices=[p.value for p in Period], required=False)
    breakdown = serializers.CharField(required=False, allow_blank=True, max_length=80)

    def validate_breakdown(self, value):
        if value and not self.breakdowns:
            raise serializers.ValidationError("this analysis has no breakdown")
        try:
            return Breakdown.parse(value)
        except InvalidRequest as exc:
            raise serializers.ValidationError(exc.problem) from exc

    def validate(self, attrs):
        attrs["date_to"] = attrs.get("date_to") or _today()
        attrs["date_from"] = attrs.get("date_from") or attrs["date_to"] - dt.timedelta(
            days=self.default_days
        )
        attrs["period"] = Period(attrs.get("period") or self.default_period)
        attrs.setdefault("breakdown", None)
        try:
            check_range(attrs["date_from"], attrs["date_to"])
        except InvalidRequest as exc:
            raise serializers.ValidationError({exc.field: [exc.problem]}) from exc
        return attrs


class RetentionInput(RangeInput):
    default_days = 365
    default_period = Period.MONTH

    start_event = _event_field("signup")
    return_event = _event_field("session_start")
    periods = serializers.IntegerField(min_value=1, max_value=12, default=12)
    mode = serializers.ChoiceField(choices=[m.value for m in Mode], default=Mode.ON.value)
    cohort_type = serializers.ChoiceField(
        choices=[c.value for c in CohortType], default=CohortType.FIRST_TIME.value
    )

    def query(self) -> RetentionQuery:
        d = self.validated_data
        return RetentionQuery(
            date_from=d["date_from"],
            date_to=d["date_to"],
            period=d["period"],
            start_event=d["start_event"],
            return_event=d["return_event"],
            periods=d["periods"],
            mode=Mode(d["mode"]),
            cohort_type=CohortType(d["cohort_type"]),
            breakdown=d["breakdown"],
        )


class PageInput(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class RetentionUsersInput(RetentionInput, PageInput):
    cohort = serializers.DateField()
    k = serializers.IntegerField(min_value=0, max_value=12)
    breakdown_value = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def users(self, *, export_limit: int | None = None) -> dict:
        """The requested page of the cell's users, or the first `export_limit` of them."""
        d = self.validated_data
        return retention_users(
            self.query(),
            cohort=d["cohort"],
            k=d["k"],
            breakdown_value=d.get("breakdown_value"),
            **_window(d, export_limit),
        )


def _window(d: dict, export_limit: int | None) -> dict:
    if export_limit:
        return {"limit": export_limit, "offset": 0}
    return {"limit": d["page_size"], "offset": (d["page"] - 1) * d["page_size"]}


def parse_steps(text: str) -> tuple[Step, ...]:
    """`signup,video_completed:video_style=animated,...`: events with an optional filter each."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) < 2:
        raise serializers.ValidationError("give 2 to 10 steps, separated by commas")
    if len(parts) > MAX_STEPS:
        raise serializers.ValidationError(f"at most {MAX_STEPS} steps, got {len(parts)}")
    steps = []
    for part in parts:
        event, _, condition = part.partition(":")
        if not EVENT_NAME.match(event):
            raise serializers.ValidationError(f"{event!r} is not an event name")
        key, value = "", ""
        if condition:
            key, sep, value = condition.partition("=")
            if not sep or not re.match(r"^[A-Za-z0-9_.\-]{1,64}$", key) or len(value) > 200:
                raise serializers.ValidationError(
                    f"step filter {condition!r} must read key=value (a property key, a value)"
                )
        steps.append(Step(event, key, value))
    return tuple(steps)


class FunnelInput(RangeInput):
    default_days = 30

    steps = serializers.CharField(
        max_length=2000,
        help_text="2-10 comma-separated steps: an event, optionally `event:key=value`",
    )
    window_days = serializers.IntegerField(min_value=1, max_value=365, default=14)
    order = serializers.ChoiceField(
        choices=[o.value for o in Order], default=Order.SEQUENTIAL.value
    )

    def validate_steps(self, value):
        return parse_steps(value)

    def query(self) -> FunnelQuery:
        d = self.validated_data
        return FunnelQuery(
            steps=d["steps"],
            date_from=d["date_from"],
            date_to=d["date_to"],
            window_days=d["window_days"],
            order=Order(d["order"]),
            breakdown=d["breakdown"],
            period=d["period"],
        )


class FunnelDroppedInput(FunnelInput, PageInput):
    step = serializers.IntegerField(min_value=2, max_value=MAX_STEPS)

    def users(self, *, export_limit: int | None = None) -> dict:
        """The requested page of the users who dropped, or the first `export_limit`."""
        d = self.validated_data
        return funnel_dropped_users(self.query(), step=d["step"], **_window(d, export_limit))

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["step"] > len(attrs["steps"]):
            raise serializers.ValidationError({"step": ["beyond the last step of the funnel"]})
        return attrs


class RevenueInput(RangeInput):
    default_days = 365
    default_period = Period.MONTH
    breakdowns = False

    def query(self) -> RevenueQuery:
        d = self.validated_data
        return RevenueQuery(date_from=d["date_from"], date_to=d["date_to"], period=d["period"])


class UsageInput(RangeInput):
    dimension = serializers.ChoiceField(
        choices=[d.value for d in Dimension], default=Dimension.FEATURE.value
    )

    def query(self) -> UsageQuery:
        d = self.validated_data
        return UsageQuery(
            date_from=d["date_from"],
            date_to=d["date_to"],
            period=d["period"],
            dimension=Dimension(d["dimension"]),
            breakdown=d["breakdown"],
        )


class SatisfactionInput(RangeInput):
    breakdowns = False
    min_drop = serializers.IntegerField(min_value=1, max_value=9, default=2)

    def query(self) -> SatisfactionQuery:
        d = self.validated_data
        return SatisfactionQuery(
            date_from=d["date_from"],
            date_to=d["date_to"],
            period=d["period"],
            min_drop=d["min_drop"],
        )


class OverviewInput(RangeInput):
    breakdowns = False

    def query(self) -> OverviewQuery:
        d = self.validated_data
        return OverviewQuery(date_from=d["date_from"], date_to=d["date_to"], period=d["period"])


def timeout_response(exc: QueryTimeout) -> Response:
    return Response(
        error_body(
            "query_timeout",
            f"the analysis took too long ({exc}); narrow the date range or try again shortly",
        ),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


class AnalysisApi(APIView):
    """GET with a query-string serializer; a timeout becomes a 503 with a clear message."""

    input_class: type[serializers.Serializer]

    def handle_exception(self, exc):
        if isinstance(exc, QueryTimeout):
            return timeout_response(exc)
        return super().handle_exception(exc)

    def parsed(self, request):
        data = self.input_class(data=request.query_params)
        data.is_valid(raise_exception=True)
        return data

    def get(self, request):
        data = self.parsed(request)
        return Response(self.compute(data))

    def compute(self, data) -> dict:
        raise NotImplementedError


def _schema(input_class, summary: str):
    return extend_schema(
        parameters=[input_class], responses={200: OpenApiTypes.OBJECT}, summary=summary
    )


class RetentionApi(AnalysisApi):
    input_class = RetentionInput

    @_schema(
        RetentionInput,
        "Cohort retention (retained[0] is the cohort size; complete: how many periods had ended)",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return retention(data.query())


class RetentionUsersApi(AnalysisApi):
    input_class = RetentionUsersInput

    @_schema(RetentionUsersInput, "The users of one retention cell (k=0: the whole cohort)")
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return data.users()


class FunnelApi(AnalysisApi):
    input_class = FunnelInput

    @extend_schema(
        parameters=[
            FunnelInput,
            OpenApiParameter(
                "steps", str, required=True, description="e.g. signup,project_created"
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="Funnel conversion, drop-off and time to convert",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return funnel(data.query())


class FunnelDroppedApi(AnalysisApi):
    input_class = FunnelDroppedInput

    @_schema(FunnelDroppedInput, "Users who reached step-1 but not `step`")
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return data.users()


class RevenueApi(AnalysisApi):
    input_class = RevenueInput

    @_schema(RevenueInput, "MRR and its movements, ARPU and paying users by tier per period")
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return revenue(data.query())


class FeatureUsageApi(AnalysisApi):
    input_class = UsageInput

    @_schema(UsageInput, "Usage of each feature or video style per period")
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return feature_usage(data.query())


class SatisfactionApi(AnalysisApi):
    input_class = SatisfactionInput

    @_schema(SatisfactionInput, "Score distribution, trends by tier and style, falling users")
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return satisfaction(data.query())


class OverviewApi(AnalysisApi):
    input_class = OverviewInput

    @_schema(OverviewInput, "DAU/WAU/MAU, signups, conversion to paid, retention summary")
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return overview(data.query())
