"""The statistical canary judge, Kayenta's way: each metric's canary samples against stable's.

Per metric, a two-sided Mann-Whitney U test says whether the canary differs from stable, the
ratio of means (Kayenta's effect size) says by how much; a difference counts only when it is
significant *and* past the metric's tolerance. Classifications are `pass`, `high`, `low` and
`nodata`; a `high` fails a metric whose bad direction is up, a `low` one whose bad direction is
down. The interval's score is the weighted share of metrics with data that pass (a failing
critical metric makes it 0), and the pass and marginal thresholds turn it into continue, pause
or roll back. Written out (normal approximation with tie and continuity corrections) so the tests
can check it against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

PASS, HIGH, LOW, NODATA = "pass", "high", "low", "nodata"
INCREASE, DECREASE, EITHER = "increase", "decrease", "either"  # which way is bad
CONTINUE, PAUSE, ROLLBACK = "continue", "pause", "rollback"
DEFAULT_PASS_SCORE, DEFAULT_MARGINAL_SCORE = 95.0, 75.0  # Kayenta's defaults
MIN_SAMPLES = 3  # below this on either side the metric has no data


@dataclass(frozen=True)
class MannWhitney:
    u_canary: float  # U of the canary sample: pairs (canary, stable) where canary is larger
    z: float
    p_value: float


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Mid-ranks (1-based) of `values` and the tie term sum(t^3 - t) over tied groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    return ranks, ties


def mann_whitney(canary: Sequence[float], stable: Sequence[float]) -> MannWhitney:
    """Two-sided test, normal approximation with tie and continuity corrections (scipy's
    `mannwhitneyu(method="asymptotic")`)."""
    n1, n2 = len(canary), len(stable)
    ranks, ties = _ranks([*canary, *stable])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:  # every value equal: no evidence of a difference
        return MannWhitney(u_canary=u1, z=0.0, p_value=1.0)
    u = max(u1, n1 * n2 - u1)
    z = (u - mean - 0.5) / math.sqrt(variance)
    p = min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))
    return MannWhitney(u_canary=u1, z=z if u1 >= mean else -z, p_value=p)


def mean_ratio(canary: Sequence[float], stable: Sequence[float]) -> float:
    """Kayenta's effect size: mean(canary) / mean(stable); 1 when both are 0."""
    mc, ms = sum(canary) / len(canary), sum(stable) / len(stable)
    if ms == 0:
        return 1.0 if mc == 0 else math.copysign(math.inf, mc)
    return mc / ms


@dataclass(frozen=True)
class MetricResult:
    name: str
    classification: str
    failed: bool
    p_value: float | None
    effect_size: float | None
    canary_mean: float | None
    stable_mean: float | None
    weight: float
    critical: bool
    dry_run: bool
    why: str = ""

    def as_dict(self) -> dict:
        return {
            "metric": self.name,
            "classification": self.classification,
            "failed": self.failed,
            "p_value": self.p_value,
            "effect_size": self.effect_size,
            "canary": self.canary_mean,
            "stable": self.stable_mean,
            "weight": self.weight,
            "critical": self.critical,
            "dry_run": self.dry_run,
            "why": self.why,
        }


def classify(
    name: str,
    canary: Sequence[float],
    stable: Sequence[float],
    *,
    direction: str = INCREASE,
    allowed_increase: float = 1.0,
    allowed_decrease: float = 1.0,
    confidence: float = 0.95,
    weight: float = 1.0,
    critical: bool = False,
    dry_run: bool = False,
) -> MetricResult:
    """`allowed_increase` 1.1 tolerates a canary mean up to 10 % above stable's, whatever the test
    says; `allowed_decrease` 0.9 the same downwards."""
    canary = [float(v) for v in canary if v is not None and math.isfinite(v)]
    stable = [float(v) for v in stable if v is not None and math.isfinite(v)]
    common = {"weight": weight, "critical": critical, "dry_run": dry_run}
    if len(canary) < MIN_SAMPLES or len(stable) < MIN_SAMPLES:
        return MetricResult(
            name,
            NODATA,
            False,
            None,
            None,
            _mean(canary),
            _mean(stable),
            why=f"{name}: {len(canary)} canary and {len(stable)} stable samples "
            f"(at least {MIN_SAMPLES} each needed)",
            **common,
        )
    test = mann_whitney(canary, stable)
    effect = mean_ratio(canary, stable)
    significant = test.p_value < 1 - confidence
    label = PASS
    if significant and test.u_canary > len(canary) * len(stable) / 2 and effect > allowed_increase:
        label = HIGH
    elif (
        significant and test.u_canary < len(canary) * len(stable) / 2 and effect < allowed_decrease
    ):
        label = LOW
    failed = (label == HIGH and direction in (INCREASE, EITHER)) or (
        label == LOW and direction in (DECREASE, EITHER)
    )
    why = ""
    if failed:
        why = (
            f"{name} {label}: canary mean {_mean(canary):.4g} vs stable {_mean(stable):.4g} "
            f"(ratio {effect:.3g}, Mann-Whitney p={test.p_value:.2g})"
        )
    return MetricResult(
        name, label, failed, test.p_value, effect, _mean(canary), _mean(stable), why=why, **common
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Score:
    score: float | None  # 0-100; None when no metric that decides has data
    decision: str
    results: list[MetricResult] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why deciding metrics failed."""
        return [r.why for r in self.results if r.failed and not r.dry_run]


def score(
    results: Sequence[MetricResult],
    *,
    pass_score: float = DEFAULT_PASS_SCORE,
    marginal_score: float = DEFAULT_MARGINAL_SCORE,
) -> Score:
    """Dry-run metrics are measured and shown but never count."""
    deciding = [r for r in results if not r.dry_run and r.classification != NODATA]
    if not deciding:
        return Score(None, PAUSE, list(results))
    if any(r.failed and r.critical for r in deciding):
        value = 0.0
    else:
        total = sum(r.weight for r in deciding)
        value = 100.0 * sum(r.weight for r in deciding if not r.failed) / total if total else 0.0
    decision = CONTINUE if value >= pass_score else PAUSE if value >= marginal_score else ROLLBACK
    return Score(value, decision, list(results))
