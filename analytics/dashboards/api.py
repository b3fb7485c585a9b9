"""API of dashboards: list and create, read with tiles and refresh progress, change (name,
date-range override, default), delete; pin, change, remove and reorder tiles; queue a refresh
of every tile; read every tile's result from the analytics cache.

Any staff role reads; product managers and admins write. Bad input answers 400 naming the
field (a tile's parameter as `params.<field>`, checked by the analysis' own input).
"""

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

from analytics.dashboards import services
from analytics.dashboards.models import MAX_LAST_DAYS, Dashboard, Tile
from analytics.dashboards.selectors import dashboard_results
from analytics.product.common import check_range
from core.errors import UNPROCESSABLE, InvalidRequest
from core.roles import HasRole, Role
from core.schema import MAX_ID, error_responses, id_parameter
from core.strict import StrictJSONParser

MAX_PARAMS = 30
MAX_VALUE = 1010


PK = id_parameter("the dashboard's id")
TILE_PK = id_parameter("the tile's id", "tile_pk")


def _dashboard(pk: int) -> Dashboard:
    if not 1 <= pk <= MAX_ID:
        raise Http404("no dashboard with this id")
    return get_object_or_404(Dashboard, pk=pk)


def _tile(pk: int, tile_pk: int) -> Tile:
    dashboard = _dashboard(pk)
    if not 1 <= tile_pk <= MAX_ID:
        raise Http404("no tile with this id")
    return get_object_or_404(Tile, pk=tile_pk, dashboard=dashboard)


def _errors(*codes: int) -> dict:
    return error_responses(
        codes,
        {
            404: "no dashboard (or tile) with this id",
            409: "the dashboard's state does not allow this",
        },
    )


PARAM_VALUE_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_VALUE},
        {"type": "number"},
        {
            "type": "array",
            "items": {"type": "string", "maxLength": MAX_VALUE},
            "maxItems": services.MAX_PARAM_VALUES,
        },
    ]
}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": PARAM_VALUE_SCHEMA,
        "maxProperties": MAX_PARAMS,
        "description": "the analysis' query-string parameters (as on its API and page), "
        'e.g. {"series": "signup", "period": "week"}; a repeated one as a list',
    }
)
class ParamsField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("an object of the analysis' parameters")
        if len(data) > MAX_PARAMS:
            raise serializers.ValidationError(f"at most {MAX_PARAMS} parameters")
        for key, value in data.items():
            if not _param_value_ok(value):
                raise serializers.ValidationError(
                    f"{key}: a string, a number or a list of at most "
                    f"{services.MAX_PARAM_VALUES} strings"
                )
        return data


def _param_value_ok(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) <= MAX_VALUE
    if isinstance(value, int | float):
        return True
    return (
        isinstance(value, list)
        and len(value) <= services.MAX_PARAM_VALUES
        and all(isinstance(v, str) and len(v) <= MAX_VALUE for v in value)
    )


@extend_schema_field(
    {"type": "object", "additionalProperties": PARAM_VALUE_SCHEMA, "description": "as stored"}
)
class ParamsOutputField(serializers.JSONField):
    pass


class DashboardTileOutput(serializers.ModelSerializer):
    params = ParamsOutputField()
    refreshed_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        model = Tile
        fields = ["id", "analysis", "title", "params", "position", "refreshed_at", "error"]


class DashboardRefreshOutput(serializers.Serializer):
    state = serializers.ChoiceField(choices=Dashboard.Refresh.values, source="refresh_state")
    total = serializers.IntegerField(source="refresh_total")
    done = serializers.IntegerField(source="refresh_done")
    failed = serializers.IntegerField(source="refresh_failed")
    started_at = serializers.DateTimeField(source="refresh_started_at", allow_null=True)
    finished_at = serializers.DateTimeField(source="refreshed_at", allow_null=True)


class DashboardOutput(serializers.ModelSerializer):
    last_days = serializers.IntegerField(allow_null=True)
    date_from = serializers.DateField(allow_null=True)
    date_to = serializers.DateField(allow_null=True)
    refresh = serializers.SerializerMethodField()
    tiles = DashboardTileOutput(many=True)

    class Meta:
        model = Dashboard
        fields = [
            "id", "name", "description", "is_default", "last_days", "date_from", "date_to",
            "refresh", "tiles", "created_by", "created_at", "updated_at",
        ]  # fmt: skip

    @extend_schema_field(DashboardRefreshOutput)
    def get_refresh(self, obj):
        return DashboardRefreshOutput(obj).data


