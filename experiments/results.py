"""An experiment's readout: per metric and variant statistics, SRM, Holm, and a verdict.

Built from `selectors.experiment_data` and `stats`; the results API, the page and the hourly
monitor all read the same dictionary.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.utils import timezone

from analytics.store.cache import cached
from experiments import selectors, stats
from experiments.dimensions import TOP_VALUES, Dimension
from experiments.models import (
    HOLDOUT_CONTROL,
    HOLDOUT_TREATMENT,
    Experiment,
    Holdout,
    Metric,
    normalized_weights,
)


@dataclass(frozen=True)
class Decision:
    """What the chosen engine's numbers allow: `winner`/`loser` (decisive on the primary
    metric), `flat` (not decisive), `srm` (untrustworthy), `empty` (no exposures).
    `failing_guardrails`: guardrail metrics a treatment harms (significantly, or with
    probability 1 - alpha); `reason` says why, in words, for the page and the audit log."""

    kind: str
    reason: str
    variant: str | None = None
    failing_guardrails: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "variant": self.variant,
            "guardrail_harmed": bool(self.failing_guardrails),
            "failing_guardrails": list(self.failing_guardrails),
            "reason": self.reason,
        }


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _base(metric: Metric, n: int, total: float, squares: float) -> stats.Base:
    if metric.kind == Metric.Kind.CONVERSION:
        return stats.Proportion(n, total)
    return stats.SampleMean(n, total, squares)


def _ratio(row: selectors.VariantDay, total: float, squares: float, products: float):
    return stats.Ratio(
        row.users,
        stats.SampleMean(row.users, total, squares),
        stats.SampleMean(row.users, row.den_total, row.den_squares),
        products,
    )


def _quantile(metric: Metric, row: selectors.QuantileRow) -> stats.Quantile:
    """The quantile of a variant and its grid's bounds at the n* of its sample."""
    n_star = stats.quantile_n_star(row.n)
    index = stats.N_STAR_VALUES.index(n_star)
    common = {
        "n": row.n,
        "n_star": n_star,
        "nu": metric.quantile,
        "quantile_hat": row.grid[0],
        "lower": row.grid[1 + 2 * index],
        "upper": row.grid[2 + 2 * index],
    }
    if metric.quantile_scope == Metric.QuantileScope.USER:
        return stats.Quantile(**common)
    return stats.QuantileClustered(
        **common,
        main_sum=row.main_sum,
        main_sum_squares=row.main_sum_squares,
        denominator_sum=float(row.n),
        denominator_sum_squares=row.denominator_squares,
        main_denominator_sum_product=row.main_denominator_products,
        n_clusters=row.users,
    )


def _statistic(metric: Metric, row: selectors.VariantDay | None) -> stats.Statistic:
    """The raw statistic: no capping, no CUPED."""
    if metric.kind == Metric.Kind.QUANTILE and row is not None and row.n > 0:
        return _quantile(metric, row)
    if row is None or row.users == 0:
        return stats.Proportion(0, 0.0)
    if metric.kind == Metric.Kind.CONVERSION:
        return stats.Proportion(row.users, float(row.converted))
    if metric.kind == Metric.Kind.RATIO:
        # Uncapped numerator x denominator products are not kept: capping a ratio's numerator
        # shows raw sums with the capped covariance (only `adjusted` feeds the comparison).
        return _ratio(row, row.total, row.total_squares, row.num_den_products)
    return stats.SampleMean(row.users, row.total, row.total_squares)


def _adjusted(metric: Metric, row: selectors.VariantDay | None) -> stats.Statistic:
    """The statistic the comparison uses: capped values, regressed on the capped
    pre-exposure values when the metric has CUPED on (theta is set per comparison)."""
    if metric.kind == Metric.Kind.QUANTILE:
        return _statistic(metric, row)
    if row is None or row.users == 0:
        return stats.Proportion(0, 0.0)
    if metric.kind == Metric.Kind.RATIO:
        return _ratio(row, row.capped_total, row.capped_squares, row.num_den_products)
    post = _base(metric, row.users, row.capped_total, row.capped_squares)
    if not metric.has_cuped:
        return post
    pre = _base(metric, row.users, row.pre_total, row.pre_squares)
    return stats.Adjusted(row.users, post, pre, row.cross_products)


