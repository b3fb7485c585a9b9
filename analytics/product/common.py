"""What every product analysis shares: periods, breakdowns, date ranges and the result cache.

Identifiers placed in SQL text (bucket functions, column names) come only from the enums and
allow-lists here; every value a person typed is a query parameter.

The query-string inputs every analysis builds on (date range, period, breakdown, paging) are
here too, shared by the pages and the API.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from django.conf import settings
from rest_framework import serializers

from core.errors import InvalidRequest, MissingReference, StateConflict, Unprocessable
from core.strict import FullMatch


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def bucket(self) -> str:
        """A ClickHouse function from a Date to the start of its period (weeks start Monday)."""
        return {"day": "toDate", "week": "toMonday", "month": "toStartOfMonth"}[self.value]

    def offset_sql(self, start: str, end: str) -> str:
        """SQL for the number of whole periods from the period start `start` to `end`."""
        if self is Period.WEEK:
            return f"intDiv(dateDiff('day', {start}, {end}), 7)"
        return f"dateDiff('{self.value}', {start}, {end})"

    def start_of(self, day: dt.date) -> dt.date:
        if self is Period.WEEK:
            return day - dt.timedelta(days=day.weekday())
        if self is Period.MONTH:
            return day.replace(day=1)
        return day

    def add(self, day: dt.date, n: int) -> dt.date:
        if self is Period.DAY:
            return day + dt.timedelta(days=n)
        if self is Period.WEEK:
            return day + dt.timedelta(weeks=n)
        months = day.year * 12 + day.month - 1 + n
        return dt.date(months // 12, months % 12 + 1, 1)

    def last_day(self, start: dt.date) -> dt.date:
        """The last day of the period that starts at `start`: it has ended once that day has."""
        return self.add(start, 1) - dt.timedelta(days=1)

    def offset(self, start: dt.date, day: dt.date) -> int:
        day = self.start_of(day)
        if self is Period.DAY:
            return (day - start).days
        if self is Period.WEEK:
            return (day - start).days // 7
        return (day.year - start.year) * 12 + day.month - start.month

    def starts(self, date_from: dt.date, date_to: dt.date) -> list[dt.date]:
        """Period starts covering [date_from, date_to]."""
        first, last = self.start_of(date_from), self.start_of(date_to)
        return [self.add(first, i) for i in range(self.offset(first, last) + 1)]


# Breakdowns: the materialized columns of `events` and the property key each one comes from.
BREAKDOWN_COLUMNS = {
    "user_tier": "user_tier",
    "device_type": "device_type",
    "country": "geo_country",
    "video_style": "video_style",
}
PROPERTY_PREFIX = "prop:"
_PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
PROPERTY_KEY_HELP = "1-64 letters, digits, '_', '.' or '-'"


COHORT_PREFIX = "cohort:"
_COHORT_ID = re.compile(r"[1-9][0-9]{0,9}")
# Every breakdown parse() takes, as the schema's pattern (blank: none).
BREAKDOWN_PATTERN = (
    f"^({'|'.join(BREAKDOWN_COLUMNS)}|{PROPERTY_PREFIX}[A-Za-z0-9_.\\-]{{1,64}}"
    f"|{COHORT_PREFIX}[1-9][0-9]{{0,9}})?$"
)
_IN_COHORT_SQL = (
    "if(user_id IN (SELECT user_id FROM cohort_members WHERE cohort_id = {bcohort:UInt64} "
    "AND version = {bcohort_version:UInt32}), {bin:String}, {bout:String})"
)


@dataclass(frozen=True)
class Breakdown:
    """A property to split results by: an allow-listed column, any `properties` key, or
    membership of a saved cohort (`cohort:<id>`: its name, or "not in" its name)."""

    name: str  # as given: "user_tier", "prop:platform" or "cohort:7"
    key: str  # the JSON key in `properties` (the cohort's name for a cohort)
    column: str | None  # the materialized column of `events`, when there is one
    # (id, version) of a cohort breakdown: the version keeps cached results apart
    cohort: tuple[int, int] | None = None

    @classmethod
    def parse(cls, value: str | None, *, field: str = "breakdown") -> Breakdown | None:
        if not value:
            return None
        if value in BREAKDOWN_COLUMNS:
            return cls(value, BREAKDOWN_COLUMNS[value], value)
        if value.startswith(COHORT_PREFIX):
            return cls._cohort(value, field)
        if value.startswith(PROPERTY_PREFIX):
            key = value.removeprefix(PROPERTY_PREFIX)
            if _PROPERTY_KEY.match(key):
                return cls(value, key, None)
            raise InvalidRequest(field, f"property key must be {PROPERTY_KEY_HELP}")
        allowed = ", ".join([*BREAKDOWN_COLUMNS, PROPERTY_PREFIX + "<key>", COHORT_PREFIX + "<id>"])
        raise InvalidRequest(field, f"breakdown {value!r} is not allowed; use one of {allowed}")

    @classmethod
    def _cohort(cls, value: str, field: str) -> Breakdown:
        from analytics.cohorts.models import Cohort

        text = value.removeprefix(COHORT_PREFIX)
        if not _COHORT_ID.fullmatch(text):
            raise InvalidRequest(field, "a cohort breakdown is cohort:<id>")
        cohort = Cohort.objects.filter(pk=int(text)).first() if int(text) < 2**31 else None
        if cohort is None:
            raise MissingReference(field, f"no cohort with id {text}")
        if not cohort.version:
            raise StateConflict(field, f"cohort {text} has not been computed yet")
        return cls(value, cohort.name, None, (cohort.pk, cohort.version))

    def event_sql(self) -> str:
        """The breakdown value of a row of `events` (the key is the parameter `bkey`)."""
        if self.cohort:
            return _IN_COHORT_SQL
        return self.column or "JSONExtractString(properties, {bkey:String})"

    def json_sql(self, props: str) -> str:
        """The breakdown value from a stored JSON properties string (a cohort's from
        `user_id`)."""
        if self.cohort:
            return _IN_COHORT_SQL
        return f"JSONExtractString({props}, {{bkey:String}})"

    @property
    def params(self) -> dict:
        if self.cohort:
            return {
                "bcohort": self.cohort[0],
                "bcohort_version": self.cohort[1],
                "bin": self.key,
                "bout": f"not in {self.key}",
            }
        return {"bkey": self.key}


class UserFilter(Protocol):
    """A set of users an analysis keeps (a cohort: analytics.cohorts.selectors.CohortFilter).
    It must be a dataclass whose fields identify the set's content (the result cache keys on
    them); `sql(column)` is a condition on that user-id column, with `params` named so they
    cannot meet an analysis' own (a prefix)."""

    @property
    def params(self) -> dict: ...

    def sql(self, column: str = "user_id") -> str: ...


