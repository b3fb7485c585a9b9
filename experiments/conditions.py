"""Targeting conditions in the MongoDB-like syntax GrowthBook uses, evaluated on attributes.

`{"id": {"$inCohort": 7}}` targets the current members of saved cohort 7 (analytics/cohorts);
SDKs get it as GrowthBook's `$inGroup` on the saved group `cohort-7` of the payload.

`condition_eval(condition, attributes)` follows GrowthBook's `evalCondition` (checked against
the SDK's published cases). Comparisons on `app_version` are version-aware, as GrowthBook's
`$veq`/`$vgt`/... operators are, so "1.10.0" > "1.9.2".
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import re2

VERSION_ATTRIBUTES = frozenset({"app_version"})
# $regex runs client-supplied attributes through admin-written patterns on the assignment hot
# path: RE2 matches in linear time (no catastrophic backtracking), on at most this many chars.
MAX_REGEX_SUBJECT = 1000


@lru_cache(maxsize=256)
def _regex(pattern: str):
    """The compiled RE2 pattern; re2.error for one RE2 cannot run (backreferences, lookaround)."""
    return re2.compile(pattern)


LOGICAL = ("$or", "$nor", "$and", "$not")
_COMPARE = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte"}
_VERSION = {"$veq", "$vne", "$vlt", "$vlte", "$vgt", "$vgte"}
OPERATORS = (
    _COMPARE
    | _VERSION
    | {
        "$in",
        "$nin",
        "$exists",
        "$regex",
        "$not",
        "$type",
        "$elemMatch",
        "$size",
        "$all",
        "$inCohort",
    }
)
SAVED_GROUP_PREFIX = "cohort-"
_MISSING = object()


class ConditionError(ValueError):
    """The targeting document is not a valid condition."""


def padded_version(value: Any) -> str:
    """GrowthBook's `paddedVersionString`: a string whose ordering is version ordering."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = re.split(r"[-.]", re.sub(r"(^v|\+.*$)", "", value))
    if len(parts) == 3:
        parts.append("~")  # "~" sorts after every letter: 1.0.0 > 1.0.0-beta
    return "-".join(p.rjust(5) if p.isdigit() else p for p in parts)


def _path(attributes: Any, key: str) -> Any:
    current = attributes
    for part in key.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return None
    return current


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "unknown"


def _coerce_pair(actual: Any, expected: Any) -> tuple[Any, Any]:
    """JavaScript-like coercion for ordering: a missing value is 0 (or ""), and a number
    compared with a numeric string compares as numbers."""
    if actual is None:
        actual = "" if isinstance(expected, str) else 0
    num = (int, float)
    if isinstance(actual, num) and isinstance(expected, str):
        try:
            return float(actual), float(expected)
        except ValueError:
            return str(actual), expected
    if isinstance(actual, str) and isinstance(expected, num):
        try:
            return float(actual), float(expected)
        except ValueError:
            return actual, str(expected)
    if type(actual) is not type(expected) and not (
        isinstance(actual, num) and isinstance(expected, num)
    ):
        return str(actual), str(expected)
    return actual, expected


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "$eq":
        return actual == expected
    if op == "$ne":
        return actual != expected
    a, e = _coerce_pair(actual, expected)
    try:
        if op == "$lt":
            return a < e
        if op == "$lte":
            return a <= e
        if op == "$gt":
            return a > e
        return a >= e
    except TypeError:
        return False


def _operator(op: str, actual: Any, expected: Any, *, version: bool) -> bool:
    if op in _COMPARE and version:
        op = "$v" + op[1:]
    if op in _VERSION:
        return _compare("$" + op[2:], padded_version(actual), padded_version(expected))
    if op in _COMPARE:
        return _compare(op, actual, expected)
    if op == "$in":
        if not isinstance(expected, list):
            return False
        if isinstance(actual, list):
            return any(a in expected for a in actual)
        return actual in expected
    if op == "$nin":
        if not isinstance(expected, list):
            return False
        if isinstance(actual, list):
            return not any(a in expected for a in actual)
        return actual not in expected
    if op == "$exists":
        return (actual is not None) if expected else (actual is None)
    if op == "$regex":
        try:
            return _regex(str(expected)).search(str(actual)[:MAX_REGEX_SUBJECT]) is not None
        except re2.error:
            return False
    if op == "$not":
        return not _value_matches(expected, actual, version=version)
    if op == "$type":
        return _type_name(actual) == expected
    if op == "$size":
        return isinstance(actual, list) and _value_matches(expected, len(actual), version=False)
    if op == "$elemMatch":
        if not isinstance(actual, list):
            return False
        if _is_operator_object(expected):
            return any(_value_matches(expected, item, version=False) for item in actual)
        return any(condition_eval(expected, item) for item in actual)
    if op == "$inCohort":
        from analytics.cohorts.selectors import cohort_contains

        return isinstance(actual, str) and cohort_contains(expected, actual)
    if op == "$all":
        if not isinstance(actual, list) or not isinstance(expected, list):
            return False
        return all(
            any(_value_matches(cond, item, version=False) for item in actual) for cond in expected
        )
    raise ConditionError(f"unknown operator {op}")


