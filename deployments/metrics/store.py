"""Product metrics from the analytics store: users served by the canary against users served
by stable, over the current step (the weight is constant there, so the users' split can be
checked against it).

Events name the version that served them in `release` (or `$app_version`; capture writes the
mesh's X-Served-By header there): `<service>:<tag>`, `<service>@<tag>`, the full image, or the
bare tag (which then counts for every service with that tag). A user is in the canary group
when canary served their events in the window, in the stable group when stable did; users
served by both (no sticky routing) are left out and counted. Two kinds of query:

- `rate`: `event` per `per_event` (e.g. `video_completed` per `video_rendered`: render success),
  among users with at least one `per_event`; a ratio metric, delta method over users;
- `conversion`: the share of users who did `event`, among users who did `from_event` (or among
  every user served when `from_event` is empty).

The comparison is the experiments engine's (core.comparisons): the relative lift with the
sequential test, so a judgement repeated every interval keeps its false-alarm rate, and the
sample-ratio check of canary users against the traffic share. A metric fails when the lift is
significant in its bad direction and past `tolerance_percent`, or on a sample-ratio mismatch
(users missing from one side is itself a sign something is wrong). Below `min_users` in either
group it has no data: shown, never deciding.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

from core import event_store
from core.comparisons import Arm, Comparison, compare

PASS, FAIL, NO_DATA = "pass", "fail", "no_data"
RATE, CONVERSION = "rate", "conversion"
DECREASE, INCREASE = "decrease", "increase"  # which way is bad
EVENT_NAME = re.compile(r"^[A-Za-z0-9_$.:-]{1,200}$")

# Per user in the window: which versions served them and their counts of each event (each
# uuid once). `{num}`, `{den}` and `{having}` are fixed SQL chosen from the kind, never user
# text; parameters are in double braces for str.format.
STORE_METRIC_SQL = """
SELECT arm, count() AS users, sum(num) AS num_total, sum(num * num) AS num_squares,
       sum(den) AS den_total, sum(den * den) AS den_squares, sum(num * den) AS products
FROM (
    SELECT user_id,
           multiIf(countIf(release IN {{canary:Array(String)}}) = 0, 'stable',
                   countIf(release IN {{stable:Array(String)}}) = 0, 'canary', 'both') AS arm,
           toFloat64(uniqExactIf(uuid, event = {{event:String}})) AS n_event,
           toFloat64(uniqExactIf(uuid, event = {{per_event:String}})) AS n_per,
           {num} AS num, {den} AS den
    FROM events
    WHERE timestamp >= {{start:DateTime64(3)}} AND timestamp < {{end:DateTime64(3)}}
      AND release IN {{releases:Array(String)}}
    GROUP BY user_id
    {having}
)
GROUP BY arm
"""


class StoreMetricError(ValueError):
    """A store metric's definition is invalid; `field` names the setting at fault."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class StoreMetric:
    """A product metric read from the analytics store (a metric template of kind `store`)."""

    name: str
    query: str = RATE
    event: str = "video_completed"
    per_event: str = "video_rendered"  # rate: the denominator event
    from_event: str = ""  # conversion: the users it counts among ('' = every user served)
    direction: str = DECREASE  # the bad way
    tolerance_percent: float = 0.0  # a significant change smaller than this still passes
    min_users: int = 100  # per group, before the metric decides anything
    alpha: float = 0.05
    tuning: float = 1000.0  # users at which the sequential interval is tightest
    dry_run: bool = False  # measured and shown, never decides

    @classmethod
    def from_dict(cls, data: dict) -> StoreMetric:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"kind"})
        if unknown:
            raise StoreMetricError(unknown[0], "unknown setting")
        try:
            metric = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise StoreMetricError("name", str(exc)) from None
        metric.check()
        return metric

    def check(self) -> None:
        if not isinstance(self.name, str) or not re.match(
            r"^[a-z0-9_][a-z0-9_.-]{0,62}$", self.name
        ):
            raise StoreMetricError("name", "lowercase letters, digits, _ . -; at most 63")
        if self.query not in (RATE, CONVERSION):
            raise StoreMetricError("query", f"{RATE} or {CONVERSION}")
        if self.direction not in (DECREASE, INCREASE):
            raise StoreMetricError("direction", f"{DECREASE} or {INCREASE} (the bad way)")
        events = {"event": self.event}
        if self.query == RATE:
            events["per_event"] = self.per_event
        elif self.from_event:
            events["from_event"] = self.from_event
        for field, value in events.items():
            if not isinstance(value, str) or not EVENT_NAME.match(value):
                raise StoreMetricError(field, "an event name ([A-Za-z0-9_$.:-], at most 200)")
        numbers = {
            "tolerance_percent": (self.tolerance_percent, 0, 100),
            "min_users": (self.min_users, 2, 10**9),
            "alpha": (self.alpha, 1e-6, 0.5),
            "tuning": (self.tuning, 1, 10**9),
        }
        for field, (value, low, high) in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StoreMetricError(field, "a number")
            if not low <= value <= high:
                raise StoreMetricError(field, f"between {low:g} and {high:g}")

    def as_dict(self) -> dict:
        return {"kind": "store", **asdict(self)}

    @property
    def statistic(self) -> str:
        return "ratio" if self.query == RATE else "proportion"

    def describe(self) -> str:
        if self.query == RATE:
            return f"{self.event} per {self.per_event}"
        among = self.from_event or "any event"
        return f"users with {self.event} among users with {among}"


