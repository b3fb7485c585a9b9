"""Reads: experiments from the database and their exposures and metrics from the store.

The SQL counts each user from their first exposure (first `experiment_assignment` event)
and each event uuid once, and takes every user value as a parameter.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from django.utils import timezone

from analytics.catalog import Event
from analytics.store import store
from experiments import stats
from experiments.dimensions import TOP_VALUES, Dimension
from experiments.models import Experiment, Metric

_EXPOSURES = """
exposures AS (
    SELECT user_key, argMin(variant, timestamp) AS variant, min(timestamp) AS first_at
    FROM (
        SELECT cityHash64(user_id) AS user_key, timestamp, experiment_variant AS variant
        FROM events
        WHERE event = {exposure_event:String} AND experiment_id = {experiment:String}
          AND timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
    )
    GROUP BY user_key
)"""

EXPOSURES_DAILY_SQL = f"""
WITH {_EXPOSURES}
SELECT toString(toDate(first_at)) AS day, variant, count() AS users
FROM exposures GROUP BY day, variant ORDER BY day, variant
"""

# One pass, no join: every exposure of the experiment and every event of the metric,
# grouped per user. Users are grouped by a 64-bit hash of user_id (a much cheaper group key
# than the string; two of 3 million users share one with probability ~2e-7). The first
# exposure gives the variant and the start of the window; the metric's events are kept as a
# set of (uuid, time, amount), so a retried uuid counts once. Per user: `value` in the window
# after exposure and `pre` (CUPED) in the PRE_PERIOD_DAYS before it; the outer query caps
# both (winsorization: a fixed cap, or a percentile of the experiment's users computed here
# over every exposed user) and sums what the statistics need per exposure day and variant.
# A ratio metric also collects its denominator's events (`d` per user, same window).
# The fragments in braces are fixed SQL chosen below from the metric's definition, never user
# text; the metric's events, properties, window and cap are parameters.
# Every user exposed in the window with their first exposure (variant, time, and the
# dimensions' values then) and the metric's events as a set (each uuid once). The variant
# and the dimensions' values on the first exposure come from one argMinIf over the values
# joined with NUL bytes (removed from the dimensions' values), split again per user: one
# string aggregate instead of one per value (with the per-(day, variant, values) sums below
# and times as integer milliseconds, 0.92 s became 0.72 s for two dimensions on 10 million
# events in `bench experiments`).
_PER_USER = """
            SELECT user_key, first_at, toUnixTimestamp64Milli(first_at) AS first_ms, outcomes,
                   denominators{dim_split}
            FROM (
            SELECT user_key,
                   argMinIf({firsts}, timestamp, is_exposure) AS firsts,
                   minIf(timestamp, is_exposure) AS first_at,
                   {collect} AS outcomes,
                   {collect_den} AS denominators
            FROM (
                SELECT cityHash64(user_id) AS user_key, uuid, timestamp,
                       toUnixTimestamp64Milli(timestamp) AS ms,
                       event = {{exposure_event:String}} AS is_exposure,
                       {is_metric} AS is_metric, {is_denominator} AS is_denominator,
                       experiment_variant AS variant, {amount} AS amount{dim_raw}
                FROM events
                WHERE (event = {{exposure_event:String}} AND experiment_id = {{experiment:String}}
                       AND timestamp >= {{start:DateTime64(3)}}
                       AND timestamp < {{end:DateTime64(3)}})
                   OR (event = {{metric_event:String}} {filter}
                       AND timestamp >= {{metric_start:DateTime64(3)}}
                       AND timestamp < {{metric_end:DateTime64(3)}})
                   {or_denominator}
            )
            GROUP BY user_key
            HAVING countIf(is_exposure) > 0
            )"""

METRIC_DAILY_SQL = (
    """