def _value_matches(condition: Any, actual: Any, *, version: bool) -> bool:
    if isinstance(condition, bool):
        return actual is not None and bool(actual) == condition
    if isinstance(condition, str):
        if version:
            return padded_version(actual) == padded_version(condition)
        return actual is not None and _js_string(actual) == condition
    if isinstance(condition, int | float):
        try:
            return actual is not None and float(actual) == condition
        except (TypeError, ValueError):
            return False
    if condition is None:
        return actual is None
    if _is_operator_object(condition):
        return all(
            _operator(op, actual, expected, version=version) for op, expected in condition.items()
        )
    return json.dumps(actual, sort_keys=True) == json.dumps(condition, sort_keys=True)


def _js_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def condition_eval(condition: dict, attributes: Any) -> bool:
    """True when `attributes` satisfy the condition document (an empty one always does)."""
    for key, value in condition.items():
        if key == "$or":
            if value and not any(condition_eval(c, attributes) for c in value):
                return False
        elif key == "$nor":
            if any(condition_eval(c, attributes) for c in value):
                return False
        elif key == "$and":
            if not all(condition_eval(c, attributes) for c in value):
                return False
        elif key == "$not":
            if condition_eval(value, attributes):
                return False
        elif not _value_matches(value, _path(attributes, key), version=key in VERSION_ATTRIBUTES):
            return False
    return True


def condition_validate(condition: Any, *, where: str = "conditions") -> None:
    """Raise ConditionError naming the first problem of a targeting document."""
    if not isinstance(condition, dict):
        raise ConditionError(f"{where} must be a JSON object")
    for key, value in condition.items():
        if key in ("$or", "$nor", "$and"):
            if not isinstance(value, list):
                raise ConditionError(f"{where}.{key} must be a list of conditions")
            for i, sub in enumerate(value):
                condition_validate(sub, where=f"{where}.{key}[{i}]")
        elif key == "$not":
            condition_validate(value, where=f"{where}.$not")
        elif key.startswith("$"):
            raise ConditionError(f"{where}: unknown logical operator {key}")
        elif _is_operator_object(value):
            _operators_validate(value, where=f"{where}.{key}")


def _operators_validate(value: dict, *, where: str) -> None:
    for op, expected in value.items():
        if op not in OPERATORS:
            raise ConditionError(f"{where}: unknown operator {op}")
        if op in ("$in", "$nin", "$all") and not isinstance(expected, list):
            raise ConditionError(f"{where}.{op} must be a list")
        if op == "$regex":
            try:
                _regex(str(expected))
            except re2.error as exc:
                raise ConditionError(f"{where}.$regex is not a valid pattern: {exc}") from None
        if op == "$not" and _is_operator_object(expected):
            _operators_validate(expected, where=f"{where}.$not")
        if op == "$inCohort" and (
            not isinstance(expected, int) or isinstance(expected, bool) or expected < 1
        ):
            raise ConditionError(f"{where}.$inCohort must be a saved cohort's id")


def condition_for_sdk(condition: dict) -> dict:
    """The same condition as GrowthBook's SDKs evaluate it: our version-aware comparisons on
    VERSION_ATTRIBUTES become GrowthBook's explicit `$v*` operators (an SDK compares plain
    `$gte` on strings as text), so local evaluation and the server agree."""
    out: dict = {}
    for key, value in condition.items():
        if key in ("$or", "$nor", "$and"):
            out[key] = [condition_for_sdk(c) for c in value]
        elif key == "$not":
            out[key] = condition_for_sdk(value)
        elif key in VERSION_ATTRIBUTES:
            out[key] = _version_value(value)
        else:
            out[key] = _cohort_value(value)
    return out


def _cohort_value(value: Any) -> Any:
    if not _is_operator_object(value):
        return value
    out = {}
    for op, expected in value.items():
        if op == "$inCohort":
            out["$inGroup"] = f"{SAVED_GROUP_PREFIX}{expected}"
        elif op == "$not":
            out[op] = _cohort_value(expected)
        else:
            out[op] = expected
    return out


def cohorts_in(condition: Any) -> set[int]:
    """The saved cohorts a condition targets with `$inCohort`."""
    found: set[int] = set()
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key == "$inCohort" and isinstance(value, int):
                found.add(value)
            else:
                found |= cohorts_in(value)
    elif isinstance(condition, list):
        for item in condition:
            found |= cohorts_in(item)
    return found


def _version_value(value: Any) -> Any:
    if isinstance(value, str):
        return {"$veq": value}
    if not _is_operator_object(value):
        return value
    out = {}
    for op, expected in value.items():
        if op in _COMPARE:
            out["$v" + op[1:]] = expected
        elif op == "$not":
            out[op] = _version_value(expected)
        else:
            out[op] = expected
    return out