@dataclass(frozen=True)
class UserSelect:
    """A UserFilter from any SELECT of one user_id column; `key` names its content."""

    key: str
    select: str
    select_params: dict = field(default_factory=dict)

    def sql(self, column: str = "user_id") -> str:
        return f"{column} IN ({self.select})"

    @property
    def params(self) -> dict:
        return self.select_params


def breakdown_sql(breakdown: Breakdown | None) -> tuple[str, dict]:
    """SQL for the breakdown value of an `events` row ('' without a breakdown) and its params."""
    if breakdown is None:
        return "''", {}
    return breakdown.event_sql(), breakdown.params


def validate_property_key(value: str, *, field: str) -> str:
    if not _PROPERTY_KEY.match(value):
        raise InvalidRequest(field, f"property key must be {PROPERTY_KEY_HELP}")
    return value


def check_range(date_from: dt.date, date_to: dt.date) -> None:
    if date_from > date_to:
        raise Unprocessable("date_from", "date_from must be on or before date_to")
    if (date_to - date_from).days > 3 * 366:
        raise Unprocessable("date_from", "the range may span at most 3 years")


def range_params(date_from: dt.date, date_to: dt.date) -> dict:
    """Timestamps bounding the UTC days [date_from, date_to] as `ts_from` <= t < `ts_end`."""
    return {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "ts_from": f"{date_from.isoformat()} 00:00:00",
        "ts_end": f"{(date_to + dt.timedelta(days=1)).isoformat()} 00:00:00",
    }