SELECT 0 AS grouping_set, toString(toDate(first_at)) AS day, variant{dim_keys},
       count() AS users,
       countIf(value > 0) AS converted, sum(value) AS total, sum(value * value) AS total_squares,
       sum(v) AS capped_total, sum(v * v) AS capped_squares,
       sum(p) AS pre_total, sum(p * p) AS pre_squares, sum(v * p) AS cross_products,
       sum(d) AS den_total, sum(d * d) AS den_squares, sum(v * d) AS num_den_products,
       max(value_cap) AS value_cap
FROM (
    SELECT variant, first_at, value, {cap_value} AS value_cap, least(value, value_cap) AS v,
           least(pre, {cap_pre}) AS p, d{dim_keys}
    FROM (
        SELECT variant, first_at, {value} AS value, {pre} AS pre, {den} AS d{dim_user}
        FROM ("""
    + _PER_USER
    + """
        ){users_join}
    )
)
GROUP BY day, variant{dim_keys}
"""
)

# A quantile metric: per user, the values that count (the events' values in the window, or
# the user's total when they have any); per grouping set (the whole variant, or a value of
# a dimension: each per-user row once per set), the TOP_VALUES values by users kept and the
# rest folded into one `is_other` value, then the quantile and its grid of order-statistic
# bounds over every value of the set's users (a window per set, value and variant), and per
# user how many of their values are at or below it (for events clustered by user).
QUANTILE_SQL = (
    """
SELECT grouping_set, dim_value, is_other, variant, count() AS users,
       sum(n_values) AS quantile_n, sum(below) AS main_sum,
       sum(below * below) AS main_sum_squares, sum(n_values * n_values) AS denominator_squares,
       sum(below * n_values) AS main_denominator_products, any(grid) AS grid
FROM (
    SELECT grouping_set, dim_value, is_other, variant, n_values, grid,
           arrayCount(x -> x <= grid[1], vals) AS below
    FROM (
        SELECT *, quantilesExactArray({levels})(vals)
                  OVER (PARTITION BY grouping_set, dim_value, is_other, variant) AS grid
        FROM (
            SELECT grouping_set, variant, vals, n_values,
                   grouping_set != {{base_set:UInt32}} AND value_rank > {{top:UInt32}}
                       AS is_other,
                   if(is_other, '', raw_value) AS dim_value
            FROM (
                SELECT *, dense_rank() OVER (PARTITION BY grouping_set
                                             ORDER BY value_users DESC, raw_value) AS value_rank
                FROM (
                    SELECT *, count() OVER (PARTITION BY grouping_set, raw_value) AS value_users
                    FROM (
                        SELECT variant, vals, length(vals) AS n_values,
                               arrayJoin({sets}) AS set_value,
                               tupleElement(set_value, 1) AS grouping_set,
                               tupleElement(set_value, 2) AS raw_value
                        FROM (
                            SELECT variant, {vals} AS vals{dim_user}
                            FROM ("""
    + _PER_USER
    + """
                            ){users_join}
                        )
                    )
                )
            )
        )
    )
)
GROUP BY grouping_set, dim_value, is_other, variant
ORDER BY grouping_set, dim_value, variant
"""
)

# With dimensions, the per-user rows above are grouped once per grouping set: (day, variant)
# for the readout and (variant, dimension) for each dimension; then, on that small result,
# each dimension keeps its TOP_VALUES values with the most users and folds the rest into one
# `is_other` row (sums add up; quantile metrics have their own query, QUANTILE_SQL).
DIMENSIONS_SQL = """
SELECT grouping_set, day, variant, if(is_other, '', dim_value) AS dim_value, is_other,
       {sums}, max(value_cap) AS value_cap
