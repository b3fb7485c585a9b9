"""Two groups of users compared on one product metric, by whichever app owns the statistics.

Deployments judges a canary by the users it served with the experiments engine's statistics,
but may not import experiments (a sibling room); experiments registers its comparison here
when its app is ready, as deployments registers its release markers in core.releases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    """Sufficient statistics of one group, users as units. Per user a numerator value (for a
    conversion: 1 if the user converted) and, for a ratio, a denominator value."""

    users: int
    numerator: float
    numerator_squares: float
    denominator: float = 0.0
    denominator_squares: float = 0.0
    products: float = 0.0  # sum over users of numerator * denominator


@dataclass(frozen=True)
class Comparison:
    """Treatment (canary) against control (stable): relative lift with its always-valid
    (sequential) interval and p-value, and the sample-ratio check of the users per group."""

    control_value: float
    treatment_value: float
    lift: float | None  # None when it cannot be estimated (an empty arm, zero variance)
    ci: tuple[float, float] | None
    p_value: float | None
    srm_p_value: float
    srm: bool  # the users per group are off the expected split past the engine's threshold


Compare = Callable[..., Comparison]
_compare: Compare | None = None


class ComparisonUnavailable(RuntimeError):
    """No app registered a comparison (the experiments app is not installed)."""


def register(compare: Compare) -> None:
    """`compare(kind=, control=, treatment=, treatment_share=, alpha=, tuning=)` with kind
    "ratio" or "proportion", Arms, the expected share (0-1) of users in treatment."""
    global _compare
    _compare = compare


def compare(**kwargs) -> Comparison:
    if _compare is None:
        raise ComparisonUnavailable("no statistics engine registered (experiments app missing)")
    return _compare(**kwargs)
