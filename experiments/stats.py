"""The statistics of an experiment readout: the one place every number comes from.

Two engines over the same sufficient statistics, each GrowthBook's formulation (gbstats 0.8):

- `frequentist(control, treatment, ...)`: Welch's t-test on the relative lift with its
  delta-method variance, fixed horizon, or the always-valid confidence sequence and p-value
  of Waudby-Smith et al. when `sequential` (safe to look every hour);
- `bayesian(control, treatment, ...)`: a normal posterior on the relative lift under a
  Gaussian prior (proper by default), with chance to win, credible interval and risk
  (expected relative loss of shipping the variant).

Sufficient statistics: `Proportion` (conversions), `SampleMean` (per-user sums), `Ratio`
(per-user numerator and denominator, delta method), `Adjusted` (CUPED: a post-exposure
statistic regressed on the same users' pre-exposure one), and `Quantile` /
`QuantileClustered` (a sample quantile of users' or events' values, its variance from the
order-statistic interval the store reads at GrowthBook's grid of sample sizes).
The tests hold every engine to the gbstats package on the same inputs within 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

SRM_THRESHOLD = 0.001
DEFAULT_TUNING = 5000.0  # GrowthBook's default sequential tuning parameter
# GrowthBook's default proper prior on the relative lift: mean 0, standard deviation 0.3.
DEFAULT_PRIOR_MEAN = 0.0
DEFAULT_PRIOR_STDDEV = 0.3


@dataclass(frozen=True)
class Proportion:
    """Users and how many of them converted."""

    n: int
    sum: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def sum_squares(self) -> float:
        return self.sum

    @property
    def variance(self) -> float:
        return self.mean * (1 - self.mean)


@dataclass(frozen=True)
class SampleMean:
    """Users, and the sum and sum of squares of their per-user values."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)


Base = Proportion | SampleMean


def _covariance(n: int, a: Base, b: Base, sum_of_products: float) -> float:
    if n <= 1:
        return 0.0
    return (sum_of_products - a.sum * b.sum / n) / (n - 1)


@dataclass(frozen=True)
class Ratio:
    """Per-user numerator and denominator (e.g. videos rendered and sessions): the metric is
    sum(numerator) / sum(denominator), its variance per user by the delta method."""

    n: int
    numerator: Base
    denominator: Base
    sum_of_products: float

    @property
    def mean(self) -> float:
        return self.numerator.sum / self.denominator.sum if self.denominator.sum else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def covariance(self) -> float:
        return _covariance(self.n, self.numerator, self.denominator, self.sum_of_products)

    @property
    def variance(self) -> float:
        dm, mm = self.denominator.mean, self.numerator.mean
        if dm == 0 or self.n <= 1:
            return 0.0
        return (
            self.numerator.variance / dm**2
            - 2 * self.covariance * mm / dm**3
            + mm**2 * self.denominator.variance / dm**4
        )


@dataclass(frozen=True)
class Adjusted:
    """CUPED: the post-exposure statistic minus theta times the same users' pre-exposure one.
    theta is set by the engines from both arms together (`cuped_theta`)."""

    n: int
    post: Base
    pre: Base
    sum_of_products: float
    theta: float = 0.0

    @property
    def mean(self) -> float:
        return self.post.mean - self.theta * self.pre.mean

    @property
    def unadjusted_mean(self) -> float:
        return self.post.mean

    @property
    def covariance(self) -> float:
        return _covariance(self.n, self.post, self.pre, self.sum_of_products)

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (
            self.post.variance
            + self.theta**2 * self.pre.variance
            - 2 * self.theta * self.covariance
        )


# The sample sizes n* of GrowthBook's quantile grid: the store computes the quantiles at
# nu -+ z sqrt(nu (1 - nu) / n*) for each, and the largest n* below the sample is used.
N_STAR_VALUES = tuple(100 * 2**i for i in range(20))
QUANTILE_GRID_ALPHA = 0.05  # the grid's interval is 95%, whatever the experiment's alpha


def quantile_grid_levels(nu: float) -> list[tuple[float, float]]:
    """(lower, upper) quantile levels of the order-statistic (binomial) interval of the
    nu-quantile at each n* (GrowthBook's getQuantileBoundValues)."""
    z = float(sps.norm.ppf(1 - QUANTILE_GRID_ALPHA / 2))
    out = []
    for n_star in N_STAR_VALUES:
        se = math.sqrt(nu * (1 - nu) / n_star)
        out.append((max(nu - z * se, 1e-8), min(nu + z * se, 0.99999999)))
    return out


def quantile_n_star(n: int) -> int:
    """The grid's n* for a sample of n: the largest below n, else the smallest."""
    below = [s for s in N_STAR_VALUES if s < n]
    return max(below) if below else N_STAR_VALUES[0]