FROM (
    SELECT *, grouping_set != {{base_set:UInt32}} AND value_rank > {{top:UInt32}} AS is_other
    FROM (
        SELECT *, dense_rank() OVER (PARTITION BY grouping_set
                                     ORDER BY value_users DESC, dim_value) AS value_rank
        FROM (
            SELECT *, sum(users) OVER (PARTITION BY grouping_set, dim_value) AS value_users
            FROM (
                SELECT *, {dim_value} AS dim_value FROM ({grouped})
            )
        )
    )
)
GROUP BY grouping_set, day, variant, dim_value, is_other
ORDER BY grouping_set, day, variant, dim_value
"""
_USERS_JOIN = """ AS per_user
        LEFT JOIN (
            SELECT cityHash64(user_id) AS user_key, argMax(tier, updated_at) AS u_tier,
                   argMax(country, updated_at) AS u_country,
                   argMax(signup_source, updated_at) AS u_signup_source
            FROM users GROUP BY user_id
        ) AS user_now USING user_key"""
_EXPOSURE_PROPERTY = (
    "if(is_exposure, if(JSONType(properties, {{{param}:String}}) = 'String', "
    "JSONExtractString(properties, {{{param}:String}}), "
    "JSONExtractRaw(properties, {{{param}:String}})), '')"
)

PRE_PERIOD_DAYS = 30
# Event times are kept as integer milliseconds (the store's precision): cheaper to collect and
# compare per user than DateTime64 and intervals.
_DAY_MS = 86_400_000
_IN_WINDOW = f"{{t}} >= first_ms AND {{t}} < first_ms + {_DAY_MS} * {{{{window:UInt32}}}}"
_IN_PRE = f"{{t}} >= first_ms - {_DAY_MS} * {{{{pre_days:UInt32}}}} AND {{t}} < first_ms"
_AMOUNT = "if(is_metric, JSONExtractFloat(properties, {value_property:String}), 0)"
_OR_DENOMINATOR = """OR (event = {denominator_event:String}
                       AND timestamp >= {metric_start:DateTime64(3)}
                       AND timestamp < {metric_end:DateTime64(3)})"""
_FILTER = (
    "AND (JSONExtractString(properties, {filter_property:String}) = {filter_value:String} "
    "OR JSONExtractRaw(properties, {filter_property:String}) = {filter_value:String})"
)
_NO_CAP = "inf"
_CAP_ABSOLUTE = "{cap:Float64}"
# Over every exposed user of the experiment (the window spans the whole result set).
_CAP_PERCENTILE = "quantileExact({{cap:Float64}})({column}) OVER ()"
BASELINE_SQL = """
SELECT
    (SELECT uniqExact(user_id) FROM events
     WHERE timestamp >= {{since:DateTime64(3)}} AND event != {{exposure_event:String}}) AS active,
    count() AS users_with_event, sum(v) AS total, sum(v * v) AS total_squares
