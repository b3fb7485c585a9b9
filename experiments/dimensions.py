"""Dimensions an experiment's results can be split by, and the SQL that reads each one.

A dimension is read once per exposed user: a property the user had on their first exposure
(`country`, `device_type`, `tier`, set by capture's enrichment, or `exposure.<property>`, any
property of that event), or a property of the user now (`user.tier`, `user.country`,
`user.signup_source`, the store's users table). Names come from this allow-list or the
`exposure.` pattern; property names reach the SQL as parameters only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidRequest, Unprocessable

# Values beyond the TOP_VALUES with the most exposed users are folded into OTHER.
TOP_VALUES = 10
OTHER = "$other"
MAX_DIMENSIONS = 3
FIRST_EXPOSURE = "first exposure"
USER = "user (now)"


@dataclass(frozen=True)
class Dimension:
    """`name` as the API takes it; `column`: the events column read on the first exposure,
    `user_column`: the users table's column, or `prop`: an exposure property (a parameter)."""

    name: str
    label: str
    source: str
    column: str = ""
    user_column: str = ""
    prop: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "source": self.source}


BUILT_IN = {
    d.name: d
    for d in (
        Dimension("country", "country", FIRST_EXPOSURE, column="country"),
        Dimension("device_type", "device type", FIRST_EXPOSURE, column="device_type"),
        Dimension("tier", "tier", FIRST_EXPOSURE, column="user_tier"),
        Dimension("user.tier", "tier (now)", USER, user_column="tier"),
        Dimension("user.country", "country (at signup)", USER, user_column="country"),
        Dimension("user.signup_source", "signup source", USER, user_column="signup_source"),
    )
}
EXPOSURE_PREFIX = "exposure."
_PROPERTY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.\-]{0,99}")
# The exposure's own bookkeeping, the same for every user of a variant: no split to see.
_NOT_A_DIMENSION = {"experiment_id", "variant"}

# Every name dimension_parse may take, as the schema's pattern (exposure.experiment_id and
# exposure.variant match it but are refused: 422).
PATTERN = (
    "^("
    + "|".join(re.escape(name) for name in BUILT_IN)
    + "|"
    + re.escape(EXPOSURE_PREFIX)
    + _PROPERTY.pattern
    + ")$"
)

HELP = (
    "one of "
    + ", ".join(BUILT_IN)
    + f", or {EXPOSURE_PREFIX}<property> (any property of the user's first exposure event)"
)


def dimension_parse(name: str, *, field: str = "dimension") -> Dimension:
    """The dimension of that name; InvalidRequest naming `field` when there is none."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    if name.startswith(EXPOSURE_PREFIX):
        prop = name[len(EXPOSURE_PREFIX) :]
        if _PROPERTY.fullmatch(prop) and prop not in _NOT_A_DIMENSION:
            return Dimension(name, prop, FIRST_EXPOSURE, prop=prop)
        if prop in _NOT_A_DIMENSION:
            raise Unprocessable(
                field, f"unknown dimension {name!r}: the same for every user of a variant"
            )
    raise InvalidRequest(field, f"unknown dimension {name[:120]!r}: {HELP}")


def dimensions_parse(names, *, field: str = "dimension") -> list[Dimension]:
    """Distinct dimensions in the order given (at most MAX_DIMENSIONS)."""
    out: list[Dimension] = []
    for name in names:
        dimension = dimension_parse(str(name), field=field)
        if dimension not in out:
            out.append(dimension)
    if len(out) > MAX_DIMENSIONS:
        raise Unprocessable(field, f"at most {MAX_DIMENSIONS} dimensions at once")
    return out


def dimension_names_validate(names) -> None:
    """For the model: a list of valid dimension names (raises InvalidRequest)."""
    if not isinstance(names, list):
        raise InvalidRequest("dimensions", 'a list of dimension names, e.g. ["country"]')
    for name in names:
        dimension_parse(str(name), field="dimensions")
