"""API of push broadcasts to a saved cohort: list, create (and send), read with counts and
the open rate, send. Any staff role reads; product managers and admins create and send."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import HasRole, Role
from core.schema import MAX_ID, error_responses, id_parameter
from core.strict import StrictJSONParser
from devices.broadcasts import broadcast_create, broadcast_send, broadcast_stats
from devices.models import Broadcast

PK = id_parameter("the broadcast's id")


def _errors(*codes: int) -> dict:
    return error_responses(codes, {404: "no broadcast with this id"})


class BroadcastStatsOutput(serializers.Serializer):
    delivered = serializers.IntegerField(help_text="deliveries sent (one per device)")
    failed = serializers.IntegerField(help_text="refused for good, or the device was gone")
    pending = serializers.IntegerField(help_text="waiting for quiet hours or a retry")
    deferred = serializers.IntegerField(help_text="of pending: waiting for quiet hours")
    delivered_users = serializers.IntegerField()
    opened_users = serializers.IntegerField(help_text="distinct users with $push_opened")
    open_rate = serializers.FloatField(allow_null=True, help_text="opened / delivered users")
    progress = serializers.FloatField(help_text="recipients handled, 0-1")


class BroadcastOutput(serializers.ModelSerializer):
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Broadcast
        fields = [
            "id", "name", "cohort_id", "cohort_name", "title", "body", "state", "error",
            "members", "no_device", "recipients", "processed", "capped", "batches",
            "created_by", "created_at", "started_at", "finished_at", "stats",
        ]  # fmt: skip

    @extend_schema_field(BroadcastStatsOutput)
    def get_stats(self, obj):
        return BroadcastStatsOutput(broadcast_stats(obj)).data


def _broadcast(pk: int) -> Broadcast:
    if not 1 <= pk <= MAX_ID:
        raise Http404("no broadcast with this id")
    return get_object_or_404(Broadcast, pk=pk)


class BroadcastApi(APIView):
    permission_classes = [HasRole(Role.PRODUCT, Role.ADMIN)]
    parser_classes = [StrictJSONParser]


class BroadcastCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    cohort_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=1000)
    send = serializers.BooleanField(default=False, help_text="start sending at once")


class BroadcastListApi(BroadcastApi):
    @extend_schema(
        responses={200: BroadcastOutput(many=True), **_errors(401, 403)},
        summary="Push broadcasts, newest first (at most 200)",
    )
    def get(self, request):
        return Response(BroadcastOutput(Broadcast.objects.all()[:200], many=True).data)

    @extend_schema(
        request=BroadcastCreateInput,
        responses={201: BroadcastOutput, **_errors(400, 401, 403)},
        summary="Create a push broadcast to a saved cohort (and send it with send=true)",
    )
    def post(self, request):
        data = BroadcastCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        send = values.pop("send")
        broadcast = broadcast_create(by=request.user, **values)
        if send:
            broadcast = broadcast_send(broadcast=broadcast, by=request.user)
        return Response(BroadcastOutput(broadcast).data, status=status.HTTP_201_CREATED)


class BroadcastDetailApi(BroadcastApi):
    @extend_schema(
        parameters=[PK],
        responses={200: BroadcastOutput, **_errors(401, 403, 404)},
        summary="One broadcast with its progress, delivered/failed counts and open rate",
    )
    def get(self, request, pk: int):
        return Response(BroadcastOutput(_broadcast(pk)).data)


class BroadcastSendApi(BroadcastApi):
    @extend_schema(
        parameters=[PK],
        request=None,
        responses={202: BroadcastOutput, **_errors(401, 403, 404)},
        summary="Send a draft broadcast (a broadcast already sent or sending is not sent again)",
    )
    def post(self, request, pk: int):
        broadcast = broadcast_send(broadcast=_broadcast(pk), by=request.user)
        return Response(BroadcastOutput(broadcast).data, status=status.HTTP_202_ACCEPTED)
