"""API of the user insight models: one user's insight, the registry, retrains and their progress."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.insights.models import ModelVersion, TrainingRun
from analytics.insights.registry import KINDS
from analytics.insights.scoring import user_insight
from analytics.insights.services import training_run_start
from core.errors import error_body
from core.roles import HasRole, Role


class InsightOutput(serializers.Serializer):
    user_id = serializers.CharField()
    churn_probability = serializers.FloatField()
    ltv = serializers.FloatField()
    conversion_likelihood = serializers.FloatField(
        allow_null=True, help_text="null for users who already pay"
    )
    engagement_score = serializers.FloatField()
    next_best_action = serializers.CharField()
    model_versions = serializers.DictField(child=serializers.IntegerField())
    computed_at = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=["scored", "on_demand", "defaults"])
    features = serializers.DictField(child=serializers.FloatField())


class UserInsightApi(APIView):
    """GET /api/users/<user_id>/insights/: from the scored table, else computed on demand."""

    @extend_schema(
        responses={200: InsightOutput, 404: OpenApiResponse(description="unknown user")},
        summary="A user's churn probability, LTV, conversion, engagement and next best action",
    )
    def get(self, request, user_id: str):
        insight = user_insight(user_id[:200])
        if insight is None:
            return Response(
                error_body("not_found", f"no user {user_id!r} in the analytics store"),
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(InsightOutput(insight).data)


class RunOutput(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version.version", allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "state", "stage", "progress", "error", "triggered_by",
            "created_at", "started_at", "finished_at", "model_version",
        ]  # fmt: skip


class VersionOutput(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id", "kind", "version", "trained_at", "reference_at", "window_days", "horizon_days",
            "train_rows", "validation_rows", "metrics", "is_active", "activation_note",
            "triggered_by",
        ]  # fmt: skip


class ModelVersionListApi(APIView):
    @extend_schema(responses=VersionOutput(many=True), summary="Model versions, newest first")
    def get(self, request):
        return Response(VersionOutput(ModelVersion.objects.all(), many=True).data)


class RetrainApi(APIView):
    """POST /api/insights/models/<kind>/retrain/ (engineer, admin) → 202 with the queued run."""

    permission_classes = [HasRole(Role.ENGINEER, Role.ADMIN)]

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(KINDS))],
        responses={202: RunOutput, 409: OpenApiResponse(description="already running")},
        summary="Queue a retrain of one model kind on the ml queue",
    )
    def post(self, request, kind: str):
        if kind not in KINDS:
            raise Http404(f"no model kind {kind!r}; one of {', '.join(KINDS)}")
        run = training_run_start(kind=kind, by=request.user)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunListApi(APIView):
    @extend_schema(responses=RunOutput(many=True), summary="The latest retrain runs")
    def get(self, request):
        runs = TrainingRun.objects.select_related("model_version")[:20]
        return Response(RunOutput(runs, many=True).data)


class RunDetailApi(APIView):
    @extend_schema(responses=RunOutput, summary="One retrain's state, stage and progress")
    def get(self, request, pk: int):
        run = get_object_or_404(TrainingRun.objects.select_related("model_version"), pk=pk)
        return Response(RunOutput(run).data)