RANGE_SQL = (
    "timestamp >= toDateTime64({ts_from:String}, 3, 'UTC') "
    "AND timestamp < toDateTime64({ts_end:String}, 3, 'UTC')"
)


def query_timeout() -> float:
    return settings.ANALYTICS_QUERY_TIMEOUT


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def map_counts(value) -> dict:
    """A ClickHouse Map of counts as {str(key): int}: chdb's JSON gives an object,
    clickhouse-driver a dict (date keys as dates) or a (keys, values) pair."""
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and len(value) == 2:
        return {str(k): int(v) for k, v in zip(value[0], value[1], strict=True)}
    return {}


# --- inputs shared by every analysis


EVENT_NAME = re.compile(r"^[A-Za-z0-9_.\-$]{1,100}$")

DEFAULT_DAYS = 90


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def event_field(default: str) -> serializers.RegexField:
    return serializers.RegexField(
        EVENT_NAME,
        default=default,
        error_messages={"invalid": "an event name: 1-100 letters, digits, '_', '.', '-' or '$'"},
    )


class RangeInput(serializers.Serializer):
    """date_from / date_to (UTC days, inclusive), period and an optional breakdown."""

    default_days = DEFAULT_DAYS
    default_period = Period.WEEK
    breakdowns = True

    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    period = serializers.ChoiceField(choices=[p.value for p in Period], required=False)
    breakdown = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=80,
        validators=[FullMatch(BREAKDOWN_PATTERN, "not a breakdown (see the description)")],
        help_text="user_tier, device_type, country, video_style, prop:<key> or cohort:<id>",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.breakdowns:
            # Not a parameter of this analysis (nor in its schema); given anyway, refused.
            self.fields.pop("breakdown", None)

    def validate_breakdown(self, value):
        try:
            return Breakdown.parse(value)
        except InvalidRequest as exc:
            raise serializers.ValidationError(exc.problem, code=exc.code) from exc

    def validate(self, attrs):
        if not self.breakdowns and self.initial_data.get("breakdown"):
            raise serializers.ValidationError({"breakdown": ["this analysis has no breakdown"]})
        attrs["date_to"] = attrs.get("date_to") or _today()
        attrs["date_from"] = attrs.get("date_from") or attrs["date_to"] - dt.timedelta(
            days=self.default_days
        )
        attrs["period"] = Period(attrs.get("period") or self.default_period)
        attrs.setdefault("breakdown", None)
        try:
            check_range(attrs["date_from"], attrs["date_to"])
        except InvalidRequest as exc:
            raise serializers.ValidationError({exc.field: [exc.problem]}, code=exc.code) from exc
        return attrs


class InCohortInput(serializers.Serializer):
    """`in_cohort`: only the members of a computed saved cohort (analytics/cohorts)."""

    in_cohort = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="a saved cohort's id"
    )

    def validate_in_cohort(self, value):
        from analytics.cohorts.selectors import cohort_filter

        try:
            return cohort_filter(value)
        except InvalidRequest as exc:
            raise serializers.ValidationError(exc.problem, code=exc.code) from exc


MAX_PAGE = 10_000


class PageInput(serializers.Serializer):
    # Bounded so the store's OFFSET ((page - 1) * page_size) stays far inside its integer type.
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)


def page_window(values: dict, export_limit: int | None) -> dict:
    if export_limit:
        return {"limit": export_limit, "offset": 0}
    return {"limit": values["page_size"], "offset": (values["page"] - 1) * values["page_size"]}
