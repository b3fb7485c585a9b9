"""Trends: one or more events over time, with a math, property filters, a breakdown (top N
plus "other"), a comparison with the previous range and formulas over the series.

Definitions (the pandas reference in tests/reference.py follows these, not the SQL):
- every event counts once per uuid; periods are UTC days, Monday weeks or months, and each
  point is a period start in [date_from, date_to] (the first and last may be partial);
- total: events; unique_users: distinct users; per_user_avg: events / distinct users;
- weekly_active / monthly_active: distinct users with the event in the 7 / 30 days ending on
  the point's last day (the period's last day, or date_to when the range ends inside it):
  these windows reach back before date_from;
- sum / avg / min / max / median / p90 of a numeric property: over the events where the
  property is a JSON number; median and p90 interpolate linearly (pandas' default);
- a period without events is 0 for every math;
- filters (all must hold): eq / neq / contains / not_contains / regex (RE2, as ClickHouse
  matches) compare the property as a string (a non-string is ''); gt / gte / lt / lte hold
  only for JSON numbers; is_set / is_not_set test the key's presence;
- breakdown by an event property (`prop:<key>` or a column such as `country`) or a user
  property (`user:tier|country|signup_source`, from the users table; '' for unknown users):
  per event, the N values with the most events in the range keep their own series and all
  others are summed into one series whose breakdown_value is "$other" (computed over their
  events, so unique users of "other" are distinct users, not a sum);
- compare=previous: the same series over the same number of days right before date_from,
  with the current range's top N values;
- a formula over the series letters (A = the first event, ...), e.g. `(A-B)/A`, is
  evaluated per point and breakdown value; a division by 0 gives null.

`trend_series(query=...)` is the selector the dashboards and alerts build on.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from dataclasses import dataclass, field
from enum import StrEnum

from rest_framework import serializers

import charts
from analytics.product.common import (
    BREAKDOWN_COLUMNS,
    EVENT_NAME,
    Breakdown,
    InCohortInput,
    Period,
    RangeInput,
    UserFilter,
    query_timeout,
    validate_property_key,
)
from analytics.product.pages import (
    Analysis,
    Table,
    analysis_view,
    partial_note,
    select_field,
    text_field,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached
from core.errors import UNPROCESSABLE, InvalidRequest, Unprocessable

MAX_SERIES = 10
MAX_FILTERS = 10
MAX_BREAKDOWN_LIMIT = 50
MAX_REGEX = 200
OTHER = "$other"
USER_PREFIX = "user:"
# user properties: the `users` table's columns, by the name a PM types
USER_COLUMNS = {"tier": "tier", "country": "country", "signup_source": "signup_source"}
LETTERS = "ABCDEFGHIJ"


class Math(StrEnum):
    TOTAL = "total"
    UNIQUE_USERS = "unique_users"
    WEEKLY_ACTIVE = "weekly_active"
    MONTHLY_ACTIVE = "monthly_active"
    PER_USER_AVG = "per_user_avg"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    MEDIAN = "median"
    P90 = "p90"

    @property
    def needs_property(self) -> bool:
        return self in PROPERTY_MATHS

    @property
    def window_days(self) -> int | None:
        return {Math.WEEKLY_ACTIVE: 7, Math.MONTHLY_ACTIVE: 30}.get(self)


PROPERTY_MATHS = {Math.SUM, Math.AVG, Math.MIN, Math.MAX, Math.MEDIAN, Math.P90}
_PROPERTY_AGG = {
    Math.SUM: "sum(mval)",
    Math.AVG: "avg(mval)",
    Math.MIN: "min(mval)",
    Math.MAX: "max(mval)",
    Math.MEDIAN: "quantileExactInclusive(0.5)(mval)",
    Math.P90: "quantileExactInclusive(0.9)(mval)",
}


class Op(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    REGEX = "regex"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IS_SET = "is_set"
    IS_NOT_SET = "is_not_set"


NUMERIC_OPS = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}
VALUELESS_OPS = {Op.IS_SET, Op.IS_NOT_SET}


@dataclass(frozen=True)
class PropertyFilter:
    key: str
    op: Op
    value: str = ""  # a number's text for the numeric ops

    def sql(self, i: int) -> tuple[str, dict]:
        params = {f"fk{i}": self.key, f"fv{i}": self.value}
        text = _string_sql(self.key, f"{{fk{i}:String}}")
        if self.op in NUMERIC_OPS:
            params[f"fv{i}"] = float(self.value)
            number = f"JSONExtract(properties, {{fk{i}:String}}, 'Nullable(Float64)')"
            return (
                f"(JSONType(properties, {{fk{i}:String}}) IN ('Int64', 'UInt64', 'Double') "
                f"AND assumeNotNull({number}) {NUMERIC_OPS[self.op]} {{fv{i}:Float64}})"
            ), params
        sql = {
            Op.EQ: f"{text} = {{fv{i}:String}}",
            Op.NEQ: f"{text} != {{fv{i}:String}}",
            Op.CONTAINS: f"position({text}, {{fv{i}:String}}) > 0",
            Op.NOT_CONTAINS: f"position({text}, {{fv{i}:String}}) = 0",
            Op.REGEX: f"match({text}, {{fv{i}:String}})",
            Op.IS_SET: f"JSONHas(properties, {{fk{i}:String}})",
            Op.IS_NOT_SET: f"NOT JSONHas(properties, {{fk{i}:String}})",
        }[self.op]
        return f"({sql})", params

    def text(self) -> str:
        return f"{self.key}:{self.op.value}" + (f":{self.value}" if self.value else "")


def _string_sql(key: str, param: str) -> str:
    """A property as a string: the materialized column when the key has one (same value)."""
    columns = {prop: column for column, prop in BREAKDOWN_COLUMNS.items()}
    return columns.get(key) or f"JSONExtractString(properties, {param})"


@dataclass(frozen=True)
class TrendBreakdown:
    """An event property (as the other analyses' Breakdown) or a user property."""

    name: str
    event: Breakdown | None = None
    user_column: str | None = None

    @classmethod
    def parse(cls, value: str | None, *, field: str = "breakdown") -> TrendBreakdown | None:
        if not value:
            return None
        if value.startswith(USER_PREFIX):
            key = value.removeprefix(USER_PREFIX)
            if key not in USER_COLUMNS:
                allowed = ", ".join(USER_PREFIX + k for k in USER_COLUMNS)
                raise InvalidRequest(field, f"user property {key!r} unknown; use one of {allowed}")
            return cls(value, user_column=USER_COLUMNS[key])
        return cls(value, event=Breakdown.parse(value, field=field))

    def sql(self) -> tuple[str, dict, str]:
        """The value expression, its params and the join it needs (or '')."""
        if self.user_column:
            join = (
                f"LEFT JOIN (SELECT user_id, argMax({self.user_column}, updated_at) AS uval "
                "FROM users GROUP BY user_id) AS u ON u.user_id = e.user_id"
            )
            return "ifNull(u.uval, '')", {}, join
        return f"toString({self.event.event_sql()})", self.event.params, ""


@dataclass(frozen=True)
class TrendQuery:
    series: tuple[str, ...]  # event names; letters A, B, ... in this order
    date_from: dt.date
    date_to: dt.date
    period: Period = Period.DAY
    math: Math = Math.TOTAL
    math_property: str = ""
    filters: tuple[PropertyFilter, ...] = ()
    breakdown: TrendBreakdown | None = None
    breakdown_limit: int = 10
    compare: bool = False
    formula: str = ""
    user_filter: UserFilter | None = field(default=None)

    def previous_range(self) -> tuple[dt.date, dt.date]:
        days = (self.date_to - self.date_from).days + 1
        return self.date_from - dt.timedelta(days=days), self.date_from - dt.timedelta(days=1)


# --- selector


def trend_series(*, query: TrendQuery) -> list[dict]:
    """The series of `query` (cached): each {"event", "label", "breakdown_value", "compare",
    "points": [{"period", "value"}]}, current range first, then previous, then the formula."""
    return trends(query)["series"]


def trends(query: TrendQuery) -> dict:
    return cached("trends", {"query": query}, lambda: _trends(query), ttl=cache_ttl(query.date_to))


def _trends(query: TrendQuery) -> dict:
    db = store()
    with db.session():
        current = _range_series(db, query, query.date_from, query.date_to, "current")
        previous = []
        if query.compare:
            prev_from, prev_to = query.previous_range()
            previous = _range_series(db, query, prev_from, prev_to, "previous")
    series = current + previous
    if query.formula:
        for compare, part in (("current", current), ("previous", previous)):
            if part:
                series += _formula_series(query, part, compare)
    prev_from, prev_to = query.previous_range()
    return {
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "period": query.period.value,
        "math": query.math.value,
        "math_property": query.math_property or None,
        "breakdown": query.breakdown.name if query.breakdown else None,
        "formula": query.formula or None,
        "previous_date_from": prev_from.isoformat() if query.compare else None,
        "previous_date_to": prev_to.isoformat() if query.compare else None,
        "series": series,
    }


def _where(query: TrendQuery) -> tuple[str, dict]:
    parts, params = ["e.event IN {events:Array(String)}"], {"events": list(query.series)}
    for i, f in enumerate(query.filters):
        sql, p = f.sql(i)
        parts.append(sql)
        params.update(p)
    if query.user_filter is not None:
        parts.append(query.user_filter.sql("e.user_id"))
        params.update(query.user_filter.params)
    return " AND ".join(parts), params


def _ts(day: dt.date) -> str:
    return f"{day.isoformat()} 00:00:00"


def _range_series(db, query: TrendQuery, date_from, date_to, compare: str) -> list[dict]:
    starts = query.period.starts(date_from, date_to)
    where, params = _where(query)
    window = query.math.window_days
    # events read: the range, or from the first window's start for the active-users maths
    read_from = date_from
    ends = [min(query.period.last_day(s), date_to) for s in starts]
    if window:
        read_from = min(ends[0] - dt.timedelta(days=window - 1), date_from)
    params |= {
        "ts_from": _ts(read_from),
        "ts_end": _ts(date_to + dt.timedelta(days=1)),
        "first": starts[0].isoformat(),
        "n": len(starts),
        "ends": [e.isoformat() for e in ends],
        "window": window or 0,
        "rk_from": _ts(query.date_from),
        "rk_end": _ts(query.date_to + dt.timedelta(days=1)),
        "limit": query.breakdown_limit,
        "other": OTHER,
    }
    if query.math.needs_property:
        params["mkey"] = query.math_property
    rng = (
        "e.timestamp >= toDateTime64({ts_from:String}, 3, 'UTC') "
        "AND e.timestamp < toDateTime64({ts_end:String}, 3, 'UTC')"
    )
    bval, join = "''", ""
    if query.breakdown:
        raw, bparams, join = query.breakdown.sql()
        params |= bparams
        # the top N values of each event by events in the current range (also for the
        # previous range, so both compare the same values)
        top = (
            f"SELECT e.event, {raw} AS b FROM events AS e {join} "
            "WHERE " + where + " AND e.timestamp >= toDateTime64({rk_from:String}, 3, 'UTC') "
            "AND e.timestamp < toDateTime64({rk_end:String}, 3, 'UTC') "
            "GROUP BY e.event, b ORDER BY e.event, uniqExact(e.uuid) DESC, b "
            "LIMIT {limit:UInt32} BY e.event"
        )
        bval = f"if((e.event, {raw}) IN ({top}), {raw}, {{other:String}})"
    source = f"FROM events AS e {join} WHERE {where} AND {rng}"
    math = query.math
    if window:
        # each distinct user-day counts for every point whose window holds it; by day the
        # points are consecutive days, so their indexes follow by arithmetic
        if query.period is Period.DAY:
            points = (
                "arrayFilter(i -> i >= 0 AND i < {n:UInt32}, range(dateDiff('day', "
                "{first:Date}, day), dateDiff('day', {first:Date}, day) + {window:UInt32}))"
            )
        else:
            points = (
                "arrayFilter(i -> toDate({ends:Array(String)}[i + 1]) >= day AND dateDiff('day',"
                " day, toDate({ends:Array(String)}[i + 1])) < {window:UInt32}, "
                "range({n:UInt32}))"
            )
        sql = (
            "SELECT event, bval, idx, uniqExact(user_id) AS value FROM ("
            f"  SELECT DISTINCT e.event AS event, {bval} AS bval, e.user_id AS user_id, "
            f"  toDate(e.timestamp) AS day {source}"
            f") ARRAY JOIN {points} AS idx GROUP BY event, bval, idx"
        )
    else:
        idx = query.period.offset_sql("{first:Date}", f"{query.period.bucket}(toDate(e.timestamp))")
        if math.needs_property:
            sql = (
                f"SELECT event, bval, idx, {_PROPERTY_AGG[math]} AS value FROM ("
                f"  SELECT e.event AS event, {bval} AS bval, {idx} AS idx, "
                # NULL unless a JSON number: the aggregates skip it, and a group with
                # events but no number still exists (0), as without a math property
                "  if(JSONType(e.properties, {mkey:String}) IN ('Int64', 'UInt64', 'Double'), "
                "  JSONExtractFloat(e.properties, {mkey:String}), NULL) AS mval "
                f"  {source} LIMIT 1 BY e.uuid"
                ") GROUP BY event, bval, idx"
            )
        else:
            agg = {
                Math.TOTAL: "uniqExact(e.uuid)",
                Math.UNIQUE_USERS: "uniqExact(e.user_id)",
                Math.PER_USER_AVG: "uniqExact(e.uuid) / uniqExact(e.user_id)",
            }[math]
            sql = (
                f"SELECT e.event AS event, {bval} AS bval, {idx} AS idx, {agg} AS value "
                f"{source} GROUP BY event, bval, idx"
            )
    rows = db.query(sql, params, timeout=query_timeout())
    return _assemble(query, rows, starts, compare)


def _number(value, math: Math):
    if value is None or value != value:  # no number to aggregate (NULL or nan)
        return 0
    if math in (Math.TOTAL, Math.UNIQUE_USERS, Math.WEEKLY_ACTIVE, Math.MONTHLY_ACTIVE):
        return int(value)
    return round(float(value), 6)


def _assemble(query: TrendQuery, rows, starts, compare: str) -> list[dict]:
    values: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        values.setdefault((row["event"], row["bval"]), {})[int(row["idx"])] = row["value"]
    series = []
    for letter, event in zip(LETTERS, query.series, strict=False):
        if query.breakdown:
            groups = sorted(
                (b for e, b in values if e == event),
                key=lambda b: (
                    b == OTHER,
                    -sum(_number(v, Math.SUM) for v in values[(event, b)].values()),
                    b,
                ),
            )
        else:
            groups = [""]
        for b in groups:
            got = values.get((event, b), {})
            series.append(
                {
                    "event": event,
                    "label": letter,
                    "breakdown_value": b if query.breakdown else None,
                    "compare": compare,
                    "points": [
                        {"period": s.isoformat(), "value": _number(got.get(i), query.math)}
                        for i, s in enumerate(starts)
                    ],
                }
            )
    return series


# --- formulas: + - * / over letters and numbers, parentheses; evaluated without eval()

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-J])|(.))")
_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def parse_formula(text: str, letters: int):
    """An AST of nested tuples; InvalidRequest("formula", ...) when it does not parse."""
    tokens = []
    for number, letter, other in _TOKEN.findall(text.strip()):
        if number:
            tokens.append(("num", float(number)))
        elif letter:
            if LETTERS.index(letter) >= letters:
                raise Unprocessable("formula", f"{letter} names no series (there are {letters})")
            tokens.append(("var", letter))
        elif other in "+-*/()":
            tokens.append(("op", other))
        elif other.strip():
            raise Unprocessable("formula", f"unexpected {other!r}; use A-J, numbers, + - * / ( )")
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr():
        node = term()
        while peek() in (("op", "+"), ("op", "-")):
            node = (take()[1], node, term())
        return node

    def term():
        node = unary()
        while peek() in (("op", "*"), ("op", "/")):
            node = (take()[1], node, unary())
        return node

    def unary():
        if peek() == ("op", "-"):
            take()
            return ("-", ("num", 0.0), unary())
        return atom()

    def atom():
        kind, value = peek()
        if kind in ("num", "var"):
            take()
            return (kind, value)
        if (kind, value) == ("op", "("):
            take()
            node = expr()
            if peek() != ("op", ")"):
                raise Unprocessable("formula", "a '(' is not closed")
            take()
            return node
        raise Unprocessable("formula", "incomplete expression" if kind is None else f"{value!r}")

    if not tokens:
        raise Unprocessable("formula", "empty formula")
    node = expr()
    if pos != len(tokens):
        raise Unprocessable("formula", f"unexpected {tokens[pos][1]!r}")
    return node