def _summary(metric: Metric, statistic: stats.Statistic) -> dict:
    """`raw`/`adjusted` of the API: users and conversions, or users, mean and variance
    (after CUPED the conversions are users x the adjusted rate, not a whole number)."""
    if metric.kind == Metric.Kind.CONVERSION:
        conversions = statistic.mean * statistic.n
        if isinstance(statistic, stats.Proportion):
            conversions = round(statistic.sum)
        return {"users": statistic.n, "conversions": conversions}
    return {"users": statistic.n, "mean": statistic.mean, "variance": statistic.variance}


def _quantile_summary(experiment: Experiment, metric: Metric, row) -> dict:
    """`raw`/`adjusted` of a quantile metric: exposed users, the values counted, the quantile
    (also as `mean`), its variance per value and its (1 - alpha) interval from that variance
    (the order-statistic interval's normal approximation); null quantities without values."""
    users = row.users if row is not None else 0
    statistic = _statistic(metric, row)
    if not isinstance(statistic, stats.Quantile) or statistic.degenerate:
        quantile = statistic.quantile_hat if isinstance(statistic, stats.Quantile) else None
        return {
            "users": users,
            "values": statistic.n if isinstance(statistic, stats.Quantile) else 0,
            "mean": quantile,
            "quantile": quantile,
            "variance": None,
            "ci": None,
        }
    z = float(stats.sps.norm.ppf(1 - experiment.alpha / 2))
    half = z * math.sqrt(statistic.variance / statistic.n)
    return {
        "users": users,
        "values": statistic.n,
        "mean": statistic.quantile_hat,
        "quantile": statistic.quantile_hat,
        "variance": statistic.variance,
        "ci": [statistic.quantile_hat - half, statistic.quantile_hat + half],
    }


def _joint_cuped(adjusted: list[stats.Statistic]) -> list[stats.Statistic]:
    """Every variant with the theta of all variants together (the summaries and the variance
    reduction shown; each comparison sets its own pairwise theta, as gbstats does)."""
    if not adjusted or not all(isinstance(a, stats.Adjusted) for a in adjusted):
        return adjusted
    theta = stats.cuped_theta(*adjusted)
    if theta == 0:
        return [a.post for a in adjusted]
    return [replace(a, theta=theta) for a in adjusted]


def _variance_reduction(adjusted: list[stats.Statistic]) -> tuple[float | None, float | None]:
    """(theta, 1 - variance after CUPED / variance before), pooled over the variants."""
    cuped = [a for a in adjusted if isinstance(a, stats.Adjusted)]
    if not cuped:
        return None, None
    before = sum(a.post.variance * a.n for a in cuped)
    after = sum(a.variance * a.n for a in cuped)
    return cuped[0].theta, (1 - after / before) if before > 0 else None


def _tuning(experiment: Experiment) -> float:
    return experiment.sequential_tuning or stats.DEFAULT_TUNING


def compare(experiment: Experiment, metric: Metric, control, treatment) -> dict:
    """The comparison of the experiment's engine, and only its quantities."""
    if experiment.engine == Experiment.Engine.BAYESIAN:
        b = stats.bayesian(
            control,
            treatment,
            alpha=experiment.alpha,
            prior_mean=experiment.prior_mean,
            prior_stddev=experiment.prior_stddev,
            proper=experiment.proper_prior,
            decrease_is_good=metric.direction == Metric.Direction.DECREASE,
        )
        if b is None:
            return {
                "lift": None,
                "ci": None,
                "chance_to_win": None,
                "risk": None,
                "risk_control": None,
            }
        return {
            "lift": b.lift,
            "ci": list(b.ci),
            "chance_to_win": b.chance_to_win,
            "risk": b.risk,
            "risk_control": b.risk_control,
        }
    f = stats.frequentist(
        control,
        treatment,
        alpha=experiment.alpha,
        sequential=experiment.sequential_testing,
        tuning=_tuning(experiment),
    )
    if f is None:
        return {"lift": None, "ci": None, "p_value": None, "p_value_adjusted": None}
    return {"lift": f.lift, "ci": list(f.ci), "p_value": f.p_value, "p_value_adjusted": f.p_value}


