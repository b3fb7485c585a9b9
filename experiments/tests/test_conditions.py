"""Targeting conditions against GrowthBook's published evalCondition and version cases."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.conditions import (
    ConditionError,
    condition_eval,
    condition_validate,
    padded_version,
)

CASES = json.loads((Path(__file__).parent / "data" / "growthbook_cases.json").read_text())


@pytest.mark.parametrize(("name", "condition", "attributes", "expected"), CASES["evalCondition"])
def test_eval_condition_matches_growthbook(name, condition, attributes, expected):
    assert condition_eval(condition, attributes) is expected, name


@pytest.mark.parametrize(("a", "b", "expected"), CASES["versionCompare"]["gt"])
def test_version_greater_matches_growthbook(a, b, expected):
    assert (padded_version(a) > padded_version(b)) is expected


@pytest.mark.parametrize(("a", "b", "expected"), CASES["versionCompare"]["eq"])
def test_version_equal_matches_growthbook(a, b, expected):
    assert (padded_version(a) == padded_version(b)) is expected


def test_app_version_compares_as_versions():
    cond = {"app_version": {"$gte": "2.9.0"}}
    assert condition_eval(cond, {"app_version": "2.10.1"})  # as strings "2.10.1" < "2.9.0"
    assert not condition_eval(cond, {"app_version": "2.8.9"})
    assert condition_eval({"app_version": "1.2.3"}, {"app_version": "v1.2.3"})
    assert condition_eval({"other": {"$gte": "2.9.0"}}, {"other": "2.10.1"}) is False


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ([], "must be a JSON object"),
        ({"$xor": []}, "unknown logical operator"),
        ({"country": {"$within": 3}}, "unknown operator $within"),
        ({"country": {"$in": "US"}}, "must be a list"),
        ({"$or": {"a": 1}}, "must be a list of conditions"),
        ({"ua": {"$regex": "("}}, "not a valid pattern"),
    ],
)
def test_invalid_conditions_are_named(condition, problem):
    with pytest.raises(ConditionError, match=problem.replace("$", r"\$").replace("(", r"\(")):
        condition_validate(condition)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(attributes=st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_valid_condition_never_raises_on_any_attributes(attributes):
    condition = {
        "country": {"$in": ["US", "CA"]},
        "age": {"$gt": 18, "$lte": "99"},
        "app_version": {"$gte": "1.2.0"},
        "$or": [{"tier": "pro"}, {"tags": {"$elemMatch": {"$eq": "beta"}}}],
        "$not": {"banned": True},
    }
    condition_validate(condition)
    assert condition_eval(condition, attributes) in (True, False)


def test_a_pathological_regex_is_answered_within_a_bound():
    import time

    # (a+)+$ against "aaaa…b" backtracks exponentially in Python's re (2^30 steps here);
    # RE2 answers in linear time.
    condition = {"ua": {"$regex": "^(a+)+$"}}
    started = time.monotonic()
    assert condition_eval(condition, {"ua": "a" * 30 + "b"}) is False
    assert condition_eval(condition, {"ua": "a" * 100_000}) is True  # subject cut to 1,000
    assert time.monotonic() - started < 5


def test_a_pattern_re2_cannot_run_is_refused_when_saved():
    with pytest.raises(ConditionError, match="not a valid pattern"):
        condition_validate({"ua": {"$regex": r"(a)\1"}})