FROM (
    SELECT user_id, sum(amount) AS v FROM (
        SELECT user_id, {amount} AS amount FROM events
        WHERE event = {{metric_event:String}} {filter} AND timestamp >= {{since:DateTime64(3)}}
        LIMIT 1 BY uuid
    ) GROUP BY user_id
)
"""


@dataclass
class VariantDay:
    """Users of one exposure day and variant and the sums of their per-user values: raw
    (`total`, `total_squares`), capped (`capped_*`), the capped pre-exposure value (`pre_*`)
    and the products of capped value and pre-exposure value; `value_cap` is the cap applied."""

    day: str
    variant: str
    users: int
    converted: int = 0
    total: float = 0.0
    total_squares: float = 0.0
    capped_total: float = 0.0
    capped_squares: float = 0.0
    pre_total: float = 0.0
    pre_squares: float = 0.0
    cross_products: float = 0.0
    den_total: float = 0.0
    den_squares: float = 0.0
    num_den_products: float = 0.0
    value_cap: float | None = None

    SUMS = (
        "converted",
        "total",
        "total_squares",
        "capped_total",
        "capped_squares",
        "pre_total",
        "pre_squares",
        "cross_products",
        "den_total",
        "den_squares",
        "num_den_products",
    )

    def add(self, other: VariantDay) -> None:
        self.users += other.users
        for name in self.SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.value_cap is not None:
            self.value_cap = max(self.value_cap or other.value_cap, other.value_cap)

    @classmethod
    def from_row(cls, row: dict) -> VariantDay:
        # No cap is an infinite one; JSON carries it as null or a string, Arrow as inf.
        cap = row["value_cap"]
        cap = float(cap) if cap is not None else math.inf
        return cls(
            row["day"],
            row["variant"],
            int(row["users"]),
            int(row["converted"]),
            *(float(row[name]) for name in cls.SUMS[1:]),
            value_cap=cap if math.isfinite(cap) else None,
        )


@dataclass
class QuantileRow:
    """A quantile metric's values in one variant (of one value of a dimension): exposed users,
    values counted, the per-user sums of the count at or below the quantile (clustered
    variance) and `grid`: the quantile, then the lower and upper bound at each n*."""

    variant: str
    users: int
    n: int
    main_sum: float
    main_sum_squares: float
    denominator_squares: float
    main_denominator_products: float
    grid: list[float]
    value_cap = None  # never capped

    @classmethod
    def from_row(cls, row: dict) -> QuantileRow:
        grid = [math.nan if g is None else float(g) for g in row["grid"]]
        return cls(
            row["variant"],
            int(row["users"]),
            int(row["quantile_n"]),
            float(row["main_sum"]),
            float(row["main_sum_squares"]),
            float(row["denominator_squares"]),
            float(row["main_denominator_products"]),
            grid,
        )


def quantile_rows(rows: list[dict], dimensions: Sequence[Dimension]):
    """(the per-variant rows, {dimension name: [Slice, ...]}) from a QUANTILE_SQL answer."""
    totals: list[QuantileRow] = []
    slices: dict[str, dict[tuple[str, bool], Slice]] = {d.name: {} for d in dimensions}
    sets = {dimension_set(i, len(dimensions)): d.name for i, d in enumerate(dimensions)}
    for row in rows:
        group = int(row["grouping_set"])
        if group == base_set(len(dimensions)):
            totals.append(QuantileRow.from_row(row))
            continue
        other = bool(int(row["is_other"]))
        key = (str(row["dim_value"]), other)
        found = slices[sets[group]].setdefault(key, Slice(key[0], other))
        found.rows.append(QuantileRow.from_row(row))
    return totals, _ordered(slices)


def _ordered(slices: dict[str, dict[tuple[str, bool], Slice]]) -> dict[str, list[Slice]]:
    return {
        name: sorted(values.values(), key=lambda s: (s.other, -s.users, s.value))
        for name, values in slices.items()
    }


@dataclass
class Slice:
    """The users of one value of a dimension (or, `other`, of every value past the top ones):
    one row per variant, with the same sums as a day's."""

    value: str
    other: bool
    rows: list[VariantDay] = field(default_factory=list)

    @property
    def users(self) -> int:
        return sum(r.users for r in self.rows)


def slices_from_rows(rows: list[dict], dimensions: Sequence[Dimension]):
    """(the daily rows, {dimension name: [Slice, ...]}) from a dimensions query's rows."""
    days: list[VariantDay] = []
    slices: dict[str, dict[tuple[str, bool], Slice]] = {d.name: {} for d in dimensions}
    sets = {dimension_set(i, len(dimensions)): d.name for i, d in enumerate(dimensions)}
    for row in rows:
        group = int(row["grouping_set"])
        if group == base_set(len(dimensions)):
            days.append(VariantDay.from_row(row))
            continue
        other = bool(int(row["is_other"]))
        key = (str(row["dim_value"]), other)
        found = slices[sets[group]].setdefault(key, Slice(key[0], other))
        found.rows.append(replace(VariantDay.from_row(row), day=""))
    return days, _ordered(slices)