def metric_rows(experiment: Experiment, data: selectors.MetricData, variants) -> list[dict]:
    metric = data.metric
    totals = data.totals()
    control = next(v for v in variants if v.is_control)
    control_stat = _adjusted(metric, totals.get(control.key))
    shown = _joint_cuped([_adjusted(metric, totals.get(v.key)) for v in variants])
    rows = []
    for variant, adjusted in zip(variants, shown, strict=True):
        if metric.kind == Metric.Kind.QUANTILE:
            raw = _quantile_summary(experiment, metric, totals.get(variant.key))
            summaries = {"raw": raw, "adjusted": dict(raw)}
        else:
            summaries = {
                "raw": _summary(metric, _statistic(metric, totals.get(variant.key))),
                "adjusted": _summary(metric, adjusted),
            }
        rows.append(
            {
                "key": variant.key,
                "name": variant.name or variant.key,
                "control": variant.is_control,
                **summaries,
                "comparison": None
                if variant.is_control
                else compare(
                    experiment,
                    metric,
                    control_stat,
                    _adjusted(metric, totals.get(variant.key)),
                ),
            }
        )
    return rows


def metric_adjustments(data: selectors.MetricData, variants) -> dict:
    """What was done to the raw values: CUPED (theta, variance reduction achieved) and
    capping (the kind, the setting and the cap applied)."""
    metric = data.metric
    totals = data.totals()
    shown = _joint_cuped([_adjusted(metric, totals.get(v.key)) for v in variants])
    theta, reduction = _variance_reduction(shown)
    caps = [t.value_cap for t in totals.values() if t.value_cap is not None]
    return {
        "cuped": {
            "enabled": metric.has_cuped,
            "applied": reduction is not None,
            "pre_period_days": selectors.PRE_PERIOD_DAYS,
            "theta": theta,
            "variance_reduction": reduction,
        },
        "capping": {
            "type": metric.capping,
            "value": metric.cap_value,
            "cap": max(caps) if caps and metric.capping != Metric.Capping.NONE else None,
        },
    }


def _comparisons(metric: dict):
    return [r["comparison"] for r in metric["variants"] if r["comparison"] is not None]


def _holm_adjust(metrics: list[dict]) -> None:
    """Holm across goal metrics (primary, secondary) x treatment variants; guardrails apart."""
    cells = [
        c
        for m in metrics
        if m["role"] != "guardrail"
        for c in _comparisons(m)
        if c["p_value"] is not None
    ]
    for cell, adjusted in zip(cells, stats.holm([c["p_value"] for c in cells]), strict=True):
        cell["p_value_adjusted"] = adjusted


def _good(metric: dict, lift: float) -> bool:
    return lift > 0 if metric["direction"] == Metric.Direction.INCREASE else lift < 0


class Rule:
    """The decision rule of an engine on one comparison."""

    def __init__(self, experiment: Experiment):
        self.bayesian = experiment.engine == Experiment.Engine.BAYESIAN
        self.alpha = experiment.alpha
        self.risk_threshold = experiment.risk_threshold

    def ships(self, metric: dict, c: dict) -> bool:
        """The variant is decisively better on this metric."""
        if c["lift"] is None:
            return False
        if self.bayesian:
            return c["chance_to_win"] >= 1 - self.alpha and c["risk"] < self.risk_threshold
        return c["p_value_adjusted"] < self.alpha and _good(metric, c["lift"])

    def loses(self, metric: dict, c: dict) -> bool:
        """The variant is decisively worse on this metric."""
        if c["lift"] is None:
            return False
        if self.bayesian:
            return c["chance_to_win"] <= self.alpha and c["risk_control"] < self.risk_threshold
        return c["p_value_adjusted"] < self.alpha and not _good(metric, c["lift"])

    def harms(self, metric: dict, c: dict) -> bool:
        """A guardrail is failing: significantly worse (frequentist), or worse with
        probability at least 1 - alpha (Bayesian)."""
        if c["lift"] is None:
            return False
        if self.bayesian:
            return c["chance_to_win"] <= self.alpha
        return c["p_value"] < self.alpha and not _good(metric, c["lift"])

    def describe(self) -> str:
        if self.bayesian:
            return (
                f"chance to win at least {_pct(1 - self.alpha)} and risk under "
                f"{self.risk_threshold * 100:g}%"
            )
        return f"Holm-adjusted p-value under {self.alpha:g}"