class DashboardSummaryOutput(DashboardOutput):
    tile_count = serializers.IntegerField(source="tiles.count")

    class Meta(DashboardOutput.Meta):
        fields = [f if f != "tiles" else "tile_count" for f in DashboardOutput.Meta.fields]


def _detail(dashboard: Dashboard) -> dict:
    dashboard = Dashboard.objects.prefetch_related("tiles").get(pk=dashboard.pk)
    return DashboardOutput(dashboard).data


class DashboardApi(APIView):
    permission_classes = [HasRole(Role.PRODUCT, Role.ADMIN)]
    parser_classes = [StrictJSONParser]  # tile parameters are a JSON object


class DashboardInput(serializers.Serializer):
    class Meta:
        ref_name = "DashboardInput"

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    last_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LAST_DAYS,
        required=False,
        allow_null=True,
        help_text="date-range override: every tile shows the last N days ending today",
    )
    date_from = serializers.DateField(
        required=False, allow_null=True, help_text="date-range override: fixed dates (with date_to)"
    )
    date_to = serializers.DateField(required=False, allow_null=True)
    is_default = serializers.BooleanField(
        required=False, help_text="the dashboard the analytics area opens on"
    )


class DashboardUpdateInput(DashboardInput):
    class Meta:
        ref_name = "DashboardUpdateInput"

    name = serializers.CharField(max_length=100, required=False)


class DashboardListApi(DashboardApi):
    @extend_schema(
        responses={200: DashboardSummaryOutput(many=True), **_errors(401, 403)},
        summary="Dashboards (the default first)",
    )
    def get(self, request):
        services.dashboard_default()
        dashboards = Dashboard.objects.prefetch_related("tiles")
        return Response(DashboardSummaryOutput(dashboards, many=True).data)

    @extend_schema(
        request=DashboardInput,
        responses={201: DashboardOutput, **_errors(400, 401, 403)},
        summary="Create a dashboard",
    )
    def post(self, request):
        data = DashboardInput(data=request.data)
        data.is_valid(raise_exception=True)
        dashboard = services.dashboard_create(by=request.user, **data.validated_data)
        return Response(_detail(dashboard), status=status.HTTP_201_CREATED)