def releases_of(service, tag: str) -> list[str]:
    """Every spelling of one version of `service` an event's `release` may carry."""
    return [f"{service.name}:{tag}", f"{service.name}@{tag}", service.image_for(tag), tag]


def _fragments(metric: StoreMetric) -> dict:
    if metric.query == RATE:
        return {"num": "n_event", "den": "n_per", "having": "HAVING n_per > 0"}
    if metric.from_event:
        return {"num": "toFloat64(n_event > 0)", "den": "0.0", "having": "HAVING n_per > 0"}
    return {"num": "toFloat64(n_event > 0)", "den": "0.0", "having": ""}


def store_metric_arms(
    metric: StoreMetric,
    *,
    service,
    canary_tag: str,
    stable_tag: str,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, Arm]:
    """Per group (`canary`, `stable`, `both`): users and the sums the statistics need."""
    canary, stable = releases_of(service, canary_tag), releases_of(service, stable_tag)
    per_event = metric.per_event if metric.query == RATE else metric.from_event or metric.event
    rows = event_store.query(
        STORE_METRIC_SQL.format(**_fragments(metric)),
        {
            "canary": canary,
            "stable": stable,
            "releases": canary + stable,
            "event": metric.event,
            "per_event": per_event,
            "start": start,
            "end": end,
        },
        consistent=True,
    )
    arms = {name: Arm(0, 0.0, 0.0) for name in ("canary", "stable", "both")}
    for row in rows:
        arms[row["arm"]] = Arm(
            users=int(row["users"]),
            numerator=float(row["num_total"]),
            numerator_squares=float(row["num_squares"]),
            denominator=float(row["den_total"]),
            denominator_squares=float(row["den_squares"]),
            products=float(row["products"]),
        )
    return arms


def store_metric_judge(
    metric: StoreMetric, *, canary: Arm, stable: Arm, canary_share: float, both: int = 0
) -> dict:
    """The verdict of one look: pass, fail or no_data, with the figures shown on the page.

    `canary_share` is the percentage of traffic (0-100) the canary serves."""
    result = {
        "metric": metric.name,
        "kind": "store",
        "describe": metric.describe(),
        "canary_users": canary.users,
        "stable_users": stable.users,
        "both_users": both,
        "canary": None,
        "stable": None,
        "lift": None,
        "ci": None,
        "p_value": None,
        "srm_p_value": None,
        "dry_run": metric.dry_run,
        "verdict": NO_DATA,
        "why": "",
    }
    if not 0 < canary_share < 100:
        result["why"] = f"{metric.name}: no comparison at {canary_share:g} % canary traffic"
        return result
    if min(canary.users, stable.users) < metric.min_users:
        result["why"] = (
            f"{metric.name}: {canary.users} canary and {stable.users} stable users "
            f"(at least {metric.min_users} each needed)"
        )
        return result
    found: Comparison = compare(
        kind=metric.statistic,
        control=stable,
        treatment=canary,
        treatment_share=canary_share / 100,
        alpha=metric.alpha,
        tuning=metric.tuning,
    )
    result.update(
        canary=found.treatment_value,
        stable=found.control_value,
        lift=found.lift,
        ci=list(found.ci) if found.ci else None,
        p_value=found.p_value,
        srm_p_value=found.srm_p_value,
    )
    share = 100 * canary.users / (canary.users + stable.users)
    if found.srm:
        result["verdict"] = FAIL
        result["why"] = (
            f"{metric.name}: sample ratio mismatch: canary has {share:.1f} % of the users for "
            f"{canary_share:g} % of the traffic (p={found.srm_p_value:.2g})"
        )
        return result
    if found.lift is None:
        result["why"] = f"{metric.name}: no estimate (an empty or constant group)"
        return result
    low, high = found.ci
    tolerance = metric.tolerance_percent / 100
    harmful = (
        high < 0 and found.lift < -tolerance
        if metric.direction == DECREASE
        else low > 0 and found.lift > tolerance
    )
    result["verdict"] = FAIL if harmful else PASS
    if harmful:
        result["why"] = (
            f"{metric.name} ({metric.describe()}) {found.lift:+.1%}: canary {found.treatment_value:.4g}"
            f" vs stable {found.control_value:.4g} over {canary.users:,} and {stable.users:,} users"
            f" (sequential p={found.p_value:.2g})"
        )
    return result