def decide(
    experiment: Experiment, metrics: list[dict], *, srm_ok: bool, any_users: bool
) -> Decision:
    rule = Rule(experiment)
    if not any_users:
        return Decision("empty", "no exposures yet")
    if not srm_ok:
        return Decision("srm", "sample ratio mismatch: the split does not match the weights")
    primary = next((m for m in metrics if m["role"] == "primary"), None)
    if primary is None:
        return Decision("flat", "no primary metric")
    failing = tuple(
        f"{m['key']} ({r['key']})"
        for m in metrics
        if m["role"] == "guardrail"
        for r in m["variants"]
        if r["comparison"] is not None and rule.harms(m, r["comparison"])
    )
    treated = [r for r in primary["variants"] if r["comparison"] is not None]
    winners = [r for r in treated if rule.ships(primary, r["comparison"])]
    if winners:
        best = max(winners, key=lambda r: abs(r["comparison"]["lift"]))
        reason = f"variant {best['key']} meets the rule on {primary['key']} ({rule.describe()})"
        return Decision("winner", reason, best["key"], failing)
    losers = [r for r in treated if rule.loses(primary, r["comparison"])]
    if losers and len(losers) == len(treated):
        worst = max(losers, key=lambda r: abs(r["comparison"]["lift"]))
        reason = f"every variant is decisively worse than control on {primary['key']}"
        return Decision("loser", reason, worst["key"], failing)
    reason = f"no variant meets the rule on {primary['key']} yet ({rule.describe()})"
    return Decision("flat", reason, None, failing)


def _interval(experiment: Experiment) -> str:
    kind = "credible" if experiment.engine == Experiment.Engine.BAYESIAN else "confidence"
    return f"{(1 - experiment.alpha) * 100:.0f}% {kind} interval"


def _cell(experiment: Experiment, row: dict) -> str:
    c = row["comparison"]
    lo, hi = c["ci"]
    text = (
        f"{row['name']} {c['lift'] * 100:+.1f}% ({_interval(experiment)} {_pct(lo)} to {_pct(hi)}"
    )
    if experiment.engine == Experiment.Engine.BAYESIAN:
        return text + f", {_pct(c['chance_to_win'])} chance to win, risk {c['risk'] * 100:.2f}%)"
    return text + f", p = {c['p_value_adjusted']:.3g})"


def verdict_text(
    experiment: Experiment, decision: Decision, metrics: list[dict], *, srm: dict
) -> str:
    if decision.kind == "empty":
        return "No exposures yet: results appear once clients call the assignment API."
    if decision.kind == "srm":
        return (
            f"Sample ratio mismatch (p = {srm['p_value']:.2g}): the users per variant do not "
            "match the planned weights, so these results cannot be trusted and no conclusion "
            "will be drawn. Check the assignment calls and exposure logging."
        )
    primary = next((m for m in metrics if m["role"] == "primary"), None)
    if primary is None:
        return "No primary metric is set, so there is nothing to judge."
    name = primary["name"]
    guard = ""
    if decision.failing_guardrails:
        guard = (
            " A guardrail is failing ("
            + ", ".join(decision.failing_guardrails)
            + "): no conclusion while it does."
        )
    if decision.kind in ("winner", "loser"):
        row = next(r for r in primary["variants"] if r["key"] == decision.variant)
        change = "increases" if row["comparison"]["lift"] > 0 else "decreases"
        text = f"Variant {row['name']} {change} {name}: {_cell(experiment, row)}."
        if decision.kind == "loser":
            text += " That is worse than control: keep the control."
        return text + guard
    treated = [
        r for r in primary["variants"] if r["comparison"] and r["comparison"]["lift"] is not None
    ]
    if not treated:
        return f"Not enough data yet to compare {name}."
    parts = ", ".join(_cell(experiment, r) for r in treated)
    return f"No decisive difference on {name} yet: {parts}." + guard


