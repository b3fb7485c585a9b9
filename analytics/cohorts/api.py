"""API of saved cohorts: list, create (behavioural, from a list, from a CSV upload), read with
the size history, change, delete, compute on demand, and page through members.

Any staff role reads; product managers and admins write. Bad input answers 400 naming the
field (a definition's faulty part as `definition.rules[1].count`); a store that does not
answer gives 503.
"""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.cohorts import selectors, services
from analytics.cohorts.models import Cohort
from analytics.store.base import StoreUnavailable
from core.errors import Unprocessable, error_body
from core.roles import HasRole, Role
from core.schema import MAX_ID, error_responses, id_parameter

MAX_LIST_USERS = 10_000
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


PK = id_parameter("the cohort's id")


def _cohort(pk: int) -> Cohort:
    if not 1 <= pk <= MAX_ID:
        raise Http404("no cohort with this id")
    return get_object_or_404(Cohort, pk=pk)


def _errors(*codes: int) -> dict:
    return error_responses(
        codes,
        {
            404: "no cohort with this id",
            409: "the cohort's state does not allow this",
            413: "the request body is larger than the route's limit (REQUEST_BODY_LIMITS)",
            503: "the analytics store did not answer; try again",
        },
    )


class SizeOutput(serializers.Serializer):
    version = serializers.IntegerField()
    size = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    seconds = serializers.FloatField()
    trigger = serializers.CharField()


class CohortOutput(serializers.ModelSerializer):
    definition = serializers.JSONField()
    size = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        model = Cohort
        fields = [
            "id", "name", "description", "kind", "definition", "version", "size", "state",
            "error", "computed_at", "created_by", "created_at", "updated_at",
        ]  # fmt: skip


class CohortDetailOutput(CohortOutput):
    history = SizeOutput(many=True, source="history_rows")

    class Meta(CohortOutput.Meta):
        fields = [*CohortOutput.Meta.fields, "history"]


class StaticOutput(serializers.Serializer):
    cohort = CohortOutput()
    accepted = serializers.IntegerField(help_text="distinct user ids stored")
    rejected = serializers.IntegerField()
    problems = inline_serializer(
        "CohortUploadProblem",
        {"line": serializers.IntegerField(), "problem": serializers.CharField()},
        many=True,
        help_text="the first 100 rejected lines (CSV line, or 1-based index in user_ids)",
    )


def _create_static(request, input_class, source: str, read_users) -> Response:
    data = input_class(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    users = read_users(values)
    cohort = services.static_cohort_create(
        name=values["name"],
        description=values["description"],
        users=users,
        source=source,
        by=request.user,
    )
    body = {
        "cohort": cohort,
        "accepted": len(users.user_ids),
        "rejected": users.rejected,
        "problems": users.problems,
    }
    return Response(StaticOutput(body).data, status=status.HTTP_201_CREATED)


class StoreApi(APIView):
    permission_classes = [HasRole(Role.PRODUCT, Role.ADMIN)]

    def handle_exception(self, exc):
        if isinstance(exc, StoreUnavailable):
            return Response(
                error_body("store_unavailable", f"the analytics store did not answer ({exc})"),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return super().handle_exception(exc)


class CohortListApi(StoreApi):
    class InputSerializer(serializers.Serializer):
        # a unique name in the OpenAPI components
        class Meta:
            ref_name = "CohortCreateInput"

        name = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=500, required=False, default="")
        definition = serializers.DictField(
            help_text='{"op": "and"|"or", "rules": [...]}: see the README (Saved cohorts)'
        )

    @extend_schema(
        responses={200: CohortOutput(many=True), **_errors(401, 403)}, summary="Saved cohorts"
    )
    def get(self, request):
        return Response(CohortOutput(Cohort.objects.all(), many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: CohortOutput, **_errors(400, 401, 403)},
        summary="Create a behavioural cohort (its first computation is queued)",
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cohort = services.cohort_create(by=request.user, **data.validated_data)
        return Response(CohortOutput(cohort).data, status=status.HTTP_201_CREATED)


class StaticCohortApi(StoreApi):
    class InputSerializer(serializers.Serializer):
        # a unique name in the OpenAPI components
        class Meta:
            ref_name = "CohortStaticInput"

        name = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=500, required=False, default="")
        user_ids = serializers.ListField(
            child=serializers.JSONField(),
            min_length=1,
            max_length=MAX_LIST_USERS,
            help_text="user ids (strings of 1-200 characters; others are reported, not stored)",
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: StaticOutput, **_errors(400, 401, 403, 503)},
        summary="Create a static cohort from a list of user ids (a drill-down list)",
    )
    def post(self, request):
        return _create_static(
            request,
            self.InputSerializer,
            "list",
            lambda v: services.user_ids_from_list(v["user_ids"]),
        )


