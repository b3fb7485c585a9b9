"""Two groups of users on one metric with the readout's statistics (registered in
core.comparisons for deployments, which judges a canary by the users it served)."""

from __future__ import annotations

from core.comparisons import Arm, Comparison
from experiments.stats import (
    DEFAULT_TUNING,
    SRM_THRESHOLD,
    Proportion,
    Ratio,
    SampleMean,
    frequentist,
    srm_p_value,
)


def _statistic(kind: str, arm: Arm):
    if kind == "proportion":
        return Proportion(arm.users, arm.numerator)
    if kind == "ratio":
        return Ratio(
            arm.users,
            SampleMean(arm.users, arm.numerator, arm.numerator_squares),
            SampleMean(arm.users, arm.denominator, arm.denominator_squares),
            arm.products,
        )
    raise ValueError(f"kind: {kind!r} is not 'ratio' or 'proportion'")


def compare_arms(
    *,
    kind: str,
    control: Arm,
    treatment: Arm,
    treatment_share: float,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> Comparison:
    """Relative lift of treatment over control with the sequential (always-valid) test, so a
    judgement repeated every interval keeps its error rate; the SRM check of the users per
    group against `treatment_share` (0-1)."""
    if not 0 < treatment_share < 1:
        raise ValueError("treatment_share: must be between 0 and 1, exclusive")
    c, t = _statistic(kind, control), _statistic(kind, treatment)
    srm_p = srm_p_value([control.users, treatment.users], [1 - treatment_share, treatment_share])
    result = frequentist(c, t, alpha=alpha, sequential=True, tuning=tuning)
    return Comparison(
        control_value=c.mean,
        treatment_value=t.mean,
        lift=None if result is None else result.lift,
        ci=None if result is None else result.ci,
        p_value=None if result is None else result.p_value,
        srm_p_value=srm_p,
        srm=srm_p < SRM_THRESHOLD,
    )
