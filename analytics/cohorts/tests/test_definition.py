"""Cohort members from the compiled SQL against a plain pandas evaluation, on random events
and random definitions (hypothesis), and the validation of definitions."""

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cohorts import definition as definitions
from analytics.cohorts.tests import reference
from analytics.product.tests.product_data import events, load
from analytics.store import store
from core.errors import InvalidRequest

pytestmark = pytest.mark.django_db
FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAMES = ["a", "b", "c"]
AS_OF = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)


def _props(draw, name):
    props = {}
    if draw(st.booleans()):
        props["plan"] = draw(st.sampled_from(["basic", "pro", "pro-max", 3, 12, 2.5, True]))
    return props


event_rule = st.fixed_dictionaries(
    {
        "type": st.just("event"),
        "event": st.sampled_from(NAMES),
        "performed": st.booleans(),
        "operator": st.sampled_from(["gte", "eq", "lte"]),
        "count": st.integers(0, 3),
        "days": st.integers(1, 90),
    }
)
property_rule = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("property"),
            "key": st.sampled_from(["plan", "user_tier"]),
            "operator": st.sampled_from(["eq", "neq", "contains", "is_set", "is_not_set"]),
            "value": st.sampled_from(["pro", "basic", "free", "3", "true", ""]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("property"),
            "key": st.just("plan"),
            "operator": st.sampled_from(["gt", "lt"]),
            "value": st.sampled_from([2, 3, 2.5]),
        }
    ),
)
cohort_rule = st.fixed_dictionaries(
    {"type": st.just("cohort"), "cohort": st.just(1), "member": st.booleans()}
)
leaf = st.one_of(event_rule, property_rule, cohort_rule)
group = st.fixed_dictionaries(
    {"op": st.sampled_from(["and", "or"]), "rules": st.lists(leaf, min_size=1, max_size=3)}
)
definition_strategy = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["and", "or"]),
        "rules": st.lists(st.one_of(leaf, group), min_size=1, max_size=4),
    }
)


@FAST
@given(
    rows=events(NAMES, props=_props, max_size=60),
    definition=definition_strategy,
    other=st.sets(st.sampled_from([f"u{i}" for i in range(8)])),
)
def test_members_match_pandas(analytics_store, rows, definition, other):
    frame = load(rows)
    db = store()
    db.command("TRUNCATE TABLE cohort_members")
    if other:
        db.insert("cohort_members", [{"cohort_id": 1, "version": 4, "user_id": u} for u in other])
    normal = definitions.validate(definition)
    sql, params = definitions.members_sql(normal, as_of=AS_OF, versions={1: 4})
    got = {row["user_id"] for row in db.query(sql, params)}
    assert got == reference.members(frame, normal, as_of=AS_OF, cohorts={1: other})


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ([], "definition"),
        ({"op": "xor", "rules": []}, "definition.op"),
        ({"rules": []}, "definition.rules"),
        ({"rules": [{"type": "event", "event": "bad name"}]}, "definition.rules[0].event"),
        ({"rules": [{"type": "event", "event": "a", "count": -1}]}, "definition.rules[0].count"),
        ({"rules": [{"type": "event", "event": "a", "days": True}]}, "definition.rules[0].days"),
        ({"rules": [{"type": "property", "key": "k", "operator": "gt", "value": "x"}]},
         "definition.rules[0].value"),
        ({"rules": [{"type": "cohort"}]}, "definition.rules[0].cohort"),
        ({"rules": [{"type": "x"}]}, "definition.rules[0].type"),
        ({"rules": [{"rules": [{"rules": [{"rules": []}]}]}]},
         "definition.rules[0].rules[0].rules[0]"),
    ],
)  # fmt: skip
def test_invalid_definitions_name_the_part(definition, field):
    with pytest.raises(InvalidRequest) as info:
        definitions.validate(definition)
    assert info.value.field == field


def test_values_are_parameters_never_sql_text():
    normal = definitions.validate(
        {"rules": [{"type": "property", "key": "k", "operator": "eq", "value": "x' OR 1=1 --"}]}
    )
    sql, params = definitions.members_sql(normal, as_of=AS_OF, versions={})
    assert "OR 1=1" not in sql
    assert "x' OR 1=1 --" in params.values()
    assert json.dumps(normal)
