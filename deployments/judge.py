"""The judgement of one canary sample: thresholds, comparison with stable, and no-data.

Missing data never passes: a metric that has a threshold but no value makes the verdict
`no_data`, which pauses the rollout instead of promoting it.
"""

from deployments.metrics.base import Reading

PASS, FAIL, NO_DATA = "pass", "fail", "no_data"

# metric -> analysis key holding its absolute limit
LIMITS = {
    "error_rate": "max_error_rate",
    "p99_ms": "max_p99_ms",
    "cpu_percent": "max_cpu_percent",
    "memory_percent": "max_memory_percent",
}


def _check(metric: str, value, limit, *, stable=None, stable_limit=None) -> dict:
    check = {"metric": metric, "value": value, "threshold": limit, "stable": stable}
    if value is None:
        return {**check, "verdict": NO_DATA, "why": f"no {metric} data for canary"}
    if value > limit:
        return {**check, "verdict": FAIL, "why": f"canary {metric} {value:.4g} > limit {limit:.4g}"}
    if stable_limit is not None and value > stable_limit:
        return {
            **check,
            "verdict": FAIL,
            "why": f"canary {metric} {value:.4g} > stable {stable:.4g} + tolerance ({stable_limit:.4g})",
        }
    return {**check, "verdict": PASS, "why": ""}


def judge(analysis: dict, canary: Reading, stable: Reading, *, stable_serving: bool = True) -> dict:
    """At 100 % canary traffic stable serves nothing, so only the absolute limits apply."""
    compare = analysis.get("compare_to_stable", True) and stable_serving
    checks = []
    for metric, key in LIMITS.items():
        limit = analysis.get(key)
        if limit is None:
            continue
        value = getattr(canary, metric)
        stable_value = getattr(stable, metric)
        stable_limit = None
        if compare and metric == "error_rate" and value is not None:
            if stable_value is None:
                checks.append(
                    {
                        "metric": metric,
                        "value": value,
                        "threshold": limit,
                        "stable": None,
                        "verdict": NO_DATA,
                        "why": "no error_rate data for stable to compare with",
                    }
                )
                continue
            stable_limit = stable_value + analysis.get("error_rate_tolerance", 1.0)
        elif compare and metric == "p99_ms" and stable_value is not None:
            stable_limit = stable_value * (1 + analysis.get("p99_tolerance_percent", 25.0) / 100)
        checks.append(_check(metric, value, limit, stable=stable_value, stable_limit=stable_limit))
    verdicts = {c["verdict"] for c in checks}
    verdict = FAIL if FAIL in verdicts else NO_DATA if NO_DATA in verdicts or not checks else PASS
    reasons = [c["why"] for c in checks if c["verdict"] != PASS]
    return {"verdict": verdict, "checks": checks, "reasons": reasons + canary.problems}


# The statistical judge (deployments/scoring.py) per metric: the bad direction and the
# effect-size tolerance (ratio of canary to stable means) a significant difference must pass.
STATISTICAL_METRICS = {
    "error_rate": {"direction": "increase", "allowed_increase": 1.5, "critical": True},
    "p99_ms": {"direction": "increase", "allowed_increase": 1.25},
    "cpu_percent": {"direction": "increase", "allowed_increase": 1.5},
    "memory_percent": {"direction": "increase", "allowed_increase": 1.5},
}


def judge_step(analysis: dict, canary: dict[str, list], stable: dict[str, list]):
    """Kayenta's comparison of one step's canary samples with stable's, as a `Score`."""
    from deployments.scoring import DEFAULT_MARGINAL_SCORE, DEFAULT_PASS_SCORE, classify, score

    overrides = analysis.get("statistical_metrics") or {}
    metrics = {
        name: {**options, **(overrides.get(name) or {})}
        for name, options in STATISTICAL_METRICS.items()
    }
    results = [
        classify(name, canary.get(name, []), stable.get(name, []), **options)
        for name, options in metrics.items()
    ]
    return score(
        results,
        pass_score=analysis.get("pass_score", DEFAULT_PASS_SCORE),
        marginal_score=analysis.get("marginal_score", DEFAULT_MARGINAL_SCORE),
    )