def evaluate(node, env: dict[str, float]) -> float | None:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        return env.get(node[1], 0)
    left, right = evaluate(node[1], env), evaluate(node[2], env)
    if left is None or right is None or (kind == "/" and right == 0):
        return None
    return _OPS[kind](left, right)


def _formula_series(query: TrendQuery, part: list[dict], compare: str) -> list[dict]:
    node = parse_formula(query.formula, len(query.series))
    by_group: dict = {}
    for s in part:
        by_group.setdefault(s["breakdown_value"], {})[s["label"]] = s["points"]
    out = []
    for b, letters in by_group.items():
        periods = next(iter(letters.values()))
        points = []
        for i, p in enumerate(periods):
            env = {letter: pts[i]["value"] for letter, pts in letters.items()}
            value = evaluate(node, env)
            points.append(
                {"period": p["period"], "value": None if value is None else round(value, 6)}
            )
        out.append(
            {
                "event": None,
                "label": query.formula,
                "breakdown_value": b,
                "compare": compare,
                "points": points,
            }
        )
    return out


# --- input

FILTER_HELP = (
    "key:op[:value]; op one of " + ", ".join(o.value for o in Op) + " (is_set/is_not_set take "
    "no value; gt/gte/lt/lte a number; regex an RE2 pattern of at most 200 characters)"
)