@dataclass
class MetricData:
    """Per exposure day and variant: users and the sums of the per-user metric value."""

    metric: Metric
    role: str
    days: list[VariantDay] = field(default_factory=list)
    # Per dimension name: its values, most exposed users first, the folded rest last.
    slices: dict[str, list[Slice]] = field(default_factory=dict)

    def totals(self) -> dict[str, VariantDay]:
        if self.metric.kind == Metric.Kind.QUANTILE:  # one QuantileRow per variant
            return {row.variant: row for row in self.days}
        out: dict[str, VariantDay] = {}
        for row in self.days:
            out.setdefault(row.variant, VariantDay("", row.variant, 0)).add(row)
        return out


def ts(value: dt.datetime) -> str:
    """A DateTime64(3) query parameter: naive UTC with milliseconds."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def experiment_window(experiment: Experiment) -> tuple[dt.datetime, dt.datetime]:
    start = experiment.started_at or experiment.created_at
    end = experiment.ended_at or timezone.now() + dt.timedelta(minutes=5)
    return start, end


@dataclass(frozen=True)
class Fragments:
    collect: str
    value: str
    pre: str
    cap_value: str
    cap_pre: str
    amount: str
    filter: str
    is_metric: str = "NOT is_exposure"
    is_denominator: str = "0"
    collect_den: str = "0"
    den: str = "toFloat64(0)"
    or_denominator: str = ""

    def sql(self, dimensions: Sequence[Dimension] = ()) -> str:
        """The metric's query: per exposure day and variant, and with `dimensions`, per
        variant and value of each (top values and the rest folded)."""
        names = [f"dim_{i}" for i in range(len(dimensions))]
        keys = "".join(f", {n}" for n in names)
        # Per (day, variant), and with dimensions per (day, variant, values): far fewer rows
        # than users, which the grouping sets then add up (every sum adds).
        fine = METRIC_DAILY_SQL.format(
            **self.__dict__, **_dimension_parts(dimensions), dim_keys=keys
        )
        if not dimensions:
            return fine
        sets = ", ".join(["(day, variant)"] + [f"(variant, {n})" for n in names])
        sums = ", ".join(f"sum({c}) AS {c}" for c in ("users", *VariantDay.SUMS))
        grouped = (
            f"SELECT grouping({', '.join(names)}) AS grouping_set, day, variant{keys}, {sums}, "
            f"max(value_cap) AS value_cap FROM ({fine}) GROUP BY GROUPING SETS ({sets})"
        )
        value = (
            "multiIf("
            + "".join(
                f"grouping_set = {dimension_set(i, len(names))}, {n}, " for i, n in enumerate(names)
            )
            + "'')"
        )
        return (
            DIMENSIONS_SQL.format(sums=sums, dim_value=value, grouped=grouped)
            + "SETTINGS force_grouping_standard_compatibility = 1"
        )

    def quantile_sql(self, vals: str, dimensions: Sequence[Dimension] = ()) -> str:
        """A quantile metric's query (QUANTILE_SQL): `vals`, the per-user values counted."""
        k = len(dimensions)
        sets = [f"(toUInt32({base_set(k)}), '')"] + [
            f"(toUInt32({dimension_set(i, k)}), toString(dim_{i}))" for i in range(k)
        ]
        levels = ", ".join(f"{{q_{i}:Float64}}" for i in range(1 + 2 * len(stats.N_STAR_VALUES)))
        return QUANTILE_SQL.format(
            **self.__dict__,
            **_dimension_parts(dimensions),
            vals=vals,
            sets=f"[{', '.join(sets)}]",
            levels=levels,
        )


