"""Read APIs of the product analyses: parse the query string, call a selector, answer JSON.

Any staff role may read (token or session). Bad parameters answer 400 naming the field; a
query past ANALYTICS_QUERY_TIMEOUT answers 503 `query_timeout`, never a 500. The input
serializers are shared with the pages (the analysis modules), so both accept the same URLs.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.product.funnels import (
    FunnelDroppedInput,
    FunnelInput,
    Order,
    dropped_users,
    funnel,
)
from analytics.product.lifecycle import LifecycleInput, StickinessInput, lifecycle, stickiness
from analytics.product.overview import OverviewInput, overview
from analytics.product.paths import Bound, PathsInput, PathUsersInput, edge_users, paths
from analytics.product.retention import RetentionInput, RetentionUsersInput, cell_users, retention
from analytics.product.revenue import RevenueInput, revenue
from analytics.product.satisfaction import SatisfactionInput, satisfaction
from analytics.product.trends import Math, TrendInput, trends
from analytics.product.usage import UsageInput, feature_usage
from analytics.store.base import QueryTimeout
from core.errors import error_body
from core.schema import NOT_BLANK_PATTERN


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


ErrorOutput = inline_serializer(
    "AnalyticsErrorOutput",
    {"error": serializers.CharField(), "detail": serializers.JSONField()},
)
ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorOutput, description="a parameter is invalid (named in detail)"),
    401: OpenApiResponse(ErrorOutput, description="not authenticated"),
    403: OpenApiResponse(ErrorOutput, description="not a staff role"),
    503: OpenApiResponse(
        ErrorOutput, description="the analytics store did not answer in time (query_timeout)"
    ),
}


class UserListOutput(serializers.Serializer):
    total = serializers.IntegerField(min_value=0, help_text="users in the whole list")
    users = serializers.ListField(child=serializers.CharField(), help_text="this page, by id")


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
        return cell_users(data)


class FunnelStepOutput(serializers.Serializer):
    event = serializers.CharField()
    label = serializers.CharField(help_text="the event and its filter, if any")
    count = serializers.IntegerField(min_value=0, help_text="users who reached this step")
    conversion_from_start = serializers.FloatField(allow_null=True)
    conversion_from_previous = serializers.FloatField(allow_null=True)
    dropped = serializers.IntegerField(min_value=0)
    median_seconds_to_convert = serializers.FloatField(
        allow_null=True, help_text="from the previous step; null for the first"
    )


class FunnelBucketOutput(serializers.Serializer):
    bucket = serializers.CharField()
    users = serializers.IntegerField(min_value=0)


class FunnelTrendOutput(serializers.Serializer):
    period = serializers.DateField()
    entered = serializers.IntegerField(min_value=0)
    converted = serializers.IntegerField(min_value=0)
    conversion = serializers.FloatField(allow_null=True)


class FunnelGroupOutput(serializers.Serializer):
    breakdown = serializers.CharField(allow_blank=True)
    steps = FunnelStepOutput(many=True)
    time_to_convert = FunnelBucketOutput(many=True)
    trend = FunnelTrendOutput(many=True)


class FunnelExclusionOutput(serializers.Serializer):
    event = serializers.CharField()
    from_step = serializers.IntegerField(min_value=1)
    to_step = serializers.IntegerField(min_value=2)


class FunnelOutput(serializers.Serializer):
    order = serializers.ChoiceField(choices=[o.value for o in Order])
    window_days = serializers.IntegerField(
        allow_null=True, help_text="null: only the steps' own windows"
    )
    step_windows = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        allow_null=True,
        help_text="seconds each step after the first may take after the one before",
    )
    exclusions = FunnelExclusionOutput(many=True)
    period = serializers.ChoiceField(choices=["day", "week", "month"])
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    breakdown_by = serializers.CharField(allow_null=True)
    steps = FunnelStepOutput(many=True)
    time_to_convert = FunnelBucketOutput(many=True, help_text="entry to the last step")
    trend = FunnelTrendOutput(many=True, help_text="by period of entry")
    breakdowns = FunnelGroupOutput(
        many=True, required=False, help_text="with a breakdown: one group per value"
    )


class FunnelApi(AnalysisApi):
    input_class = FunnelInput

    @extend_schema(
        parameters=[
            FunnelInput,
            OpenApiParameter(
                "steps",
                {"type": "string", "minLength": 1, "pattern": NOT_BLANK_PATTERN},
                required=True,
                description="2-10 event names separated by commas, each optionally "
                "`event:key=value`, e.g. signup,project_created (a wrong one answers 422)",
            ),
        ],
        responses={200: FunnelOutput, **ERROR_RESPONSES},
        summary="Funnel conversion, drop-off and time to convert",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return funnel(data.query())


class FunnelDroppedApi(AnalysisApi):
    input_class = FunnelDroppedInput

    @extend_schema(
        parameters=[FunnelDroppedInput],
        responses={200: UserListOutput, **ERROR_RESPONSES},
        summary="Users who reached step-1 but not `step`",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return dropped_users(data)


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


class TrendPointOutput(serializers.Serializer):
    period = serializers.DateField(help_text="the period's first day")
    value = serializers.FloatField(
        allow_null=True, help_text="0 for a period without events; null: a formula divided by 0"
    )


class TrendSeriesOutput(serializers.Serializer):
    event = serializers.CharField(allow_null=True, help_text="null for a formula")
    label = serializers.CharField(help_text="A, B, ... in the order of `series`, or the formula")
    breakdown_value = serializers.CharField(
        allow_null=True, allow_blank=True, help_text='null without a breakdown; "$other"'
    )
    compare = serializers.ChoiceField(choices=["current", "previous"])
    points = TrendPointOutput(many=True)


class TrendsOutput(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    period = serializers.ChoiceField(choices=["day", "week", "month"])
    math = serializers.ChoiceField(choices=[m.value for m in Math])
    math_property = serializers.CharField(allow_null=True)
    breakdown = serializers.CharField(allow_null=True)
    formula = serializers.CharField(allow_null=True)
    previous_date_from = serializers.DateField(allow_null=True)
    previous_date_to = serializers.DateField(allow_null=True)
    series = TrendSeriesOutput(many=True)


class TrendsApi(AnalysisApi):
    input_class = TrendInput

    @extend_schema(
        parameters=[TrendInput],
        responses={200: TrendsOutput, **ERROR_RESPONSES},
        summary="Events over time: math, filters, breakdown (top N + $other), compare, formula",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return trends(data.query())


class LifecyclePeriodOutput(serializers.Serializer):
    period = serializers.DateField()
    new = serializers.IntegerField(min_value=0)
    returning = serializers.IntegerField(min_value=0)
    resurrecting = serializers.IntegerField(min_value=0)
    dormant = serializers.IntegerField(max_value=0, help_text="negative: users who stopped")


class LifecycleOutput(serializers.Serializer):
    event = serializers.CharField()
    period = serializers.ChoiceField(choices=["day", "week", "month"])
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    periods = LifecyclePeriodOutput(many=True)


class LifecycleApi(AnalysisApi):
    input_class = LifecycleInput

    @extend_schema(
        parameters=[LifecycleInput],
        responses={200: LifecycleOutput, **ERROR_RESPONSES},
        summary="New, returning, resurrecting and dormant users of an event per period",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return lifecycle(data.query())


class StickinessWeekOutput(serializers.Serializer):
    week = serializers.DateField()
    users = serializers.IntegerField(min_value=0)
    by_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        min_length=7,
        max_length=7,
        help_text="users who did the event on 1, 2, ... 7 days of the week",
    )


class StickinessOutput(serializers.Serializer):
    event = serializers.CharField()
    period = serializers.ChoiceField(choices=["week"])
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    weeks = StickinessWeekOutput(many=True)
    by_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0), min_length=7, max_length=7
    )


class StickinessApi(AnalysisApi):
    input_class = StickinessInput

    @extend_schema(
        parameters=[StickinessInput],
        responses={200: StickinessOutput, **ERROR_RESPONSES},
        summary="Users by the number of days per week they did an event",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return stickiness(data.query())


class PathNodeOutput(serializers.Serializer):
    step = serializers.IntegerField(min_value=1, max_value=10, help_text="1-based, in time order")
    event = serializers.CharField(help_text='an event name, or "$other" (outside the top)')
    users = serializers.IntegerField(min_value=0)
    path_ends = serializers.IntegerField(
        min_value=0,
        help_text="users whose path stops here (before an end event: starts here)",
    )


class PathEdgeOutput(serializers.Serializer):
    step = serializers.IntegerField(min_value=1, max_value=9, help_text="the source's step")
    source = serializers.CharField()
    target = serializers.CharField(help_text="the event at step + 1")
    users = serializers.IntegerField(min_value=0)


class PathSequenceOutput(serializers.Serializer):
    events = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=10)
    users = serializers.IntegerField(min_value=0)
    share = serializers.FloatField(help_text="of all users with a path")


class PathsOutput(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    start_event = serializers.CharField(allow_null=True)
    end_event = serializers.CharField(allow_null=True)
    steps = serializers.IntegerField(min_value=2, max_value=10)
    bound = serializers.ChoiceField(choices=[b.value for b in Bound])
    bound_minutes = serializers.IntegerField(min_value=1)
    top = serializers.IntegerField(min_value=1)
    exclude = serializers.ListField(child=serializers.CharField())
    users = serializers.IntegerField(min_value=0, help_text="users with a path")
    nodes = PathNodeOutput(many=True)
    edges = PathEdgeOutput(many=True)
    paths = PathSequenceOutput(many=True, help_text="the 20 most common whole paths")


class PathsApi(AnalysisApi):
    input_class = PathsInput

    @extend_schema(
        parameters=[PathsInput],
        responses={200: PathsOutput, **ERROR_RESPONSES},
        summary="Paths after a start event or before an end event: nodes and edges per step",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return paths(data.query())


class PathUsersApi(AnalysisApi):
    input_class = PathUsersInput

    @extend_schema(
        parameters=[PathUsersInput],
        responses={200: UserListOutput, **ERROR_RESPONSES},
        summary="The users on one edge of the paths (source at step, target at step + 1)",
    )
    def get(self, request):
        return super().get(request)

    def compute(self, data):
        return edge_users(data)