class DashboardDetailApi(DashboardApi):
    @extend_schema(
        parameters=[PK],
        responses={200: DashboardOutput, **_errors(401, 403, 404)},
        summary="One dashboard with its tiles and the progress of its refresh",
    )
    def get(self, request, pk: int):
        return Response(_detail(_dashboard(pk)))

    @extend_schema(
        parameters=[PK],
        request=DashboardUpdateInput,
        responses={200: DashboardOutput, **_errors(400, 401, 403, 404)},
        summary="Rename, describe, set or clear the date-range override, make it the default",
    )
    def patch(self, request, pk: int):
        dashboard = _dashboard(pk)
        data = DashboardUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        dashboard = services.dashboard_update(
            dashboard=dashboard, by=request.user, **data.validated_data
        )
        return Response(_detail(dashboard))

    @extend_schema(
        parameters=[PK],
        responses={204: None, **_errors(401, 403, 404, 409)},
        summary="Delete a dashboard (not the default one)",
    )
    def delete(self, request, pk: int):
        services.dashboard_delete(dashboard=_dashboard(pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _analysis_names() -> list[str]:
    from analytics.product.registry import ANALYSES

    return list(ANALYSES)


class DashboardTileInput(serializers.Serializer):
    class Meta:
        ref_name = "DashboardTileInput"

    analysis = serializers.ChoiceField(choices=_analysis_names(), help_text="a registry analysis")
    params = ParamsField(required=False, default=dict)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DashboardTileUpdateInput(serializers.Serializer):
    class Meta:
        ref_name = "DashboardTileUpdateInput"

    params = ParamsField(required=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)


class TileListApi(DashboardApi):
    @extend_schema(
        parameters=[PK],
        request=DashboardTileInput,
        responses={201: DashboardTileOutput, **_errors(400, 401, 403, 404)},
        summary="Pin an analysis with its parameters at the end of the dashboard",
    )
    def post(self, request, pk: int):
        dashboard = _dashboard(pk)
        data = DashboardTileInput(data=request.data)
        data.is_valid(raise_exception=True)
        tile = services.tile_add(dashboard=dashboard, by=request.user, **data.validated_data)
        return Response(DashboardTileOutput(tile).data, status=status.HTTP_201_CREATED)


class TileDetailApi(DashboardApi):
    @extend_schema(
        parameters=[PK, TILE_PK],
        request=DashboardTileUpdateInput,
        responses={200: DashboardTileOutput, **_errors(400, 401, 403, 404)},
        summary="Retitle a tile or change its parameters",
    )
    def patch(self, request, pk: int, tile_pk: int):
        tile = _tile(pk, tile_pk)
        data = DashboardTileUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        tile = services.tile_update(tile=tile, by=request.user, **data.validated_data)
        return Response(DashboardTileOutput(tile).data)

    @extend_schema(
        parameters=[PK, TILE_PK],
        responses={204: None, **_errors(401, 403, 404)},
        summary="Remove a tile",
    )
    def delete(self, request, pk: int, tile_pk: int):
        services.tile_remove(tile=_tile(pk, tile_pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TileOrderApi(DashboardApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DashboardTileOrderInput"

        tiles = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
            max_length=services.MAX_TILES,
            help_text="every tile id of the dashboard once, in the new order",
        )

    @extend_schema(
        parameters=[PK],
        request=InputSerializer,
        responses={200: DashboardOutput, **_errors(400, 401, 403, 404)},
        summary="Reorder the tiles",
    )
    def post(self, request, pk: int):
        dashboard = _dashboard(pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.tiles_reorder(
            dashboard=dashboard, order=data.validated_data["tiles"], by=request.user
        )
        return Response(_detail(dashboard))


class DashboardRefreshApi(DashboardApi):
    @extend_schema(
        parameters=[PK],
        request=None,
        responses={202: DashboardOutput, **_errors(401, 403, 404)},
        summary="Queue one recomputation of every tile (follow `refresh` on the dashboard)",
    )
    def post(self, request, pk: int):
        dashboard = services.dashboard_refresh_request(dashboard=_dashboard(pk), by=request.user)
        return Response(_detail(dashboard), status=status.HTTP_202_ACCEPTED)


class DashboardTileResultOutput(serializers.Serializer):
    id = serializers.IntegerField(source="tile.pk")
    analysis = serializers.CharField(source="tile.analysis")
    title = serializers.CharField(source="tile.title")
    params = ParamsOutputField(help_text="the parameters it ran with (the range override in)")
    status = serializers.ChoiceField(choices=["ok", "invalid", "timeout", "unavailable"])
    error = serializers.CharField()
    result = serializers.JSONField(
        allow_null=True, help_text="the analysis' API answer for `params`; null on an error"
    )


class DashboardResultsOutput(serializers.Serializer):
    dashboard = serializers.IntegerField()
    date_from = serializers.DateField(allow_null=True, help_text="the range override applied")
    date_to = serializers.DateField(allow_null=True)
    tiles = DashboardTileResultOutput(many=True)


class DashboardResultsApi(DashboardApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DashboardResultsInput"

        date_from = serializers.DateField(
            required=False, help_text="show every tile for this range (with date_to), unsaved"
        )
        date_to = serializers.DateField(required=False)

        def validate(self, attrs):
            if bool(attrs.get("date_from")) != bool(attrs.get("date_to")):
                raise serializers.ValidationError(
                    {"date_from": ["give both dates or neither"]}, code=UNPROCESSABLE
                )
            if attrs.get("date_from"):
                try:
                    check_range(attrs["date_from"], attrs["date_to"])
                except InvalidRequest as exc:
                    raise serializers.ValidationError(
                        {exc.field: [exc.problem]}, code=exc.code
                    ) from exc
            return attrs

    @extend_schema(
        parameters=[PK, InputSerializer],
        responses={200: DashboardResultsOutput, **_errors(400, 401, 403, 404)},
        summary="Every tile's result, read from the analytics cache (computed on a miss)",
    )
    def get(self, request, pk: int):
        dashboard = _dashboard(pk)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        override = (values["date_from"], values["date_to"]) if values.get("date_from") else None
        applied = override or dashboard.range_override()
        results = dashboard_results(dashboard, override)
        body = {
            "dashboard": dashboard.pk,
            "date_from": applied[0] if applied else None,
            "date_to": applied[1] if applied else None,
            "tiles": results,
        }
        return Response(DashboardResultsOutput(body).data)