def _dimension_parts(dimensions: Sequence[Dimension]) -> dict:
    """The per-user fragments that read each dimension on the user's first exposure (or, for
    a user property, from the users table joined on the user)."""
    raw, first, user = [], [], []
    for i, dimension in enumerate(dimensions):
        name = f"dim_{i}"
        if dimension.user_column:
            user.append(f"u_{dimension.user_column} AS {name}")
            continue
        column = dimension.column or _EXPOSURE_PROPERTY.format(param=f"{name}_property")
        raw.append(f"replaceAll({column}, '\\0', '') AS {name}_raw")
        first.append(name)
        user.append(name)
    # The first exposure's variant and values, joined with NUL bytes and split per user.
    if first:
        joined = ", '\\0', ".join(["replaceAll(variant, '\\0', '')", *(f"{n}_raw" for n in first)])
        firsts = f"concat({joined})"
        dim_split = ", splitByChar('\\0', firsts) AS parts, parts[1] AS variant" + "".join(
            f", parts[{k + 2}] AS {n}" for k, n in enumerate(first)
        )
    else:
        firsts, dim_split = "variant", ", firsts AS variant"
    return {
        "dim_user": "".join(f", {u}" for u in user),
        "dim_raw": "".join(f", {r}" for r in raw),
        "firsts": firsts,
        "dim_split": dim_split,
        "users_join": _USERS_JOIN if any(d.user_column for d in dimensions) else "",
    }


def base_set(dimensions: int) -> int:
    """grouping() of the (day, variant) set: every dimension aggregated over (SQL standard)."""
    return (1 << dimensions) - 1


def dimension_set(index: int, dimensions: int) -> int:
    """grouping() of the (variant, dimension `index`) set: only that one grouped by."""
    return base_set(dimensions) ^ (1 << (dimensions - 1 - index))


def dimension_params(dimensions: Sequence[Dimension]) -> dict:
    params = {"base_set": base_set(len(dimensions)), "top": TOP_VALUES}
    for i, dimension in enumerate(dimensions):
        if dimension.prop:
            params[f"dim_{i}_property"] = dimension.prop
    return params


def _per_user(metric: Metric, window: str) -> str:
    """The per-user value over the outcomes inside `window` (an _IN_WINDOW-like template)."""
    if metric.kind == Metric.Kind.CONVERSION:
        return f"toFloat64(arrayExists(t -> {window.format(t='t')}, outcomes))"
    inside = window.format(t="o.2")
    if metric.value_property:
        return f"arraySum(o -> if({inside}, o.3, 0), outcomes)"
    return f"toFloat64(arrayCount(o -> {inside}, outcomes))"


def _cap(metric: Metric, column: str) -> str:
    if metric.capping == Metric.Capping.ABSOLUTE:
        return _CAP_ABSOLUTE
    if metric.capping == Metric.Capping.PERCENTILE:
        return _CAP_PERCENTILE.format(column=column)
    return _NO_CAP


def _metric_fragments(metric: Metric) -> Fragments:
    """The SQL fragments of a metric's definition.

    A conversion only asks whether some event time falls in the window, so duplicates do not
    matter and a plain array of times is enough; counts and sums keep (uuid, time, amount)
    sets so a retried uuid counts once."""
    filter_sql = _FILTER if metric.filter_property else ""
    if metric.kind == Metric.Kind.CONVERSION:
        collect, amount = "groupArrayIf(ms, is_metric)", "1"
    else:
        collect = "groupUniqArrayIf((uuid, ms, amount), is_metric)"
        amount = _AMOUNT if metric.value_property else "1"
    fragments = Fragments(
        collect=collect,
        value=_per_user(metric, _IN_WINDOW),
        pre=_per_user(metric, _IN_PRE) if metric.has_cuped else "toFloat64(0)",
        cap_value=_cap(metric, "value"),
        cap_pre=_cap(metric, "pre"),
        amount=amount,
        filter=filter_sql,
    )
    if metric.kind != Metric.Kind.RATIO:
        return fragments
    # The WHERE also passes denominator events, so numerator events are named explicitly.
    in_window = _IN_WINDOW.format(t="o.2")
    return replace(
        fragments,
        is_metric=f"(event = {{metric_event:String}} {filter_sql})",
        is_denominator="(event = {denominator_event:String})",
        collect_den="groupUniqArrayIf((uuid, ms), is_denominator)",
        den=f"toFloat64(arrayCount(o -> {in_window}, denominators))",
        or_denominator=_OR_DENOMINATOR,
    )


