"""The one pagination of list APIs: `limit` (1-MAX_LIMIT) and `offset` (0-MAX_OFFSET), both
checked (400 naming the parameter) instead of DRF's silent fallback, and stated in the schema."""

from rest_framework.pagination import LimitOffsetPagination

from core.errors import InvalidRequest

MAX_LIMIT = 200
MAX_OFFSET = 100_000


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def _bounded(self, request, name: str, *, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidRequest(name, "must be an integer") from None
        if not low <= value <= high:
            raise InvalidRequest(name, f"must be between {low} and {high}")
        return value

    def get_limit(self, request):
        return self._bounded(
            request, self.limit_query_param, default=self.default_limit, low=1, high=MAX_LIMIT
        )

    def get_offset(self, request):
        return self._bounded(request, self.offset_query_param, default=0, low=0, high=MAX_OFFSET)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": MAX_LIMIT},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
