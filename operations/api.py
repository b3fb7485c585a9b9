"""Operations API: Alertmanager's webhook and the pipeline's run-time settings."""

import datetime

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_keys import Scope
from core.auth import AlertWebhookAuthentication, HasScope
from core.errors import error_body
from core.roles import IsStaffRole
from operations.models import Alert, AlertStatus, PlatformSetting
from operations.services import ReceivedAlert, alert_receive

UTC_FIELD = {"default_timezone": datetime.UTC}
# Alertmanager sends endsAt 0001-01-01T00:00:00Z for an alert that is still firing.
_NO_END_BEFORE = datetime.datetime(1971, 1, 1, tzinfo=datetime.UTC)


class WebhookAlertSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AlertStatus.values)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=2000))
    annotations = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=10000), required=False
    )
    startsAt = serializers.DateTimeField(**UTC_FIELD)  # noqa: N815 (Alertmanager's names)
    endsAt = serializers.DateTimeField(required=False, allow_null=True, **UTC_FIELD)  # noqa: N815
    generatorURL = serializers.CharField(  # noqa: N815
        required=False, allow_blank=True, max_length=1000
    )
    fingerprint = serializers.RegexField(r"^[0-9a-f]{1,64}$", max_length=64)

    def validate_labels(self, labels: dict) -> dict:
        if not labels.get("alertname"):
            raise serializers.ValidationError("must contain a non-empty alertname")
        if len(labels["alertname"]) > 200:
            raise serializers.ValidationError("alertname is longer than 200 characters")
        return labels

    def to_received(self) -> ReceivedAlert:
        data = self.validated_data
        ends_at = data.get("endsAt")
        return ReceivedAlert(
            status=data["status"],
            labels=data["labels"],
            annotations=data.get("annotations", {}),
            starts_at=data["startsAt"],
            ends_at=ends_at if ends_at and ends_at >= _NO_END_BEFORE else None,
            fingerprint=data["fingerprint"],
            generator_url=data.get("generatorURL", ""),
        )


class AlertOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "alertname", "fingerprint", "status", "action", "outcome", "received_count"]


class AlertWebhookApi(APIView):
    """Alertmanager's webhook (payload version 4). Each alert is matched to its rule's action."""

    authentication_classes = [AlertWebhookAuthentication]
    permission_classes = [IsAuthenticated]

    class AlertWebhookInputSerializer(serializers.Serializer):
        version = serializers.ChoiceField(choices=["4"])
        status = serializers.ChoiceField(choices=AlertStatus.values, required=False)
        receiver = serializers.CharField(required=False, allow_blank=True)
        groupKey = serializers.CharField(required=False, allow_blank=True)  # noqa: N815
        alerts = serializers.ListField(
            child=serializers.DictField(), allow_empty=False, max_length=1000
        )

    class AlertWebhookOutputSerializer(serializers.Serializer):
        received = serializers.IntegerField()
        acted = serializers.IntegerField(help_text="new firing episodes whose action was queued")
        alerts = AlertOutputSerializer(many=True)
        rejected = serializers.ListField(
            child=serializers.DictField(), help_text="invalid alerts: index and problems"
        )

    @extend_schema(
        request=AlertWebhookInputSerializer,
        responses={200: AlertWebhookOutputSerializer},
        summary="Receive Alertmanager alerts and act on them once per firing episode",
        description=(
            "Authenticated by `Authorization: Bearer <ALERT_WEBHOOK_TOKEN>`. Valid alerts of a "
            "batch are kept when others are invalid (each is named in `rejected`); a batch "
            "with no valid alert is a 422 naming each alert's problems."
        ),
    )
    def post(self, request):
        payload = self.AlertWebhookInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        valid, rejected = [], []
        for index, raw in enumerate(payload.validated_data["alerts"]):
            item = WebhookAlertSerializer(data=raw)
            if item.is_valid():
                valid.append(item.to_received())
            else:
                rejected.append({"index": index, "detail": item.errors})
        if not valid:
            # Each alert's own rules are not in the schema (alerts are objects there): a batch
            # with no valid alert is well formed but unprocessable.
            detail = {"alerts": {r["index"]: r["detail"] for r in rejected}}
            return Response(error_body("unprocessable", detail), status=422)
        results = [alert_receive(received=received) for received in valid]
        return Response(
            self.AlertWebhookOutputSerializer(
                {
                    "received": len(results),
                    "acted": sum(1 for _, acted in results if acted),
                    "alerts": [alert for alert, _ in results],
                    "rejected": rejected,
                }
            ).data
        )


class PlatformSettingApi(APIView):
    """A pipeline setting (such as the AI tier), read by the video pipeline with its API key."""

    permission_classes = [HasScope(Scope.SETTINGS) | IsStaffRole]

    class PlatformSettingOutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = PlatformSetting
            fields = ["key", "value", "options", "updated_at", "updated_by_label"]

    @extend_schema(
        responses=PlatformSettingOutputSerializer, summary="Current value of a pipeline setting"
    )
    def get(self, request, key: str):
        return Response(
            self.PlatformSettingOutputSerializer(get_object_or_404(PlatformSetting, key=key)).data
        )