# An experiment's readout is recomputed at most this often (its own edits change the key).
RESULTS_CACHE_SECONDS = 60


def _cached_readout(name: str, obj, compute, key: dict | None = None) -> dict:
    """A readout through the store's result cache (the API and the page); an edit of the
    object changes the key."""
    return cached(
        name,
        {"pk": obj.pk, "updated_at": obj.updated_at.timestamp(), **(key or {})},
        lambda: compute(obj),
        ttl=RESULTS_CACHE_SECONDS,
    )


def experiment_results_cached(
    *, experiment: Experiment, dimensions: Sequence[Dimension] = ()
) -> dict:
    """`experiment_results`, through the store's result cache (the API and the page)."""
    return _cached_readout(
        "experiment_results",
        experiment,
        lambda e: experiment_results(e, dimensions),
        {"dimensions": [d.name for d in dimensions]},
    )


def _srm(exposures: list[selectors.VariantDay], variants) -> dict:
    """Users per variant (by first exposure) against the planned weights."""
    users: dict[str, int] = {v.key: 0 for v in variants}
    for row in exposures:
        if row.variant in users:
            users[row.variant] += row.users
    weights = normalized_weights([v.weight for v in variants])
    srm_p = stats.srm_p_value([users[v.key] for v in variants], weights) if variants else 1.0
    return {
        "p_value": srm_p,
        "ok": srm_p >= stats.SRM_THRESHOLD,
        "users": users,
        "expected_share": {v.key: w for v, w in zip(variants, weights, strict=True)},
        "unknown_variant_users": sum(r.users for r in exposures if r.variant not in users),
    }


def _quantile_setting(metric: Metric) -> dict | None:
    if metric.kind != Metric.Kind.QUANTILE:
        return None
    level = metric.quantile * 100
    label = "median" if level == 50 else f"p{level:g}"
    return {"level": metric.quantile, "scope": metric.quantile_scope, "label": label}


def _metrics(experiment, metric_data: list[selectors.MetricData], variants) -> list[dict]:
    """Every metric's readout by the engine of `experiment` (an experiment or a holdout),
    Holm-adjusted across the goal metrics when frequentist."""
    metrics = [
        {
            "key": d.metric.key,
            "name": d.metric.name,
            "kind": d.metric.kind,
            "role": d.role,
            "direction": d.metric.direction,
            "window_days": d.metric.window_days,
            "quantile": _quantile_setting(d.metric),
            **metric_adjustments(d, variants),
            "variants": metric_rows(experiment, d, variants) if variants else [],
        }
        for d in metric_data
    ]
    if experiment.engine == Experiment.Engine.FREQUENTIST:
        _holm_adjust(metrics)
    return metrics


def experiment_results(experiment: Experiment, dimensions: Sequence[Dimension] = ()) -> dict:
    """The readout of an experiment, computed now from the store; with `dimensions`, a block
    per dimension splitting every metric by its values (`dimensions` of the answer)."""
    variants = list(experiment.variants.all())
    exposures, metric_data = selectors.experiment_data(experiment, dimensions)
    srm = _srm(exposures, variants)
    users = srm["users"]
    total_users = sum(users.values())
    metrics = _metrics(experiment, metric_data, variants)
    decision = decide(experiment, metrics, srm_ok=srm["ok"], any_users=total_users > 0)
    required = experiment.power_analysis.get("required_users_per_variant")
    bayesian = experiment.engine == Experiment.Engine.BAYESIAN
    return {
        "experiment": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "engine": experiment.engine,
        "sequential": not bayesian and experiment.sequential_testing,
        "alpha": experiment.alpha,
        "prior": {
            "mean": experiment.prior_mean,
            "stddev": experiment.prior_stddev,
            "proper": experiment.proper_prior,
        }
        if bayesian
        else None,
        "risk_threshold": experiment.risk_threshold if bayesian else None,
        "srm": srm,
        "metrics": metrics,
        "required_users_per_variant": required,
        "users_per_variant_so_far": min(users.values()) if users else 0,
        "decision": decision.as_dict(),
        "verdict": verdict_text(experiment, decision, metrics, srm=srm),
        "computed_at": timezone.now().isoformat(),
        "timeseries": _timeseries(experiment, exposures, metric_data, variants),
        "dimensions": [dimension_block(experiment, d, metric_data, variants) for d in dimensions],
    }


