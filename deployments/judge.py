"""The judgement of one canary measurement, template by template (metrics/templates.py).

Each template's check is `pass`, `fail` or `inconclusive`. Missing data never passes: a
template without a canary value (or without a stable value to compare with, when it has a
tolerance against stable) is inconclusive. Dry-run templates are checked and shown but never
decide; the engine counts failures and inconclusives per template against its limits.
"""

from deployments.metrics.base import Reading
from deployments.metrics.templates import (
    FAIL,
    HIGHER,
    INCONCLUSIVE,
    PASS,
    PERCENT,
    Measurement,
    templates_for_analysis,
)

NO_DATA = INCONCLUSIVE  # the overall verdict when something needed is missing


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def check(template: dict, measurement: Measurement, *, stable_serving: bool = True) -> dict:
    """One template's check: its values, range and verdict, with the reason when not a pass."""
    name, value, stable = template["name"], measurement.canary, measurement.stable
    low, high = template.get("min_value"), template.get("max_value")
    result = {
        "metric": name,
        "kind": template.get("kind", "prometheus"),
        "unit": template.get("unit", ""),
        "value": value,
        "stable": stable,
        "min": low,
        "max": high,
        "threshold": high if high is not None else low,
        "direction": template.get("direction", "lower"),
        "dry_run": bool(template.get("dry_run")),
        "detail": measurement.detail,
    }
    if measurement.verdict is not None:  # the kind judged by itself
        return {**result, "verdict": measurement.verdict, "why": measurement.why}
    if value is None:
        why = f"no {name} data for canary"
        if measurement.problems:
            why += f" ({'; '.join(measurement.problems)})"
        return {**result, "verdict": INCONCLUSIVE, "why": why}
    if high is not None and value > high:
        return {
            **result,
            "verdict": FAIL,
            "why": f"canary {name} {_fmt(value)} > limit {_fmt(high)}",
        }
    if low is not None and value < low:
        return {
            **result,
            "verdict": FAIL,
            "why": f"canary {name} {_fmt(value)} < limit {_fmt(low)}",
        }
    tolerance = template.get("stable_tolerance")
    if tolerance is not None and stable_serving:
        if stable is None:
            return {
                **result,
                "verdict": INCONCLUSIVE,
                "why": f"no {name} data for stable to compare with",
            }
        higher_better = template.get("direction") == HIGHER
        margin = (
            abs(stable) * tolerance / 100
            if template.get("stable_tolerance_unit") == PERCENT
            else tolerance
        )
        if higher_better and value < stable - margin:
            why = f"canary {name} {_fmt(value)} < stable {_fmt(stable)} - tolerance ({_fmt(stable - margin)})"
            return {**result, "verdict": FAIL, "why": why}
        if not higher_better and value > stable + margin:
            why = f"canary {name} {_fmt(value)} > stable {_fmt(stable)} + tolerance ({_fmt(stable + margin)})"
            return {**result, "verdict": FAIL, "why": why}
    return {**result, "verdict": PASS, "why": ""}


def overall(checks: list[dict]) -> str:
    """fail if a deciding template fails, else inconclusive if one is, else pass."""
    verdicts = {c["verdict"] for c in checks if not c["dry_run"]}
    return FAIL if FAIL in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS


def judge(analysis: dict, canary: Reading, stable: Reading, *, stable_serving: bool = True) -> dict:
    """The built-in templates with `analysis`' settings on two readings (at 100 % canary
    traffic stable serves nothing, so only the ranges apply)."""
    checks = [
        check(
            t,
            Measurement(getattr(canary, t["name"]), getattr(stable, t["name"])),
            stable_serving=stable_serving,
        )
        for t in templates_for_analysis(analysis)
        if t["enabled"]
    ]
    reasons = [c["why"] for c in checks if c["verdict"] != PASS and not c["dry_run"]]
    return {"verdict": overall(checks), "checks": checks, "reasons": reasons + canary.problems}


def statistical_options(template: dict) -> dict:
    """How the statistical judge (scoring.py) treats a template: the bad direction and the
    effect size tolerated that way, its weight, whether it is critical or dry-run."""
    tolerance = float(template.get("effect_size_tolerance") or 1.0)
    higher_better = template.get("direction") == HIGHER
    return {
        "direction": "decrease" if higher_better else "increase",
        "allowed_increase": tolerance if not higher_better else 1.0,
        "allowed_decrease": 1 / tolerance if higher_better else 1.0,
        "weight": float(template.get("weight", 1.0)),
        "critical": bool(template.get("critical")),
        "dry_run": bool(template.get("dry_run")),
    }


def judge_step(analysis: dict, canary: dict[str, list], stable: dict[str, list], templates=None):
    """Kayenta's comparison of one step's canary samples with stable's, as a `Score`: every
    enabled template of weight above 0, with its own tolerance and weight (the analysis'
    `statistical_metrics` may still override a template's options)."""
    from deployments.scoring import DEFAULT_MARGINAL_SCORE, DEFAULT_PASS_SCORE, classify, score

    if templates is None:
        templates = templates_for_analysis(analysis)
    overrides = analysis.get("statistical_metrics") or {}
    results = []
    for template in templates:
        if not template.get("enabled", True) or template.get("kind") != "prometheus":
            continue  # other kinds judge their own comparison
        options = {**statistical_options(template), **(overrides.get(template["name"]) or {})}
        if options["weight"] <= 0:
            continue
        name = template["name"]
        results.append(classify(name, canary.get(name, []), stable.get(name, []), **options))
    return score(
        results,
        pass_score=analysis.get("pass_score", DEFAULT_PASS_SCORE),
        marginal_score=analysis.get("marginal_score", DEFAULT_MARGINAL_SCORE),
    )