def _quantile_values(metric: Metric) -> str:
    """Per user, the values a quantile metric counts: every event's value in the window
    (event quantile), or the user's total when they have an event there (user quantile)."""
    inside = _IN_WINDOW.format(t="o.2")
    if metric.quantile_scope == Metric.QuantileScope.EVENT:
        return f"arrayMap(o -> o.3, arrayFilter(o -> {inside}, outcomes))"
    return (
        f"if(arrayExists(o -> {inside}, outcomes), "
        f"[arraySum(o -> if({inside}, o.3, 0), outcomes)], CAST([], 'Array(Float64)'))"
    )


def quantile_params(metric: Metric) -> dict:
    """The quantile and its grid's bounds, q_0 and then (lower, upper) per n*."""
    levels = [metric.quantile] + [
        bound for pair in stats.quantile_grid_levels(metric.quantile) for bound in pair
    ]
    return {f"q_{i}": level for i, level in enumerate(levels)}


def _metric_params(metric: Metric) -> dict:
    return {
        "metric_event": metric.event,
        "denominator_event": metric.denominator_event,
        "window": metric.window_days,
        "pre_days": PRE_PERIOD_DAYS,
        "cap": metric.cap_value or 0.0,
        "value_property": metric.value_property,
        "filter_property": metric.filter_property,
        "filter_value": metric.filter_value,
    }


def experiment_metrics(experiment: Experiment) -> list[tuple[Metric, str]]:
    """(metric, role) pairs: primary, then secondary, then guardrails."""
    pairs: list[tuple[Metric, str]] = []
    if experiment.primary_metric_id:
        pairs.append((experiment.primary_metric, "primary"))
    pairs += [(m, "secondary") for m in experiment.secondary_metrics.all()]
    pairs += [(m, "guardrail") for m in experiment.guardrail_metrics.all()]
    return pairs


def experiment_data(
    experiment: Experiment, dimensions: Sequence[Dimension] = ()
) -> tuple[list[VariantDay], list[MetricData]]:
    """Daily first exposures per variant, and each metric's daily per-variant sums (with
    `dimensions`, also per variant and value of each, in the same pass)."""
    start, end = experiment_window(experiment)
    return exposure_data(
        key=experiment.key,
        start=start,
        end=end,
        metrics=experiment_metrics(experiment),
        dimensions=dimensions,
    )


def exposure_data(
    *,
    key: str,
    start: dt.datetime,
    end: dt.datetime,
    metrics: list[tuple[Metric, str]],
    dimensions: Sequence[Dimension] = (),
) -> tuple[list[VariantDay], list[MetricData]]:
    """`experiment_data` for the exposures logged under `key` (an experiment's, or a
    holdout's tracking key) between `start` and `end`, and these (metric, role) pairs."""
    base = {
        "exposure_event": Event.EXPERIMENT_ASSIGNMENT.value,
        "experiment": key,
        "start": ts(start),
        "end": ts(end),
    }
    db = store()
    data: list[MetricData] = []
    with db.session():
        for metric, role in metrics:
            window = dt.timedelta(days=metric.window_days)
            pre = dt.timedelta(days=PRE_PERIOD_DAYS if metric.has_cuped else 0)
            params = {
                **base,
                **_metric_params(metric),
                "metric_start": ts(start - pre),
                "metric_end": ts(end + window),
            }
            if metric.kind == Metric.Kind.QUANTILE:
                sql = _metric_fragments(metric).quantile_sql(_quantile_values(metric), dimensions)
                params.update(dimension_params(dimensions), **quantile_params(metric))
                totals, slices = quantile_rows(db.query(sql, params), dimensions)
                data.append(MetricData(metric, role, totals, slices))
                continue
            sql = _metric_fragments(metric).sql(dimensions)
            if dimensions:
                rows = db.query(sql, {**params, **dimension_params(dimensions)})
                days, slices = slices_from_rows(rows, dimensions)
                data.append(MetricData(metric, role, days, slices))
                continue
            rows = db.query(sql, params)
            data.append(MetricData(metric, role, [VariantDay.from_row(r) for r in rows]))
    daily = next((d for d in data if d.metric.kind != Metric.Kind.QUANTILE), None)
    if daily is not None:  # every metric's query counts the same exposed users
        exposures = [VariantDay(r.day, r.variant, r.users) for r in daily.days]
    else:
        exposures = [
            VariantDay(r["day"], r["variant"], int(r["users"]))
            for r in db.query(EXPOSURES_DAILY_SQL, base)
        ]
    return exposures, data