@dataclass(frozen=True)
class Quantile:
    """A sample nu-quantile of n values (users' values, or events') with the order-statistic
    interval [lower, upper] the store read at the grid's n*: its variance per value is that
    interval's width scaled from n* to n (gbstats' QuantileStatistic)."""

    n: int
    n_star: int
    nu: float
    quantile_hat: float
    lower: float
    upper: float

    @property
    def mean(self) -> float:
        return self.quantile_hat

    @property
    def unadjusted_mean(self) -> float:
        return self.quantile_hat

    @property
    def iid_variance(self) -> float:
        if self.n <= 1:
            return 0.0
        z = float(sps.norm.ppf(1 - QUANTILE_GRID_ALPHA / 2))
        width = (self.upper - self.lower) / (2 * z)
        return float((self.n_star / self.n) * (self.n - 1) * width**2)

    @property
    def variance_init(self) -> float:
        return self.iid_variance

    @property
    def variance(self) -> float:
        v = self.variance_init
        return v if self.n < 100 else max(v, 1e-5)

    @property
    def degenerate(self) -> bool:
        """Too few values for the interval to stay inside the data, or no spread at all."""
        z2 = float(sps.norm.ppf(1 - QUANTILE_GRID_ALPHA / 2)) ** 2
        if self.n <= z2 * self.nu / (1 - self.nu) or self.n <= z2 * (1 - self.nu) / self.nu:
            return True
        return self.variance_init <= 0 and self.n < 1000


@dataclass(frozen=True)
class QuantileClustered(Quantile):
    """An event quantile: the events of one user are not independent, so the iid variance is
    scaled by the variance of the share of events at or below the quantile, a ratio of
    per-user sums (count below over events) by the delta method (gbstats'
    QuantileClusteredStatistic)."""

    main_sum: float = 0.0
    main_sum_squares: float = 0.0
    denominator_sum: float = 0.0
    denominator_sum_squares: float = 0.0
    main_denominator_sum_product: float = 0.0
    n_clusters: int = 0

    @property
    def cluster_variance(self) -> float:
        k = self.n_clusters
        mu_s, mu_n = self.main_sum / k, self.denominator_sum / k
        var_s = (self.main_sum_squares / k - mu_s * mu_s) * k / (k - 1)
        var_n = (self.denominator_sum_squares / k - mu_n * mu_n) * k / (k - 1)
        cov = (self.main_denominator_sum_product / k - mu_s * mu_n) * k / (k - 1)
        return (var_s - 2 * mu_s * cov / mu_n + mu_s**2 * var_n / mu_n**2) / (k * mu_n**2)

    @property
    def variance_init(self) -> float:
        if self.n <= 1 or self.nu == 0 or self.n_clusters <= 1 or self.denominator_sum <= 0:
            return 0.0
        iid_share = self.nu * (1 - self.nu) / self.n
        return self.iid_variance * self.cluster_variance / iid_share


Statistic = Proportion | SampleMean | Ratio | Adjusted | Quantile


def cuped_theta(*arms: Adjusted) -> float:
    """The regression coefficient of post on pre over the arms together (gbstats, for two)."""
    n = sum(a.n for a in arms)

    def joint(parts: list[Base]) -> Base:
        if all(isinstance(p, Proportion) for p in parts):
            return Proportion(n, sum(p.sum for p in parts))
        return SampleMean(n, sum(p.sum for p in parts), sum(p.sum_squares for p in parts))

    post, pre = joint([a.post for a in arms]), joint([a.pre for a in arms])
    if pre.variance == 0 or post.variance == 0:
        return 0.0
    both = Adjusted(n, post, pre, sum(a.sum_of_products for a in arms))
    return both.covariance / pre.variance


def cuped_pair(control: Statistic, treatment: Statistic) -> tuple[Statistic, Statistic]:
    """Both arms with their common theta set; without pre-period variance, the plain
    post-exposure statistics (what gbstats does)."""
    if isinstance(control, Adjusted) and isinstance(treatment, Adjusted):
        theta = cuped_theta(control, treatment)
        if theta == 0:
            return control.post, treatment.post
        return replace(control, theta=theta), replace(treatment, theta=theta)
    return control, treatment


def _zero_variance(statistic: Statistic) -> bool:
    if isinstance(statistic, Quantile):
        return statistic.degenerate
    return statistic.variance <= 0


@dataclass(frozen=True)
class Estimate:
    """The relative lift of treatment over control with the variance of that estimate."""

    lift: float
    variance: float
    n: int
    dof: float


def relative_lift(mean_c, var_c, n_c, mean_t, var_t, n_t, *, adjusted_c=None, adjusted_t=None):
    """(relative lift, its delta-method variance): scalars or numpy arrays. `adjusted_*` are
    the CUPED-adjusted means when they differ from the plain ones (the denominator stays the
    plain control mean, as in gbstats)."""
    adjusted_c = mean_c if adjusted_c is None else adjusted_c
    adjusted_t = mean_t if adjusted_t is None else adjusted_t
    variance = var_t / (mean_c**2 * n_t) + var_c * mean_t**2 / (mean_c**4 * n_c)
    return (adjusted_t - adjusted_c) / mean_c, variance


