"""The statistics of an experiment readout, written out so every step can be checked.

Cross-checked in tests against statsmodels (z-test, sample size, Holm), scipy (Welch,
chi-square) and GrowthBook's published gbstats values (delta-method relative lift and the
sequential confidence sequences of Waudby-Smith et al., GrowthBook's formulation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

SRM_THRESHOLD = 0.001
DEFAULT_TUNING = 5000.0  # GrowthBook's default sequential tuning parameter


@dataclass(frozen=True)
class Group:
    """One variant's per-user sample: size, mean and (sample) variance of the metric."""

    n: int
    mean: float
    variance: float

    @classmethod
    def proportion(cls, conversions: int, n: int) -> Group:
        p = conversions / n if n else 0.0
        return cls(n=n, mean=p, variance=p * (1 - p))

    @classmethod
    def from_sums(cls, n: int, total: float, total_squares: float) -> Group:
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        variance = (total_squares - total * total / n) / (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=mean, variance=max(variance, 0.0))


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control on one metric. `lift` and `ci` are relative (0.03 = +3%)."""

    lift: float | None
    ci: tuple[float, float] | None
    absolute_lift: float | None
    p_value: float | None
    chance_to_beat_control: float | None
    se_relative: float | None


EMPTY = Comparison(None, None, None, None, None, None)


def relative_lift_variance(control: Group, treatment: Group) -> float:
    """Delta-method variance of (mean_t - mean_c) / mean_c."""
    mc, mt = control.mean, treatment.mean
    return treatment.variance / (mc**2 * treatment.n) + control.variance * mt**2 / (
        mc**4 * control.n
    )


def welch_df(control: Group, treatment: Group) -> float:
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    denominator = vc**2 / (control.n - 1) + vt**2 / (treatment.n - 1)
    return (vc + vt) ** 2 / denominator if denominator > 0 else float(control.n + treatment.n - 2)


def proportions_z_test(control: Group, treatment: Group) -> float:
    """Two-sided pooled two-proportion z-test p-value (groups built with Group.proportion)."""
    pooled = (control.mean * control.n + treatment.mean * treatment.n) / (control.n + treatment.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    if se == 0:
        return 1.0
    z = (treatment.mean - control.mean) / se
    return float(2 * sps.norm.sf(abs(z)))


def welch_t_test(control: Group, treatment: Group) -> float:
    """Two-sided Welch t-test p-value on the difference of means."""
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    if se == 0:
        return 1.0
    t = (treatment.mean - control.mean) / se
    return float(2 * sps.t.sf(abs(t), welch_df(control, treatment)))


def sequential_rho(alpha: float, tuning: float) -> float:
    """GrowthBook's mixing parameter, tuned so the interval is tightest near `tuning` users."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def sequential_half_width(*, variance, n, alpha: float, tuning: float):
    """Half-width of the always-valid interval (Waudby-Smith et al. 2023, eq. 9, as gbstats).

    `variance` is the variance of the point estimate and `n` the total users of both arms.
    Scalars or numpy arrays.
    """
    rho = sequential_rho(alpha, tuning)
    nr2 = np.asarray(n, dtype=float) * rho**2
    width = np.sqrt(np.asarray(variance) * 2 * (nr2 + 1) * np.log(np.sqrt(nr2 + 1) / alpha) / nr2)
    return float(width) if width.ndim == 0 else width


def sequential_p_value(*, estimate, variance, n, alpha: float, tuning: float):
    """Always-valid p-value: 1 / the normal-mixture e-value, capped at 1. It is below alpha
    exactly when the sequential interval excludes 0. Scalars or numpy arrays."""
    rho = sequential_rho(alpha, tuning)
    nr2 = np.asarray(n, dtype=float) * rho**2
    z2 = np.asarray(estimate, dtype=float) ** 2 / np.asarray(variance, dtype=float)
    log_e = (nr2 / (nr2 + 1)) * z2 / 2 - 0.5 * np.log(nr2 + 1)
    p = np.minimum(1.0, np.exp(-log_e))
    return float(p) if p.ndim == 0 else p


def compare(
    control: Group,
    treatment: Group,
    *,
    kind: str,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING,
    decrease_is_good: bool = False,
) -> Comparison:
    """Relative lift with its interval, p-value and Bayesian chance to beat control.

    Conversions: pooled two-proportion z-test and a normal interval. Means: Welch's t-test
    and a t interval with Welch's degrees of freedom. Sequential: GrowthBook's always-valid
    interval and p-value replace both.
    """
    if control.n < 2 or treatment.n < 2 or control.mean == 0:
        return EMPTY
    variance = relative_lift_variance(control, treatment)
    lift = (treatment.mean - control.mean) / control.mean
    absolute = treatment.mean - control.mean
    if variance <= 0:
        return Comparison(lift, (lift, lift), absolute, None, None, 0.0)
    se = math.sqrt(variance)
    n = control.n + treatment.n
    if sequential:
        half = sequential_half_width(variance=variance, n=n, alpha=alpha, tuning=tuning)
        p = sequential_p_value(estimate=lift, variance=variance, n=n, alpha=alpha, tuning=tuning)
    elif kind == "conversion":
        half = float(sps.norm.ppf(1 - alpha / 2)) * se
        p = proportions_z_test(control, treatment)
    else:
        half = float(sps.t.ppf(1 - alpha / 2, welch_df(control, treatment))) * se
        p = welch_t_test(control, treatment)
    # Flat-prior normal posterior on the relative lift.
    beats = float(sps.norm.cdf(lift / se))
    if decrease_is_good:
        beats = 1 - beats
    return Comparison(lift, (lift - half, lift + half), absolute, p, beats, se)


def srm_p_value(observed: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-square goodness of fit of the users per variant against the planned weights."""
    counts = np.asarray(observed, dtype=float)
    total = counts.sum()
    if total == 0:
        return 1.0
    w = np.asarray(weights, dtype=float)
    expected = total * w / w.sum()
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return float(sps.chi2.sf(statistic, len(counts) - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def required_users_per_variant(
    *,
    kind: str,
    baseline_mean: float,
    baseline_variance: float | None = None,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int | None:
    """Users per variant for a two-sided test to detect a relative change `mde` with `power`.

    Conversions use Cohen's h (arcsine) effect size, means the standardized difference; both
    are what statsmodels' NormalIndPower takes: n = 2 (z_{1-a/2} + z_power)^2 / effect^2.
    """
    if baseline_mean <= 0:
        return None
    if kind == "conversion":
        target = min(baseline_mean * (1 + mde), 1.0)
        effect = abs(2 * math.asin(math.sqrt(target)) - 2 * math.asin(math.sqrt(baseline_mean)))
    else:
        if not baseline_variance:
            return None
        effect = baseline_mean * mde / math.sqrt(baseline_variance)
    if effect == 0:
        return None
    z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
    return math.ceil(2 * (z / effect) ** 2)