def correction_description(experiment: Experiment) -> dict:
    """The multiple-comparison correction of the dimension blocks, by engine."""
    if experiment.engine == Experiment.Engine.BAYESIAN:
        return {
            "method": "none",
            "adjusted": [],
            "text": "Bayesian engine: chance to win, risk and credible intervals of each value are "
            "not adjusted for the number of values and variants compared; with many values "
            "some will look decisive by chance, so read a split as a lead to test, not a "
            "result.",
        }
    return {
        "method": "benjamini-hochberg",
        "adjusted": ["p_value_adjusted"],
        "text": "Frequentist engine: p_value_adjusted is Benjamini-Hochberg-adjusted (false "
        "discovery rate) across every value, metric and variant of this dimension; intervals "
        "are per comparison and not adjusted.",
    }


def dimension_block(
    experiment: Experiment, dimension: Dimension, metric_data: list, variants: list
) -> dict:
    """One dimension: per value (top values by exposed users, then the rest as `other`) the
    users per variant and every metric's rows, as the readout's; p-values adjusted together."""
    registered = dimension.name in (experiment.preregistered_dimensions or [])
    by_value: dict[tuple[str, bool], dict] = {}
    for data in metric_data:
        for piece in data.slices.get(dimension.name, []):
            entry = by_value.setdefault(
                (piece.value, piece.other),
                {
                    "value": None if piece.other else piece.value,
                    "label": _value_label(piece),
                    "other": piece.other,
                    "users": {v.key: 0 for v in variants},
                    "metrics": [],
                },
            )
            sliced = selectors.MetricData(data.metric, data.role, piece.rows)
            if not entry["metrics"]:
                for row in piece.rows:
                    if row.variant in entry["users"]:
                        entry["users"][row.variant] += row.users
            entry["metrics"].append(
                {
                    "key": data.metric.key,
                    "name": data.metric.name,
                    "kind": data.metric.kind,
                    "role": data.role,
                    "variants": metric_rows(experiment, sliced, variants) if variants else [],
                }
            )
    values = list(by_value.values())
    if experiment.engine == Experiment.Engine.FREQUENTIST:
        cells = [
            c
            for value in values
            for m in value["metrics"]
            for c in _comparisons(m)
            if c["p_value"] is not None
        ]
        adjusted = stats.benjamini_hochberg([c["p_value"] for c in cells])
        for cell, p in zip(cells, adjusted, strict=True):
            cell["p_value_adjusted"] = p
    return {
        **dimension.as_dict(),
        "pre_registered": registered,
        "warning": None
        if registered
        else (
            f"'{dimension.name}' was not pre-registered for this experiment before it started: "
            "a split chosen after looking at the results finds differences by chance. Treat "
            "any difference here as a hypothesis for a new experiment."
        ),
        "top_values": TOP_VALUES,
        "correction": correction_description(experiment),
        "values": values,
    }


def _value_label(piece: selectors.Slice) -> str:
    if piece.other:
        return "other values"
    return piece.value if piece.value != "" else "(not set)"


