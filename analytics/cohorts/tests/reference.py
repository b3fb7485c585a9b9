"""A plain pandas evaluation of cohort definitions, independent of the SQL compiler."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def members(frame: pd.DataFrame, definition: dict, *, as_of: dt.datetime, cohorts: dict) -> set:
    """Members of `definition` at `as_of` over the events in `frame` (duplicate uuids once);
    `cohorts` maps a cohort id to its member set."""
    events = frame.drop_duplicates("uuid")
    events = events[events.timestamp < pd.Timestamp(as_of)]
    users = set(events.user_id)
    by_user = {u: g.sort_values(["timestamp", "uuid"]) for u, g in events.groupby("user_id")}

    def rule_ok(rule, user) -> bool:
        if "rules" in rule:
            return group_ok(rule, user)
        own = by_user[user]
        if rule["type"] == "event":
            since = pd.Timestamp(as_of - dt.timedelta(days=rule["days"]))
            n = int(((own.event == rule["event"]) & (own.timestamp >= since)).sum())
            ok = {"gte": n >= rule["count"], "eq": n == rule["count"], "lte": n <= rule["count"]}[
                rule["operator"]
            ]
            return ok if rule["performed"] else not ok
        if rule["type"] == "property":
            values = [
                json.loads(p)[rule["key"]] for p in own.properties if rule["key"] in json.loads(p)
            ]
            has = bool(values)
            op = rule["operator"]
            if op == "is_set":
                return has
            if op == "is_not_set":
                return not has
            latest = _text(values[-1]) if has else ""
            if op in ("gt", "lt"):
                try:
                    number = float(latest)
                except ValueError:
                    return False
                return has and (number > rule["value"] if op == "gt" else number < rule["value"])
            if op == "contains":
                return has and rule["value"] in latest
            same = has and latest == rule["value"]
            return same if op == "eq" else not same
        inside = user in cohorts.get(rule["cohort"], set())
        return inside if rule["member"] else not inside

    def group_ok(group, user) -> bool:
        results = (rule_ok(r, user) for r in group["rules"])
        return all(results) if group["op"] == "and" else any(results)

    return {u for u in users if group_ok(definition, u)}