def store_metric_evaluate(metric: StoreMetric, *, canary_share: float, **window) -> dict:
    """Read the groups from the store (`window`: store_metric_arms' service, tags, start, end)
    and judge them: one look."""
    arms = store_metric_arms(metric, **window)
    return store_metric_judge(
        metric,
        canary=arms["canary"],
        stable=arms["stable"],
        canary_share=canary_share,
        both=arms["both"].users,
    )


# The `store` kind of metric templates (deployments/metrics/templates.py) --------------------

# A store template's `params`; `query` is `rate` or `conversion`, `direction` says which values
# are better (`higher` for a success rate: a decrease is the bad way).
STORE_PARAMS = (
    "event",
    "per_event",
    "from_event",
    "tolerance_percent",
    "min_users",
    "alpha",
    "tuning",
)


def metric_from_template(template: dict) -> StoreMetric:
    params = dict(template.get("params") or {})
    unknown = sorted(set(params) - set(STORE_PARAMS))
    if unknown:
        raise StoreMetricError(f"params.{unknown[0]}", "unknown setting of the store kind")
    return StoreMetric.from_dict(
        {
            **params,
            "name": template.get("name") or "",
            "query": template.get("query") or RATE,
            "direction": INCREASE if template.get("direction") == "lower" else DECREASE,
            "dry_run": bool(template.get("dry_run")),
        }
    )


# The demo services' product metric: render success (video_completed per video_rendered) of
# the users each version serves. Inconclusive while a step has too few users (the step waits),
# paused only after 10 such looks.
RENDER_SUCCESS_TEMPLATE = {
    "name": "render_success",
    "kind": "store",
    "query": RATE,
    "params": {"event": "video_completed", "per_event": "video_rendered", "min_users": 50},
    "unit": "ratio",
    "direction": "higher",
    "weight": 0.0,  # judged by its own test over users, not by the Mann-Whitney score
    "failure_limit": 2,
    "inconclusive_limit": 10,
}


class StoreKind:
    """Product metrics from the analytics store (see the module's docstring); each look judges
    the current step's users with the sequential test, so the kind sets the verdict itself."""

    label = "analytics store (product events per version)"

    def validate(self, template: dict) -> dict[str, str]:
        try:
            metric_from_template(template)
        except StoreMetricError as exc:
            field = exc.field
            if field not in ("name", "query", "direction") and not field.startswith("params."):
                field = f"params.{field}"
            return {field: exc.problem}
        return {}

    def measure(self, templates: list[dict], context) -> dict:
        from deployments.metrics.templates import FAIL, INCONCLUSIVE, PASS, Measurement

        rollout, service = context.rollout, context.service
        start = rollout.step_started_at or rollout.started_at or context.now
        emit = getattr(context.backend, "emit_product_traffic", None)
        if emit is not None and "store:emitted" not in context.cache:
            context.cache["store:emitted"] = emit(
                service,
                canary_tag=rollout.image_tag,
                stable_tag=rollout.from_tag,
                start=max(start, rollout.last_sample_at or start),
                end=context.now,
            )
        share = _canary_share(context)
        verdicts = {PASS: PASS, FAIL: FAIL, NO_DATA: INCONCLUSIVE}
        out = {}
        for template in templates:
            metric = metric_from_template(template)
            try:
                result = store_metric_evaluate(
                    metric,
                    canary_share=share,
                    service=service,
                    canary_tag=rollout.image_tag,
                    stable_tag=rollout.from_tag,
                    start=start,
                    end=context.now,
                )
            except event_store.EventStoreUnavailable as exc:
                out[metric.name] = Measurement(problems=[f"analytics store: {exc}"])
                continue
            verdict = verdicts[result["verdict"]]
            if not context.stable_serving:
                verdict = PASS  # at 100 % nothing to compare with: the limits of other metrics
            out[metric.name] = Measurement(
                canary=result["canary"],
                stable=result["stable"],
                verdict=verdict,
                why=result["why"] if verdict != PASS else "",
                detail={k: v for k, v in result.items() if k not in ("metric", "why", "verdict")},
            )
        return out


def _canary_share(context) -> float:
    """% of requests the canary serves: the simulated cluster knows it with match rules; on
    Kubernetes it is the weight (requests matching a rule come on top, unknown here)."""
    share = getattr(getattr(context.backend, "cluster", None), "canary_share", None)
    return float(share(context.service)) if share else float(context.rollout.current_weight)
