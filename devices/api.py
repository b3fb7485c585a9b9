"""Device registration (the apps), notifications (the video pipeline) and the VAPID key (the PWA)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_keys import Scope
from core.auth import ApiKeyOnlyMixin, HasScope
from core.errors import UNPROCESSABLE, Unprocessable, error_body
from core.models import ApiKey
from core.roles import IsStaffRole
from devices import selectors, services
from devices.models import Device, Notification, NotificationType, Platform
from devices.providers import ProviderNotConfigured
from devices.vapid import vapid_public_key

MAX_DATA_BYTES = 2048  # push payloads are capped at 4 KB by every provider, title and body included


ERRORS = {
    400: OpenApiResponse(description="a field of the body is invalid (named in detail)"),
    401: OpenApiResponse(description="no valid X-Api-Key"),
    403: OpenApiResponse(description="the key's kind or scopes do not allow this"),
    429: OpenApiResponse(description="rate limit of the key; see Retry-After"),
}


class DevicesApi(ApiKeyOnlyMixin, APIView):
    permission_classes = [HasScope(Scope.DEVICES)]


class NotificationsApi(ApiKeyOnlyMixin, APIView):
    permission_classes = [HasScope(Scope.NOTIFICATIONS)]


class SubscriptionKeys(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200)
    auth = serializers.CharField(max_length=64)


class Subscription(serializers.Serializer):
    endpoint = serializers.CharField(max_length=1024)
    keys = SubscriptionKeys()


class DeviceOutput(serializers.Serializer):
    """registration_secret is given once, when the device is new or moved: the app keeps it to
    prove it holds the registration (moving it to another user, unregistering it)."""

    # A plain serializer: a ModelSerializer rebuilds its fields on every registration call.
    id = serializers.IntegerField()
    user_id = serializers.CharField()
    platform = serializers.CharField()
    app_version = serializers.CharField()
    os_version = serializers.CharField()
    locale = serializers.CharField()
    timezone = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    registration_secret = serializers.CharField(allow_null=True, default=None)


class DeviceRegisterApi(DevicesApi):
    class DeviceRegisterInputSerializer(serializers.Serializer):
        user_id = serializers.CharField(max_length=64)
        platform = serializers.ChoiceField(choices=Platform.values)
        token = serializers.CharField(max_length=512, required=False)
        subscription = Subscription(required=False)
        app_version = serializers.CharField(max_length=40, required=False, default="")
        os_version = serializers.CharField(max_length=40, required=False, default="")
        locale = serializers.CharField(max_length=20, required=False, default="")
        timezone = serializers.CharField(max_length=64, required=False, default="")
        registration_secret = serializers.CharField(max_length=100, required=False, default=None)

    @extend_schema(
        request=DeviceRegisterInputSerializer,
        responses={201: DeviceOutput, 200: DeviceOutput, **ERRORS},
        summary="Register (or refresh) a push token or Web Push subscription",
        description="Idempotent upsert by token or endpoint: 201 when new, 200 when it updated "
        "an existing device (reactivating it, or moving it to another user). Moving a device "
        "bound to another user with a publishable key needs the registration_secret answered "
        "when it was registered (Web Push: the same subscription auth secret); else 403.",
    )
    def post(self, request):
        data = self.DeviceRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["timezone_name"] = values.pop("timezone")
        device, created = services.device_register(**values, by=request.auth)
        return Response(
            DeviceOutput(device).data, status=status.HTTP_201_CREATED if created else 200
        )


class DeviceUnregisterApi(DevicesApi):
    class DeviceUnregisterInputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=512, required=False)
        endpoint = serializers.CharField(max_length=1024, required=False)
        registration_secret = serializers.CharField(max_length=100, required=False, default=None)
        auth = serializers.CharField(max_length=64, required=False, default=None)

        def validate(self, attrs):
            if bool(attrs.get("token")) == bool(attrs.get("endpoint")):
                raise Unprocessable("token", "give exactly one of token or endpoint")
            return attrs

    @extend_schema(
        request=DeviceUnregisterInputSerializer,
        responses={
            200: DeviceOutput,
            404: OpenApiResponse(description="unknown device"),
            **ERRORS,
        },
        summary="Deactivate a device (reason: unregistered)",
        description="With a publishable key, the device's registration_secret (Web Push: the "
        "subscription's auth secret) is needed; else 403.",
    )
    def post(self, request):
        data = self.DeviceUnregisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            device = services.device_unregister(**data.validated_data, by=request.auth)
        except Device.DoesNotExist:
            from django.http import Http404

            raise Http404("no device with this token or endpoint") from None
        return Response(DeviceOutput(device).data)


class VapidPublicKeyApi(APIView):
    permission_classes = [HasScope(Scope.DEVICES) | IsStaffRole]

    @extend_schema(
        responses={
            200: inline_serializer("VapidKey", {"public_key": serializers.CharField()}),
            **{code: ERRORS[code] for code in (401, 403, 429)},
        },
        summary="The VAPID application server key for PushManager.subscribe",
    )
    def get(self, request):
        try:
            return Response({"public_key": vapid_public_key()})
        except ProviderNotConfigured as exc:
            return Response(error_body("not_configured", str(exc)), status=503)


class NotificationCreateApi(NotificationsApi):
    class NotificationCreateInputSerializer(serializers.Serializer):
        user_id = serializers.CharField(max_length=64)
        type = serializers.ChoiceField(choices=NotificationType.single_user())
        data = serializers.DictField(required=False, default=dict)
        send_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        idempotency_key = serializers.CharField(max_length=200, required=False, default=None)

        def validate_data(self, value):
            import json

            if len(json.dumps(value, default=str).encode()) > MAX_DATA_BYTES:
                raise serializers.ValidationError(
                    f"must be at most {MAX_DATA_BYTES} bytes", code=UNPROCESSABLE
                )
            return value

    class NotificationCreateOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()
        duplicate = serializers.BooleanField()

    @extend_schema(
        request=NotificationCreateInputSerializer,
        responses={202: NotificationCreateOutputSerializer, **ERRORS},
        summary="Ask for a notification to a user's devices (secret keys only)",
        description="A repeated idempotency_key (per key) answers with the first notification "
        "(duplicate: true) and sends nothing again.",
    )
    def post(self, request):
        data = self.NotificationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        notification, created = services.notification_create(**data.validated_data, by=request.auth)
        body = {"id": notification.pk, "status": notification.status, "duplicate": not created}
        return Response(
            self.NotificationCreateOutputSerializer(body).data, status=status.HTTP_202_ACCEPTED
        )


class DeliveryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    device_id = serializers.IntegerField()
    platform = serializers.CharField(source="device.platform")
    provider = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    response = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)


class NotificationOutput(serializers.ModelSerializer):
    deliveries = DeliveryOutput(many=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "user_id",
            "type",
            "data",
            "status",
            "send_at",
            "idempotency_key",
            "created_at",
            "dispatched_at",
            "deliveries",
        ]


class NotificationDetailApi(APIView):
    """Staff read every notification; a secret key reads only the ones it created."""

    permission_classes = [HasScope(Scope.NOTIFICATIONS) | IsStaffRole]

    @extend_schema(
        responses={
            200: NotificationOutput,
            404: OpenApiResponse(description="no such notification (or another key's)"),
            **{code: ERRORS[code] for code in (401, 403, 429)},
        },
        summary="A notification and its deliveries",
    )
    def get(self, request, pk: int):
        found = selectors.notification_with_deliveries()
        if isinstance(request.auth, ApiKey):
            found = found.filter(api_key=request.auth)
        notification = get_object_or_404(found, pk=pk)
        return Response(NotificationOutput(notification).data)