def relative_estimate(control: Statistic, treatment: Statistic) -> Estimate | None:
    """Relative lift (treatment - control) / control and its delta-method variance; None
    when it does not exist (an empty arm, a zero baseline, a zero variance)."""
    control, treatment = cuped_pair(control, treatment)
    if control.n == 0 or treatment.n == 0:
        return None
    if control.mean == 0 or control.unadjusted_mean == 0:
        return None
    if _zero_variance(control) or _zero_variance(treatment):
        return None
    va, vb = control.variance, treatment.variance
    lift, variance = relative_lift(
        control.unadjusted_mean,
        va,
        control.n,
        treatment.unadjusted_mean,
        vb,
        treatment.n,
        adjusted_c=control.mean,
        adjusted_t=treatment.mean,
    )
    dof = (vb / treatment.n + va / control.n) ** 2 / (
        vb**2 / (treatment.n**2 * (treatment.n - 1)) + va**2 / (control.n**2 * (control.n - 1))
    )
    return Estimate(lift, variance, control.n + treatment.n, dof)


@dataclass(frozen=True)
class Frequentist:
    """Relative lift, its (1 - alpha) confidence interval and two-sided p-value."""

    lift: float
    ci: tuple[float, float]
    p_value: float
    se: float


@dataclass(frozen=True)
class Bayesian:
    """Posterior mean of the relative lift, its (1 - alpha) credible interval, the chance the
    variant is better than control (in the metric's good direction), and the risk: the
    expected relative loss of shipping the variant (and, `risk_control`, of keeping control)."""

    lift: float
    ci: tuple[float, float]
    chance_to_win: float
    risk: float
    risk_control: float
    se: float


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


def frequentist(
    control: Statistic,
    treatment: Statistic,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING,
) -> Frequentist | None:
    """gbstats' TwoSidedTTest (Welch) or SequentialTwoSidedTTest on the relative lift."""
    est = relative_estimate(control, treatment)
    if est is None:
        return None
    se = math.sqrt(est.variance)
    if sequential:
        half = sequential_half_width(variance=est.variance, n=est.n, alpha=alpha, tuning=tuning)
        p = sequential_p_value(
            estimate=est.lift, variance=est.variance, n=est.n, alpha=alpha, tuning=tuning
        )
    else:
        half = float(sps.t.ppf(1 - alpha / 2, est.dof)) * se
        p = float(2 * sps.t.sf(abs(est.lift) / se, est.dof))
    return Frequentist(est.lift, (est.lift - half, est.lift + half), float(p), se)


@dataclass(frozen=True)
class Posterior:
    """The Bayesian engine's quantities; every field a float or a numpy array."""

    mean: object
    sd: object
    low: object
    high: object
    chance_to_win: object
    risk: object
    risk_control: object


def posterior(
    *,
    lift,
    variance,
    alpha: float = 0.05,
    prior_mean: float = DEFAULT_PRIOR_MEAN,
    prior_stddev: float = DEFAULT_PRIOR_STDDEV,
    proper: bool = True,
    decrease_is_good: bool = False,
) -> Posterior:
    """The normal posterior of the relative lift given its estimate and variance (scalars or
    numpy arrays, e.g. every look of many simulated experiments at once)."""
    lift = np.asarray(lift, dtype=float)
    variance = np.asarray(variance, dtype=float)
    prior_variance = prior_stddev**2
    precision = 1 / variance + (1 / prior_variance if proper else 0.0)
    mean = (lift / variance + prior_mean / prior_variance) / precision if proper else lift
    sd = np.sqrt(1 / precision)
    z = mean / sd
    p_below = sps.norm.cdf(-z)
    # Expected loss of keeping control (the gain forgone) and of shipping the variant:
    # E[max(lift, 0)] and E[max(-lift, 0)] under the posterior.
    risk_control = mean * sps.norm.cdf(z) + sd * sps.norm.pdf(z)
    risk_variant = risk_control - mean
    chance = 1 - p_below
    if decrease_is_good:
        chance = p_below
        risk_control, risk_variant = risk_variant, risk_control
    half = float(sps.norm.ppf(1 - alpha / 2)) * sd
    return Posterior(mean, sd, mean - half, mean + half, chance, risk_variant, risk_control)


def bayesian(
    control: Statistic,
    treatment: Statistic,
    *,
    alpha: float = 0.05,
    prior_mean: float = DEFAULT_PRIOR_MEAN,
    prior_stddev: float = DEFAULT_PRIOR_STDDEV,
    proper: bool = True,
    decrease_is_good: bool = False,
) -> Bayesian | None:
    """gbstats' EffectBayesianABTest on the relative lift with a Gaussian prior on it."""
    est = relative_estimate(control, treatment)
    if est is None:
        return None
    post = posterior(
        lift=est.lift,
        variance=est.variance,
        alpha=alpha,
        prior_mean=prior_mean,
        prior_stddev=prior_stddev,
        proper=proper,
        decrease_is_good=decrease_is_good,
    )
    return Bayesian(
        float(post.mean),
        (float(post.low), float(post.high)),
        float(post.chance_to_win),
        float(post.risk),
        float(post.risk_control),
        float(post.sd),
    )


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


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def cuped_expected_width_ratio(correlation: float) -> float:
    """Interval width with CUPED over without, in theory: sqrt(1 - rho^2)."""
    return math.sqrt(1 - correlation**2)


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
