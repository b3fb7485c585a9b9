"""Experiments API: assignment for machine clients, the experiment list and results for staff."""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import ApiKeyAuthentication, JsonOnlyNegotiation
from core.roles import HasApiKey
from experiments.assignment import assignments_for
from experiments.models import Experiment
from experiments.results import experiment_results_cached
from experiments.services import exposures_record


class AssignInput(serializers.Serializer):
    user_id = serializers.CharField(max_length=200, trim_whitespace=False)
    attributes = serializers.DictField(required=False, default=dict)
    experiments = serializers.ListField(
        child=serializers.CharField(max_length=80), required=False, max_length=200
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
    if isinstance(user_id, bool) or not isinstance(user_id, str | int | float):
        raise ValidationError({"user_id": ["Not a valid string."]})
    user_id = str(user_id)
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
            if isinstance(key, bool) or not isinstance(key, str | int | float) or not str(key):
                raise ValidationError({"experiments": ["Each item must be a non-blank string."]})
            if len(str(key)) > 80:
                raise ValidationError({"experiments": ["Each item has at most 80 characters."]})
            if problem := _character_problem(str(key)):
                raise ValidationError({"experiments": [problem]})
        keys = [str(k) for k in keys]
    return user_id, attributes, keys


class ExperimentAssignApi(APIView):
    """`POST /api/experiments/assign/`: the variants of the running experiments a user is in."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    parser_classes = [JSONParser]
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
                    "unknown_experiments": serializers.ListField(child=serializers.CharField()),
                },
            ),
            400: OpenApiResponse(description="a field of the body is invalid (named in detail)"),
        },
        summary="Assign a user to the running experiments (records exposure events)",
    )
    def post(self, request):
        user_id, attributes, keys = assign_input(request.data)
        assignments, unknown = assignments_for(user_id, attributes, keys)
        exposures_record(
            assignments=assignments,
            user_id=user_id,
            api_key=request.auth,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(
            {"user_id": user_id, "assignments": assignments, "unknown_experiments": unknown}
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
    variants = VariantOutput(many=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    winner = serializers.CharField(source="winner.key", default=None)
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


class ExperimentResultsApi(APIView):
    """`GET /api/experiments/<key>/results/`: the readout, recomputed at most once a minute."""

    @extend_schema(
        responses={
            200: OpenApiResponse(description="per metric and variant statistics, SRM, verdict")
        },
        summary="Results of an experiment",
    )
    def get(self, request, key: str):
        experiment = get_object_or_404(Experiment, key=key)
        return Response(experiment_results_cached(experiment=experiment))
