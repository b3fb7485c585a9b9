"""Demo cohorts for the Cohorts page and the analyses' Users filter (analytics/demo.py runs it)."""

from __future__ import annotations

from analytics.cohorts import services
from analytics.cohorts.models import Cohort

# (name, description, definition); a later one may name an earlier one as {"cohort": "<name>"}
DEMO_COHORTS = [
    (
        "Active renderers",
        "Rendered 3+ videos in the last 30 days",
        {"rules": [{"type": "event", "event": "video_rendered", "count": 3, "days": 30}]},
    ),
    (
        "Free users who render",
        "Free tier, at least one render in the last 30 days",
        {
            "rules": [
                {"type": "property", "key": "user_tier", "operator": "eq", "value": "free"},
                {"type": "event", "event": "video_rendered", "count": 1, "days": 30},
            ]
        },
    ),
    (
        "Signed up, never rendered",
        "A signup in the last 90 days and no render since",
        {
            "rules": [
                {"type": "event", "event": "signup", "count": 1, "days": 90},
                {
                    "type": "event",
                    "event": "video_rendered",
                    "performed": False,
                    "count": 1,
                    "days": 90,
                },
            ]
        },
    ),
    (
        "Dormant payers",
        "Paid in the last 90 days but no session in the last 14, and not an active renderer",
        {
            "rules": [
                {"type": "event", "event": "payment", "count": 1, "days": 90},
                {
                    "type": "event",
                    "event": "session_start",
                    "operator": "eq",
                    "count": 0,
                    "days": 14,
                },
                {"type": "cohort", "cohort": "Active renderers", "member": False},
            ]
        },
    ),
]


def _resolve(node: dict, ids: dict[str, int]) -> dict:
    rules = []
    for rule in node["rules"]:
        if "rules" in rule:
            rules.append(_resolve(rule, ids))
        elif rule.get("type") == "cohort":
            rules.append({**rule, "cohort": ids[rule["cohort"]]})
        else:
            rules.append(rule)
    return {**node, "rules": rules}


def seed(*, stdout) -> None:
    """Create and compute the demo cohorts that do not exist yet (computed here, so the pages
    have sizes before a worker runs)."""
    made = 0
    for name, description, definition in DEMO_COHORTS:
        ids = dict(Cohort.objects.values_list("name", "pk"))
        if name in ids:
            continue
        cohort = services.cohort_create(
            name=name,
            description=description,
            definition=_resolve(definition, ids),
            by="demo",
            queue_compute=False,
        )
        services.cohort_compute(cohort_id=cohort.pk, trigger="demo")
        made += 1
    if made:
        stdout.write(f"analytics: {made} demo cohorts computed")
