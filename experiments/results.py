"""An experiment's readout: per metric and variant statistics, SRM, Holm, and a verdict.

Built from `selectors.experiment_data` and `stats`; the results API, the page and the hourly
monitor all read the same dictionary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils import timezone

from analytics.store.cache import cached
from experiments import selectors, stats
from experiments.models import Experiment, Metric, normalized_weights


@dataclass(frozen=True)
class Decision:
    """What the numbers allow: `winner`/`loser` (significant on the primary metric), `flat`
    (no significant difference), `srm` (untrustworthy), `empty` (no exposures)."""

    kind: str
    variant: str | None = None
    guardrail_harmed: bool = False


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _group(metric: Metric, row: selectors.VariantDay | None) -> stats.Group:
    if row is None or row.users == 0:
        return stats.Group(0, 0.0, 0.0)
    if metric.kind == Metric.Kind.CONVERSION:
        return stats.Group.proportion(row.converted, row.users)
    return stats.Group.from_sums(row.users, row.total, row.total_squares)


def _tuning(experiment: Experiment) -> float:
    return experiment.sequential_tuning or stats.DEFAULT_TUNING


def metric_rows(experiment: Experiment, data: selectors.MetricData, variants) -> list[dict]:
    metric = data.metric
    totals = data.totals()
    control = next(v for v in variants if v.is_control)
    control_group = _group(metric, totals.get(control.key))
    rows = []
    for variant in variants:
        group = _group(metric, totals.get(variant.key))
        row = {"variant": variant.key, "name": variant.name or variant.key, "users": group.n}
        if metric.kind == Metric.Kind.CONVERSION:
            row["conversions"] = totals[variant.key].converted if variant.key in totals else 0
        else:
            row["mean"] = group.mean
            row["variance"] = group.variance
        row["rate"] = group.mean
        if variant.is_control:
            comparison = stats.EMPTY
        else:
            comparison = stats.compare(
                control_group,
                group,
                kind=metric.kind,
                alpha=experiment.alpha,
                sequential=experiment.sequential_testing,
                tuning=_tuning(experiment),
                decrease_is_good=metric.direction == Metric.Direction.DECREASE,
            )
        row.update(
            lift=comparison.lift,
            absolute_lift=comparison.absolute_lift,
            ci=list(comparison.ci) if comparison.ci else None,
            p_value=comparison.p_value,
            p_value_adjusted=comparison.p_value,
            chance_to_beat_control=comparison.chance_to_beat_control,
            is_control=variant.is_control,
        )
        rows.append(row)
    return rows


def _holm_adjust(metrics: list[dict]) -> None:
    """Holm across goal metrics (primary, secondary) x treatment variants; guardrails apart."""
    cells = [
        row
        for m in metrics
        if m["role"] != "guardrail"
        for row in m["variants"]
        if row["p_value"] is not None
    ]
    for row, adjusted in zip(cells, stats.holm([r["p_value"] for r in cells]), strict=True):
        row["p_value_adjusted"] = adjusted


def _good(metric: dict, lift: float) -> bool:
    return lift > 0 if metric["direction"] == Metric.Direction.INCREASE else lift < 0


def _significant(row: dict, alpha: float) -> bool:
    return row["p_value_adjusted"] is not None and row["p_value_adjusted"] < alpha


def decide(metrics: list[dict], *, srm_ok: bool, alpha: float, any_users: bool) -> Decision:
    if not any_users:
        return Decision("empty")
    if not srm_ok:
        return Decision("srm")
    primary = next((m for m in metrics if m["role"] == "primary"), None)
    if primary is None:
        return Decision("flat")
    harmed = {
        row["variant"]
        for m in metrics
        if m["role"] == "guardrail"
        for row in m["variants"]
        if row["lift"] is not None and _significant(row, alpha) and not _good(m, row["lift"])
    }
    significant = [
        r for r in primary["variants"] if r["lift"] is not None and _significant(r, alpha)
    ]
    winners = [r for r in significant if _good(primary, r["lift"])]
    if winners:
        best = max(winners, key=lambda r: abs(r["lift"]))
        return Decision("winner", best["variant"], guardrail_harmed=best["variant"] in harmed)
    if significant:
        worst = max(significant, key=lambda r: abs(r["lift"]))
        return Decision("loser", worst["variant"], guardrail_harmed=bool(harmed))
    return Decision("flat", guardrail_harmed=bool(harmed))


def verdict_text(decision: Decision, metrics: list[dict], *, srm: dict, alpha: float) -> str:
    level = f"{(1 - alpha) * 100:.0f}% CI"
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
    if decision.kind in ("winner", "loser"):
        row = next(r for r in primary["variants"] if r["variant"] == decision.variant)
        change = "increases" if row["lift"] > 0 else "decreases"
        lo, hi = row["ci"]
        text = (
            f"Variant {row['name']} {change} {name} by {_pct(abs(row['lift']))} "
            f"({level} {_pct(lo)} to {_pct(hi)})."
        )
        if decision.kind == "loser":
            text += " That is worse than control: keep the control."
        if decision.guardrail_harmed:
            text += " A guardrail metric is significantly harmed."
        return text
    treated = [r for r in primary["variants"] if r["lift"] is not None]
    if not treated:
        return f"Not enough data yet to compare {name}."
    parts = ", ".join(
        f"{r['name']} {r['lift'] * 100:+.1f}% ({level} {_pct(r['ci'][0])} to {_pct(r['ci'][1])})"
        for r in treated
    )
    text = f"No significant difference on {name} yet: {parts}."
    if decision.guardrail_harmed:
        text += " A guardrail metric is significantly harmed."
    return text


# An experiment's readout is recomputed at most this often (its own edits change the key).
RESULTS_CACHE_SECONDS = 60


def experiment_results_cached(*, experiment: Experiment) -> dict:
    """`experiment_results`, through the store's result cache (the API and the page)."""
    return cached(
        "experiment_results",
        {"experiment": experiment.pk, "updated_at": experiment.updated_at.timestamp()},
        lambda: experiment_results(experiment),
        ttl=RESULTS_CACHE_SECONDS,
    )