# Each holdout group's users (by their first holdout exposure) and the covered experiments
# they were exposed to, by variant: the general population's share in treatments, and any
# held user a client let into a covered experiment (a client not honouring the holdout).
HOLDOUT_CROSSING_SQL = """
SELECT h.grp AS grp, e.experiment AS experiment, e.variant AS variant, count() AS users
FROM (
    SELECT cityHash64(user_id) AS user_key, argMin(experiment_variant, timestamp) AS grp
    FROM events
    WHERE event = {exposure_event:String} AND experiment_id = {holdout:String}
      AND timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
    GROUP BY user_key
) AS h
INNER JOIN (
    SELECT cityHash64(user_id) AS user_key, experiment_id AS experiment,
           argMin(experiment_variant, timestamp) AS variant
    FROM events
    WHERE event = {exposure_event:String} AND experiment_id IN {experiments:Array(String)}
      AND timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
    GROUP BY user_key, experiment
) AS e ON h.user_key = e.user_key
GROUP BY grp, experiment, variant ORDER BY grp, experiment, variant
"""


def holdout_crossing(
    *, key: str, start: dt.datetime, end: dt.datetime, experiments: list[str]
) -> list[dict]:
    """[{grp, experiment, variant, users}]: holdout users by group exposed to each covered
    experiment's variants in the holdout's window."""
    if not experiments:
        return []
    rows = store().query(
        HOLDOUT_CROSSING_SQL,
        {
            "exposure_event": Event.EXPERIMENT_ASSIGNMENT.value,
            "holdout": key,
            "experiments": experiments,
            "start": ts(start),
            "end": ts(end),
        },
    )
    return [{**r, "users": int(r["users"])} for r in rows]


@dataclass(frozen=True)
class Baseline:
    active_users: int
    mean: float
    variance: float

    @property
    def users_per_day(self) -> float:
        return self.active_users / 30


def metric_baseline(metric: Metric, *, days: int = 30) -> Baseline:
    """The metric over the last `days` days among active users (users with any event)."""
    filter_sql = _FILTER if metric.filter_property else ""
    amount = "1"
    if metric.kind == Metric.Kind.MEAN and metric.value_property:
        amount = "JSONExtractFloat(properties, {value_property:String})"
    sql = BASELINE_SQL.format(amount=amount, filter=filter_sql)
    params = {
        **_metric_params(metric),
        "since": ts(timezone.now() - dt.timedelta(days=days)),
        "exposure_event": Event.EXPERIMENT_ASSIGNMENT.value,
    }
    row = store().query(sql, params)[0]
    active = int(row["active"])
    if active == 0:
        return Baseline(0, 0.0, 0.0)
    if metric.kind == Metric.Kind.CONVERSION:
        p = int(row["users_with_event"]) / active
        return Baseline(active, p, p * (1 - p))
    total, squares = float(row["total"]), float(row["total_squares"])
    mean = total / active
    variance = (squares - total * total / active) / (active - 1) if active > 1 else 0.0
    return Baseline(active, mean, max(variance, 0.0))
