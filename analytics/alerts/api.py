"""API of product-metric alerts: list, create, read with recent checks and episodes, change,
delete. Any staff role reads; product managers and admins write. Bad input answers 400 naming
the field (a trend parameter as `params.<field>`)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.alerts import services
from analytics.alerts.models import MetricAlert, MetricAlertCheck, MetricAlertEvent
from analytics.dashboards.api import ParamsField, ParamsOutputField
from core.roles import HasRole, Role
from core.schema import MAX_ID, error_responses, id_parameter
from core.strict import StrictJSONParser

PK = id_parameter("the alert's id")
RECENT = 50


def _errors(*codes: int) -> dict:
    return error_responses(codes, {404: "no alert with this id"})


class MetricAlertCheckOutput(serializers.ModelSerializer):
    class Meta:
        model = MetricAlertCheck
        fields = ["checked_at", "period", "value", "previous", "change", "breached", "error"]


class MetricAlertEventOutput(serializers.ModelSerializer):
    class Meta:
        model = MetricAlertEvent
        fields = ["kind", "at", "period", "value", "previous", "message", "chat", "chat_detail"]


class MetricAlertOutput(serializers.ModelSerializer):
    params = ParamsOutputField()
    rule = serializers.SerializerMethodField()

    class Meta:
        model = MetricAlert
        fields = [
            "id", "name", "params", "series", "breakdown_value", "condition", "threshold",
            "running_period", "chat_destination", "enabled", "rule", "state", "state_since",
            "last_checked_at", "last_period", "last_value", "last_previous", "last_error",
            "created_by", "created_at",
        ]  # fmt: skip

    def get_rule(self, obj) -> str:
        return services.describe(obj)


class MetricAlertDetailOutput(MetricAlertOutput):
    checks = MetricAlertCheckOutput(many=True, source="recent_checks")
    events = MetricAlertEventOutput(many=True, source="recent_events")

    class Meta(MetricAlertOutput.Meta):
        fields = [*MetricAlertOutput.Meta.fields, "checks", "events"]


class MetricAlertInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    params = ParamsField(help_text="the trends parameters (its date range is the alert's own)")
    series = serializers.RegexField(
        r"^([A-J]|formula)$",
        max_length=20,
        default="A",
        help_text="a series letter of params.series (A = the first) or 'formula'",
    )
    breakdown_value = serializers.CharField(max_length=200, default="", allow_blank=True)
    condition = serializers.ChoiceField(choices=MetricAlert.Condition.choices)
    threshold = serializers.FloatField()
    running_period = serializers.BooleanField(default=False)
    chat_destination = serializers.CharField(max_length=63, default="", allow_blank=True)
    enabled = serializers.BooleanField(default=True)


class MetricAlertUpdateInput(MetricAlertInput):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


def _alert(pk: int) -> MetricAlert:
    if not 1 <= pk <= MAX_ID:
        raise Http404("no alert with this id")
    return get_object_or_404(MetricAlert, pk=pk)


def _detail(alert: MetricAlert) -> dict:
    alert.recent_checks = list(alert.checks.all()[:RECENT])
    alert.recent_events = list(alert.events.all()[:RECENT])
    return MetricAlertDetailOutput(alert).data


class MetricAlertApi(APIView):
    permission_classes = [HasRole(Role.PRODUCT, Role.ADMIN)]
    parser_classes = [StrictJSONParser]


class MetricAlertListApi(MetricAlertApi):
    @extend_schema(
        responses={200: MetricAlertOutput(many=True), **_errors(401, 403)},
        summary="Product-metric alerts",
    )
    def get(self, request):
        return Response(MetricAlertOutput(MetricAlert.objects.all(), many=True).data)

    @extend_schema(
        request=MetricAlertInput,
        responses={201: MetricAlertDetailOutput, **_errors(400, 401, 403)},
        summary="Create an alert on a trend series (checked on schedule)",
    )
    def post(self, request):
        data = MetricAlertInput(data=request.data)
        data.is_valid(raise_exception=True)
        alert = services.alert_create(by=request.user, **data.validated_data)
        return Response(_detail(alert), status=status.HTTP_201_CREATED)


class MetricAlertDetailApi(MetricAlertApi):
    @extend_schema(
        parameters=[PK],
        responses={200: MetricAlertDetailOutput, **_errors(401, 403, 404)},
        summary=f"One alert with its last {RECENT} checks and episodes (fired, resolved)",
    )
    def get(self, request, pk: int):
        return Response(_detail(_alert(pk)))

    @extend_schema(
        parameters=[PK],
        request=MetricAlertUpdateInput,
        responses={200: MetricAlertDetailOutput, **_errors(400, 401, 403, 404)},
        summary="Change an alert (a changed rule starts over: the next check decides its state)",
    )
    def patch(self, request, pk: int):
        alert = _alert(pk)
        data = MetricAlertUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        alert = services.alert_update(alert=alert, by=request.user, **data.validated_data)
        return Response(_detail(alert))

    @extend_schema(
        parameters=[PK], responses={204: None, **_errors(401, 403, 404)}, summary="Delete an alert"
    )
    def delete(self, request, pk: int):
        services.alert_delete(alert=_alert(pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