def _timeseries(experiment, exposures, metric_data, variants) -> dict:
    """Cumulative exposures and, for the primary metric, the cumulative rate with its normal
    interval, per variant and exposure day."""
    days = sorted({r.day for r in exposures})
    series: dict = {"days": days, "exposures": {}, "primary": {}}
    for v in variants:
        per_day = {r.day: r.users for r in exposures if r.variant == v.key}
        running, cumulative = 0, []
        for day in days:
            running += per_day.get(day, 0)
            cumulative.append(running)
        series["exposures"][v.key] = cumulative
    primary = next((d for d in metric_data if d.role == "primary"), None)
    if primary is None or primary.metric.kind == Metric.Kind.QUANTILE:
        return series  # a quantile has no daily sums to accumulate
    z = float(stats.sps.norm.ppf(1 - experiment.alpha / 2))
    for v in variants:
        acc = selectors.VariantDay("", v.key, 0)
        rates, lows, highs = [], [], []
        rows = {r.day: r for r in primary.days if r.variant == v.key}
        for day in days:
            row = rows.get(day)
            if row is not None:
                acc.add(row)
            group = _statistic(primary.metric, acc)
            se = math.sqrt(group.variance / group.n) if group.n else 0.0
            rates.append(group.mean if group.n else None)
            lows.append(group.mean - z * se if group.n else None)
            highs.append(group.mean + z * se if group.n else None)
        series["primary"][v.key] = {"rate": rates, "low": lows, "high": highs}
    return series


def experiment_power_analysis(experiment: Experiment) -> dict:
    """Users per variant needed to detect the experiment's minimum detectable effect on its
    primary metric, from the metric's baseline over the last 30 days, and the days that takes
    at the current traffic (unique active users per day x coverage x namespace share x the
    share not held out)."""
    metric = experiment.primary_metric
    variants = experiment.variants.count()
    if metric is None or variants < 2:
        return {"ok": False, "reason": "set a primary metric and at least two variants"}
    if metric.kind == Metric.Kind.RATIO:
        return {"ok": False, "reason": "no power analysis for a ratio primary metric yet"}
    baseline = selectors.metric_baseline(metric)
    required = stats.required_users_per_variant(
        kind=metric.kind,
        baseline_mean=baseline.mean,
        baseline_variance=baseline.variance,
        mde=experiment.minimum_detectable_effect,
        alpha=experiment.alpha,
        power=experiment.power,
    )
    share = experiment.coverage * (
        (experiment.namespace_end - experiment.namespace_start) if experiment.namespace else 1.0
    )
    # Users held out by the running holdouts covering it never reach it.
    for holdout in experiment.holdouts.filter(status=Holdout.Status.RUNNING):
        share *= 1 - holdout.percentage
    per_variant_per_day = baseline.users_per_day * share / variants
    days = math.ceil(required / per_variant_per_day) if required and per_variant_per_day else None
    return {
        "ok": required is not None,
        "reason": "" if required else "no baseline data for the primary metric in 30 days",
        "metric": metric.key,
        "kind": metric.kind,
        "baseline_mean": baseline.mean,
        "baseline_variance": baseline.variance,
        "active_users_30d": baseline.active_users,
        "minimum_detectable_effect": experiment.minimum_detectable_effect,
        "alpha": experiment.alpha,
        "power": experiment.power,
        "required_users_per_variant": required,
        "users_per_variant_per_day": per_variant_per_day,
        "estimated_days": days,
    }


# Holdouts: the same statistics, with the holdout as control and the general population
# sample (the same number of users, in the experiments as everyone else) as treatment.


@dataclass(frozen=True)
class HoldoutGroup:
    """One side of a holdout readout, in the shape `metric_rows` reads variants in."""

    key: str
    name: str
    is_control: bool
    weight: float = 0.5


HOLDOUT_SIDES = (
    HoldoutGroup(HOLDOUT_CONTROL, "Holdout", True),
    HoldoutGroup(HOLDOUT_TREATMENT, "General population", False),
)


def holdout_window(holdout: Holdout) -> tuple[dt.datetime, dt.datetime]:
    start = holdout.started_at or holdout.created_at
    ends = [t for t in (holdout.ended_at, holdout.ends_at) if t is not None]
    return start, min([*ends, timezone.now() + dt.timedelta(minutes=5)])


