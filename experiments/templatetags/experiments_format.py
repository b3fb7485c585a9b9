"""Template filters for experiment numbers: percentages and p-values."""

from django import template

register = template.Library()
MISSING = "\u2013"  # en dash for a missing number


@register.filter
def pct(value, digits: int = 1) -> str:
    if value is None:
        return MISSING
    return f"{value * 100:.{digits}f}%"


@register.filter
def signed_pct(value, digits: int = 1) -> str:
    if value is None:
        return MISSING
    return f"{value * 100:+.{digits}f}%"


@register.filter
def pvalue(value) -> str:
    if value is None:
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def number(value, digits: int = 3) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        # Large adjusted counts read as counts, not in scientific notation.
        return f"{value:,.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"
    return f"{value:,}"


@register.filter
def rate(conversions, users) -> str:
    """Conversions over users as a percentage with two decimals."""
    if not users:
        return MISSING
    return f"{conversions / users * 100:.2f}%"
