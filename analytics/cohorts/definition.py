"""A behavioural cohort's definition: its JSON form, validation and the SQL that lists members.

    {"op": "and" | "or", "rules": [rule or group, ...]}

rules:
- `{"type": "event", "event": "render_completed", "performed": true, "operator": "gte",
  "count": 3, "days": 30}`: did (`performed: false`: did not) do the event `operator` `count`
  times in the `days` days before the computation (duplicate uuids count once);
- `{"type": "property", "key": "user_tier", "operator": "eq", "value": "pro"}`: the user's
  latest value of that event property (the value on their newest event that carries the key;
  strings as they are, other JSON values as their JSON text) equals / differs / contains / is
  greater or less than (as numbers) `value`, or the key `is_set` / `is_not_set`;
- `{"type": "cohort", "cohort": 7, "member": true}`: is (or is not) in another saved cohort
  (its current members);
- a nested group `{"op": ..., "rules": [...]}`.

The universe is every user with an event before the computation. Every value is a query
parameter; every identifier and operator comes from the allow-lists here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from core.errors import Unprocessable

# The grammar of a definition past `an object` is not in the schema: its problems answer 422.
InvalidRequest = Unprocessable

MAX_RULES = 20
MAX_DEPTH = 3
MAX_DAYS = 3 * 366
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.\-$]{1,100}$")
PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_.\-$]{1,64}$")
COUNT_OPERATORS = {"gte": ">=", "eq": "=", "lte": "<="}
PROPERTY_OPERATORS = ("eq", "neq", "contains", "gt", "lt", "is_set", "is_not_set")
GROUP_OPS = ("and", "or")


def _require(cond: bool, path: str, problem: str) -> None:
    if not cond:
        raise InvalidRequest(path, problem)


def _int(node: dict, key: str, path: str, low: int, high: int) -> int:
    value = node.get(key)
    _require(
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
        f"{path}.{key}",
        f"an integer from {low} to {high}",
    )
    return value


def validate(definition, *, path: str = "definition", depth: int = 1) -> dict:
    """The definition in normal form, or InvalidRequest naming the faulty part
    (`definition.rules[1].count`)."""
    _require(isinstance(definition, dict), path, "an object with `op` and `rules`")
    op = definition.get("op", "and")
    _require(op in GROUP_OPS, f"{path}.op", "one of and, or")
    rules = definition.get("rules")
    _require(
        isinstance(rules, list) and 1 <= len(rules) <= MAX_RULES,
        f"{path}.rules",
        f"a list of 1-{MAX_RULES} rules",
    )
    out = []
    for i, rule in enumerate(rules):
        where = f"{path}.rules[{i}]"
        _require(isinstance(rule, dict), where, "an object")
        if "rules" in rule:
            _require(depth < MAX_DEPTH, where, f"groups nest at most {MAX_DEPTH} deep")
            out.append(validate(rule, path=where, depth=depth + 1))
        else:
            out.append(_validate_rule(rule, where))
    return {"op": op, "rules": out}


def _validate_rule(rule: dict, path: str) -> dict:
    kind = rule.get("type")
    if kind == "event":
        event = rule.get("event")
        _require(
            isinstance(event, str) and bool(EVENT_NAME.match(event)),
            f"{path}.event",
            "an event name: 1-100 letters, digits, '_', '.', '-' or '$'",
        )
        performed = rule.get("performed", True)
        _require(isinstance(performed, bool), f"{path}.performed", "true or false")
        operator = rule.get("operator", "gte")
        _require(operator in COUNT_OPERATORS, f"{path}.operator", "one of gte, eq, lte")
        return {
            "type": "event",
            "event": event,
            "performed": performed,
            "operator": operator,
            "count": _int({"count": rule.get("count", 1)}, "count", path, 0, 1_000_000),
            "days": _int({"days": rule.get("days", 30)}, "days", path, 1, MAX_DAYS),
        }
    if kind == "property":
        key = rule.get("key")
        _require(
            isinstance(key, str) and bool(PROPERTY_KEY.match(key)),
            f"{path}.key",
            "1-64 letters, digits, '_', '.', '-' or '$'",
        )
        operator = rule.get("operator", "eq")
        _require(
            operator in PROPERTY_OPERATORS,
            f"{path}.operator",
            f"one of {', '.join(PROPERTY_OPERATORS)}",
        )
        value = rule.get("value", "")
        if operator in ("gt", "lt"):
            _require(
                isinstance(value, int | float) and not isinstance(value, bool),
                f"{path}.value",
                "a number",
            )
            value = float(value)
        elif operator in ("eq", "neq", "contains"):
            _require(
                isinstance(value, str) and len(value) <= 200,
                f"{path}.value",
                "a string of 0-200 characters",
            )
        else:
            value = ""
        return {"type": "property", "key": key, "operator": operator, "value": value}
    if kind == "cohort":
        cohort = _int(rule, "cohort", path, 1, 2**31 - 1)
        member = rule.get("member", True)
        _require(isinstance(member, bool), f"{path}.member", "true or false")
        return {"type": "cohort", "cohort": cohort, "member": member}
    raise InvalidRequest(f"{path}.type", "one of event, property, cohort")


def referenced_cohorts(definition: dict) -> set[int]:
    found = set()
    for rule in definition.get("rules", []):
        if "rules" in rule:
            found |= referenced_cohorts(rule)
        elif rule.get("type") == "cohort":
            found.add(rule["cohort"])
    return found


@dataclass
class _Compiler:
    as_of: dt.datetime
    versions: dict[int, int]  # cohort id -> its current version
    columns: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def param(self, value, kind: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{kind}}}"

    def column(self, sql: str) -> str:
        alias = f"c{len(self.columns)}"
        self.columns.append(f"{sql} AS {alias}")
        return alias

    def group(self, node: dict) -> str:
        joiner = " AND " if node["op"] == "and" else " OR "
        return "(" + joiner.join(self.rule(r) for r in node["rules"]) + ")"

    def rule(self, rule: dict) -> str:
        if "rules" in rule:
            return self.group(rule)
        kind = rule["type"]
        if kind == "event":
            since = (self.as_of - dt.timedelta(days=rule["days"])).strftime("%Y-%m-%d %H:%M:%S.%f")
            cond = (
                f"event = {self.param(rule['event'], 'String')} AND timestamp >= "
                f"toDateTime64({self.param(since[:-3], 'String')}, 3, 'UTC')"
            )
            alias = self.column(f"uniqExactIf(uuid, {cond})")
            test = (
                f"{alias} {COUNT_OPERATORS[rule['operator']]} {self.param(rule['count'], 'UInt64')}"
            )
            return test if rule["performed"] else f"NOT ({test})"
        if kind == "property":
            key = self.param(rule["key"], "String")
            has = self.column(f"countIf(JSONHas(properties, {key})) > 0")
            op = rule["operator"]
            if op == "is_set":
                return has
            if op == "is_not_set":
                return f"NOT {has}"
            text = (
                f"if(JSONType(properties, {key}) = 'String', JSONExtractString(properties, {key}), "
                f"JSONExtractRaw(properties, {key}))"
            )
            value = self.column(
                f"argMaxIf({text}, (timestamp, toString(uuid)), JSONHas(properties, {key}))"
            )
            if op in ("gt", "lt"):
                sign = ">" if op == "gt" else "<"
                number = f"toFloat64OrNull({value})"
                return f"({has} AND {number} {sign} {self.param(rule['value'], 'Float64')})"
            if op == "contains":
                return f"({has} AND position({value}, {self.param(rule['value'], 'String')}) > 0)"
            same = f"({has} AND {value} = {self.param(rule['value'], 'String')})"
            return same if op == "eq" else f"NOT {same}"
        members = (
            "user_id IN (SELECT user_id FROM cohort_members WHERE cohort_id = "
            f"{self.param(rule['cohort'], 'UInt64')} AND version = "
            f"{self.param(self.versions.get(rule['cohort'], 0), 'UInt32')})"
        )
        return members if rule["member"] else f"NOT {members}"


def members_sql(
    definition: dict, *, as_of: dt.datetime, versions: dict[int, int]
) -> tuple[str, dict]:
    """SQL selecting `user_id` of every member at `as_of`, and its parameters."""
    compiler = _Compiler(as_of=as_of, versions=versions)
    where = compiler.group(definition)
    end = compiler.param(as_of.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "String")
    columns = ", ".join(["user_id", *compiler.columns])
    sql = (
        f"SELECT user_id FROM (SELECT {columns} FROM events "
        f"WHERE timestamp < toDateTime64({end}, 3, 'UTC') GROUP BY user_id) WHERE {where}"
    )
    return sql, compiler.params