def holdout_metrics(holdout: Holdout) -> list[tuple[Metric, str]]:
    """(metric, role): the holdout's own goal metrics, or the covered experiments' primary and
    secondary ones; a covered experiment's primary metric is primary here too."""
    covered = list(holdout.experiments.select_related("primary_metric"))
    primaries = {e.primary_metric_id for e in covered if e.primary_metric_id}
    chosen = list(holdout.metrics.all())
    if not chosen:
        found = {e.primary_metric.pk: e.primary_metric for e in covered if e.primary_metric}
        for experiment in covered:
            found.update((m.pk, m) for m in experiment.secondary_metrics.all())
        chosen = list(found.values())
    chosen.sort(key=lambda m: (m.pk not in primaries, m.key))
    return [(m, "primary" if m.pk in primaries else "secondary") for m in chosen]


def _holdout_verdict(holdout: Holdout, metrics: list[dict], *, srm: dict, users: int) -> str:
    if users == 0:
        return (
            "No holdout exposures yet: users are counted once a covered experiment is "
            "evaluated for them (the assignment API or an SDK with the payload)."
        )
    if not srm["ok"]:
        return (
            f"Sample ratio mismatch (p = {srm['p_value']:.2g}): the holdout and the general "
            "population sample should be equal in size; check that every client logs the "
            "holdout's exposures. These numbers cannot be trusted."
        )
    rule = Rule(holdout)
    parts = []
    for metric in metrics:
        row = metric["variants"][1] if len(metric["variants"]) > 1 else None
        if row is None or row["comparison"] is None or row["comparison"]["lift"] is None:
            continue
        c = row["comparison"]
        word = (
            "better"
            if rule.ships(metric, c)
            else "worse"
            if rule.loses(metric, c)
            else "not decisively different"
        )
        parts.append(f"{metric['name']}: {word}, {_cell(holdout, row)}")
    if not parts:
        return "Not enough data yet to compare the holdout with the general population."
    return (
        "With the covered experiments and the winners they shipped, the general population vs "
        "the holdout: " + "; ".join(parts) + f". Decisive means: {rule.describe()}."
    )


def holdout_results_cached(*, holdout: Holdout) -> dict:
    return _cached_readout("holdout_results", holdout, holdout_results)


def holdout_results(holdout: Holdout) -> dict:
    """The long-run readout of a holdout, computed now from the store."""
    start, end = holdout_window(holdout)
    sides = list(HOLDOUT_SIDES)
    exposures, metric_data = selectors.exposure_data(
        key=holdout.tracking_key, start=start, end=end, metrics=holdout_metrics(holdout)
    )
    srm = _srm(exposures, sides)
    users = srm["users"]
    metrics = _metrics(holdout, metric_data, sides)
    covered = list(holdout.experiments.select_related("winner").order_by("key"))
    crossing = selectors.holdout_crossing(
        key=holdout.tracking_key, start=start, end=end, experiments=[e.key for e in covered]
    )
    bayesian = holdout.engine == Experiment.Engine.BAYESIAN
    started = holdout.started_at
    return {
        "holdout": holdout.key,
        "tracking_key": holdout.tracking_key,
        "name": holdout.name,
        "status": holdout.status,
        "percentage": holdout.percentage,
        "engine": holdout.engine,
        "sequential": not bayesian and holdout.sequential_testing,
        "alpha": holdout.alpha,
        "experiments": [
            {
                "key": e.key,
                "name": e.name,
                "status": e.status,
                "winner": e.winner.key if e.winner else None,
            }
            for e in covered
        ],
        "started_at": started.isoformat() if started else None,
        "ends_at": holdout.ends_at.isoformat() if holdout.ends_at else None,
        "ended_at": holdout.ended_at.isoformat() if holdout.ended_at else None,
        "days_running": (min(end, timezone.now()) - started).total_seconds() / 86400
        if started
        else 0.0,
        "srm": srm,
        "metrics": metrics,
        "crossing": crossing,
        "leaked_users": sum(r["users"] for r in crossing if r["grp"] == HOLDOUT_CONTROL),
        "verdict": _holdout_verdict(holdout, metrics, srm=srm, users=sum(users.values())),
        "computed_at": timezone.now().isoformat(),
        "timeseries": _timeseries(holdout, exposures, metric_data, sides),
    }