def parse_filter(text: str) -> PropertyFilter:
    key, _, rest = text.partition(":")
    op_text, sep, value = rest.partition(":")
    try:
        validate_property_key(key, field="filter")
    except InvalidRequest as exc:
        raise serializers.ValidationError(f"{text!r}: {exc.problem}", code=UNPROCESSABLE) from exc
    if op_text not in Op.__members__.values():
        raise serializers.ValidationError(f"{text!r}: must read {FILTER_HELP}", code=UNPROCESSABLE)
    op = Op(op_text)
    if op in VALUELESS_OPS:
        if value:
            raise serializers.ValidationError(
                f"{text!r}: {op.value} takes no value", code=UNPROCESSABLE
            )
        return PropertyFilter(key, op)
    if not sep:
        raise serializers.ValidationError(
            f"{text!r}: {op.value} needs a value (key:op:value)", code=UNPROCESSABLE
        )
    if op in NUMERIC_OPS:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise serializers.ValidationError(
                f"{text!r}: {op.value} needs a finite number", code=UNPROCESSABLE
            )
        return PropertyFilter(key, op, repr(number))
    if op is Op.REGEX:
        check_regex(value, text)
    return PropertyFilter(key, op, value)


def check_regex(pattern: str, text: str) -> None:
    """RE2, as ClickHouse's match() compiles it: Python's re differs (lookarounds,
    backreferences), so the pattern is checked by the RE2 library itself."""
    import re2

    if len(pattern) > MAX_REGEX:
        raise serializers.ValidationError(
            f"{text!r}: the pattern is over {MAX_REGEX} characters", code=UNPROCESSABLE
        )
    try:
        re2.compile(pattern)
    except re2.error as exc:
        raise serializers.ValidationError(
            f"{text!r}: not an RE2 pattern ({exc})", code=UNPROCESSABLE
        ) from exc