def experiment_results(experiment: Experiment) -> dict:
    """The readout of an experiment, computed now from the store."""
    variants = list(experiment.variants.all())
    exposures, metric_data = selectors.experiment_data(experiment)
    users: dict[str, int] = {v.key: 0 for v in variants}
    for row in exposures:
        if row.variant in users:
            users[row.variant] += row.users
    weights = normalized_weights([v.weight for v in variants])
    total_users = sum(users.values())
    srm_p = stats.srm_p_value([users[v.key] for v in variants], weights) if variants else 1.0
    srm = {
        "p_value": srm_p,
        "ok": srm_p >= stats.SRM_THRESHOLD,
        "users": users,
        "expected_share": {v.key: w for v, w in zip(variants, weights, strict=True)},
        "unknown_variant_users": sum(r.users for r in exposures if r.variant not in users),
    }
    metrics = [
        {
            "metric": d.metric.key,
            "name": d.metric.name,
            "kind": d.metric.kind,
            "role": d.role,
            "direction": d.metric.direction,
            "window_days": d.metric.window_days,
            "variants": metric_rows(experiment, d, variants) if variants else [],
        }
        for d in metric_data
    ]
    _holm_adjust(metrics)
    decision = decide(metrics, srm_ok=srm["ok"], alpha=experiment.alpha, any_users=total_users > 0)
    required = experiment.power_analysis.get("required_users_per_variant")
    return {
        "experiment": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "sequential_testing": experiment.sequential_testing,
        "alpha": experiment.alpha,
        "srm": srm,
        "metrics": metrics,
        "required_users_per_variant": required,
        "users_per_variant_so_far": min(users.values()) if users else 0,
        "decision": {
            "kind": decision.kind,
            "variant": decision.variant,
            "guardrail_harmed": decision.guardrail_harmed,
        },
        "verdict": verdict_text(decision, metrics, srm=srm, alpha=experiment.alpha),
        "computed_at": timezone.now().isoformat(),
        "timeseries": _timeseries(experiment, exposures, metric_data, variants),
    }


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
    if primary is None:
        return series
    z = float(stats.sps.norm.ppf(1 - experiment.alpha / 2))
    for v in variants:
        acc = selectors.VariantDay("", v.key, 0)
        rates, lows, highs = [], [], []
        rows = {r.day: r for r in primary.days if r.variant == v.key}
        for day in days:
            row = rows.get(day)
            if row is not None:
                acc.users += row.users
                acc.converted += row.converted
                acc.total += row.total
                acc.total_squares += row.total_squares
            group = _group(primary.metric, acc)
            se = math.sqrt(group.variance / group.n) if group.n else 0.0
            rates.append(group.mean if group.n else None)
            lows.append(group.mean - z * se if group.n else None)
            highs.append(group.mean + z * se if group.n else None)
        series["primary"][v.key] = {"rate": rates, "low": lows, "high": highs}
    return series


def experiment_power_analysis(experiment: Experiment) -> dict:
    """Users per variant needed to detect the experiment's minimum detectable effect on its
    primary metric, from the metric's baseline over the last 30 days, and the days that takes
    at the current traffic (unique active users per day x coverage x namespace share)."""
    metric = experiment.primary_metric
    variants = experiment.variants.count()
    if metric is None or variants < 2:
        return {"ok": False, "reason": "set a primary metric and at least two variants"}
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