class CsvUploadField(serializers.FileField):
    """A CSV file part, or the same text sent as a plain form field."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = ContentFile(data.encode("utf-8", "surrogatepass"), name="upload.csv")
        return super().to_internal_value(data)


class CohortUploadApi(StoreApi):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        # a unique name in the OpenAPI components
        class Meta:
            ref_name = "CohortUploadInput"

        name = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=500, required=False, default="")
        file = CsvUploadField(
            allow_empty_file=True,  # no user id in it: 422, as any CSV without one
            help_text="CSV, UTF-8: the user id in the first column; an optional `user_id` header "
            "(a file part, or the CSV as a plain form field)",
        )

        def validate_file(self, value):
            if value.size > MAX_UPLOAD_BYTES:
                raise serializers.ValidationError(f"larger than {MAX_UPLOAD_BYTES} bytes")
            return value

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: StaticOutput, **_errors(400, 401, 403, 413, 503)},
        summary="Create a static cohort from a CSV upload",
    )
    def post(self, request):
        if "file" not in request.data:
            # Django drops a file part of 0 bytes, so no file and an empty one look alike: a
            # CSV without a user id either way.
            raise Unprocessable("file", "no file, or an empty one: no user id")
        return _create_static(
            request,
            self.InputSerializer,
            "csv",
            lambda v: services.user_ids_from_csv(v["file"].read()),
        )


class CohortDetailApi(StoreApi):
    class InputSerializer(serializers.Serializer):
        # a unique name in the OpenAPI components
        class Meta:
            ref_name = "CohortUpdateInput"

        name = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(max_length=500, required=False)
        definition = serializers.DictField(required=False)

    def _detail(self, cohort: Cohort) -> dict:
        cohort.history_rows = list(cohort.sizes.all()[:100])
        return CohortDetailOutput(cohort).data

    @extend_schema(
        parameters=[PK],
        responses={200: CohortDetailOutput, **_errors(401, 403, 404)},
        summary="One cohort with its size history (newest first, at most 100)",
    )
    def get(self, request, pk: int):
        return Response(self._detail(_cohort(pk)))

    @extend_schema(
        parameters=[PK],
        request=InputSerializer,
        responses={200: CohortDetailOutput, **_errors(400, 401, 403, 404)},
        summary="Rename, describe or redefine a cohort (a new definition is recomputed)",
    )
    def patch(self, request, pk: int):
        cohort = _cohort(pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cohort = services.cohort_update(cohort=cohort, by=request.user, **data.validated_data)
        return Response(self._detail(cohort))

    @extend_schema(
        parameters=[PK],
        responses={204: None, **_errors(401, 403, 404, 409)},
        summary="Delete a cohort (refused while another cohort's definition uses it)",
    )
    def delete(self, request, pk: int):
        services.cohort_delete(cohort=_cohort(pk), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CohortComputeApi(StoreApi):
    @extend_schema(
        parameters=[PK],
        request=None,
        responses={202: CohortOutput, **_errors(401, 403, 404, 409)},
        summary="Queue a recomputation of a behavioural cohort",
    )
    def post(self, request, pk: int):
        cohort = services.cohort_compute_request(cohort=_cohort(pk), by=request.user)
        return Response(CohortOutput(cohort).data, status=status.HTTP_202_ACCEPTED)


class MembersOutput(serializers.Serializer):
    cohort = serializers.IntegerField()
    version = serializers.IntegerField()
    size = serializers.IntegerField(allow_null=True)
    users = serializers.ListField(child=serializers.CharField())


class CohortMembersApi(StoreApi):
    class InputSerializer(serializers.Serializer):
        # a unique name in the OpenAPI components
        class Meta:
            ref_name = "CohortMembersInput"

        page = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
        page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    @extend_schema(
        parameters=[PK, InputSerializer],
        responses={200: MembersOutput, **_errors(400, 401, 403, 404, 503)},
        summary="A page of the cohort's current members, by user id",
    )
    def get(self, request, pk: int):
        cohort = _cohort(pk)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        size = data.validated_data["page_size"]
        users = selectors.cohort_members(
            cohort=cohort, limit=size, offset=(data.validated_data["page"] - 1) * size
        )
        return Response(
            MembersOutput(
                {
                    "cohort": cohort.pk,
                    "version": cohort.version,
                    "size": cohort.size,
                    "users": users,
                }
            ).data
        )