class FilterList(serializers.ListField):
    """Repeated `filter` parameters; the page's one text box gives a single string."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data] if data else []
        return super().to_internal_value(data)


class TrendInput(RangeInput, InCohortInput):
    default_days = 30
    default_period = Period.DAY

    series = serializers.RegexField(
        r"^[A-Za-z0-9_.\-$]{1,100}(,[A-Za-z0-9_.\-$]{1,100}){0,9}$",
        max_length=1010,
        help_text="1-10 comma-separated event names; A is the first, B the second, ...",
        error_messages={"invalid": "1-10 comma-separated event names"},
    )
    math = serializers.ChoiceField(choices=[m.value for m in Math], default=Math.TOTAL.value)
    math_property = serializers.RegexField(
        r"^[A-Za-z0-9_.\-]{1,64}$",
        required=False,
        allow_blank=True,
        help_text="the numeric property of sum/avg/min/max/median/p90",
    )
    filter = FilterList(
        child=serializers.RegexField(
            r"^[A-Za-z0-9_.\-]{1,64}:[a-z_]{2,12}(:.*)?$",
            max_length=300,
            error_messages={"invalid": "must read " + FILTER_HELP},
        ),
        required=False,
        max_length=MAX_FILTERS,
        help_text=FILTER_HELP + "; repeat the parameter for several (all must hold)",
    )
    breakdown_limit = serializers.IntegerField(
        min_value=1, max_value=MAX_BREAKDOWN_LIMIT, default=10
    )
    compare = serializers.ChoiceField(choices=["previous"], required=False, allow_blank=True)
    formula = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="over the series letters, e.g. (A-B)/A",
    )

    def validate_breakdown(self, value):
        try:
            return TrendBreakdown.parse(value)
        except InvalidRequest as exc:
            raise serializers.ValidationError(exc.problem, code=exc.code) from exc

    def validate_series(self, value):
        events = tuple(value.split(","))
        for event in events:
            if not EVENT_NAME.match(event):
                raise serializers.ValidationError(
                    f"{event!r} is not an event name", code=UNPROCESSABLE
                )
        return events

    def validate_filter(self, value):
        return tuple(parse_filter(text) for text in value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        math = Math(attrs["math"])
        if math.needs_property and not attrs.get("math_property"):
            raise serializers.ValidationError(
                {"math_property": [f"{math.value} needs one"]}, code=UNPROCESSABLE
            )
        if not math.needs_property and attrs.get("math_property"):
            raise serializers.ValidationError(
                {"math_property": [f"only sum/avg/min/max/median/p90 take one, not {math.value}"]},
                code=UNPROCESSABLE,
            )
        if attrs.get("formula"):
            try:
                parse_formula(attrs["formula"], len(attrs["series"]))
            except InvalidRequest as exc:
                raise serializers.ValidationError(
                    {"formula": [exc.problem]}, code=UNPROCESSABLE
                ) from exc
        return attrs

    def query(self, *, user_filter: UserFilter | None = None) -> TrendQuery:
        v = self.validated_data
        return TrendQuery(
            series=v["series"],
            date_from=v["date_from"],
            date_to=v["date_to"],
            period=v["period"],
            math=Math(v["math"]),
            math_property=v.get("math_property", ""),
            filters=v.get("filter", ()),
            breakdown=v["breakdown"],
            breakdown_limit=v["breakdown_limit"],
            compare=v.get("compare") == "previous",
            formula=v.get("formula", ""),
            user_filter=user_filter or v.get("in_cohort"),
        )


# --- page


def _name(s: dict) -> str:
    name = s["event"] or s["label"]
    if s["event"] and s["label"]:
        name = f"{s['label']}: {name}"
    if s["breakdown_value"] is not None:
        name += f" · {s['breakdown_value'] or '(none)'}"
    if s["compare"] == "previous":
        name += " (previous)"
    return name


def present_trends(request, result, params):
    series = result["series"]
    current = [s for s in series if s["compare"] == "current"]
    x = [p["period"] for p in current[0]["points"]] if current else []
    lines = []
    for i, s in enumerate(series):
        line = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": _name(s),
            "x": x,  # a previous series is drawn over the current periods it precedes
            "y": [p["value"] for p in s["points"]][: len(x)],
            "line": {
                "color": charts.color(i % 12),
                **({"dash": "dot"} if s["compare"] == "previous" else {}),
            },
        }
        if s["compare"] == "previous":
            line["customdata"] = [p["period"] for p in s["points"]]
            line["hovertemplate"] = "%{customdata}: %{y}<extra>%{fullData.name}</extra>"
        lines.append(line)
    layout = charts.layout(yaxis={"title": result["math"].replace("_", " "), "rangemode": "tozero"})
    layout["xaxis"] = charts.period_axis(result["period"], x)
    rows = [
        {"series": _name(s), "period": p["period"], "value": p["value"]}
        for s in series
        for p in s["points"]
    ]
    totals = [
        {"series": _name(s), "sum": round(sum(p["value"] or 0 for p in s["points"]), 6)}
        for s in series
    ]
    return {
        "charts": [
            {
                "id": "trends",
                "wide": True,
                "title": "Trend",
                "table": "points",
                "note": partial_note(result),
                "figure": {"data": lines, "layout": layout},
            }
        ],
        "tables": [
            Table(
                "points",
                "Points",
                [("series", "Series"), ("period", "Period"), ("value", "Value")],
                rows,
            ),
            Table(
                "totals",
                "Sum over the range",
                [("series", "Series"), ("sum", "Sum of points")],
                totals,
            ),
        ],
        "empty": not any(p["value"] for s in current for p in s["points"]),
    }


TRENDS_FIELDS = [
    text_field("series", "Events (A,B,...)", "video_rendered,video_completed", size=40),
    select_field("math", "Math", [m.value for m in Math], Math.TOTAL.value),
    text_field("math_property", "Property (sum/avg/...)", "", size=16),
    text_field("filter", "Filter (key:op:value)", "", size=24),
    text_field("breakdown_limit", "Top N", "10", size=3, kind="number"),
    select_field("compare", "Compare", ["", "previous"], ""),
    text_field("formula", "Formula", "", size=10),
]

TRENDS = Analysis(
    "trends",
    "Trends",
    TrendInput,
    lambda params: trends(params.query()),
    present_trends,
    extra_fields=TRENDS_FIELDS,
)
page = analysis_view(TRENDS)
