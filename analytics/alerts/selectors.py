"""What an alert measures: its trend series at the period it checks and the one before.

The checked period is the last complete one (or, with `running_period`, the one still
running); the trend runs over just those two periods, past the result cache so a check sees
the events that arrived since the last one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.alerts.models import MetricAlert
from analytics.product.common import Period
from core.errors import InvalidRequest


@dataclass(frozen=True)
class Measurement:
    period: dt.date  # the start of the period checked
    value: float | None  # None: a formula divided by 0
    previous_period: dt.date
    previous: float | None

    @property
    def change(self) -> float | None:
        """(value - previous) / previous; None when either is missing or previous is 0."""
        if self.value is None or self.previous is None or self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous)


def checked_periods(alert: MetricAlert, today: dt.date) -> tuple[Period, dt.date, dt.date]:
    """(period kind, start of the period checked, start of the one before)."""
    period = Period(alert.params.get("period") or "day")
    running = period.start_of(today)
    checked = running if alert.running_period else period.add(running, -1)
    return period, checked, period.add(checked, -1)


def alert_params(alert: MetricAlert, today: dt.date) -> dict:
    """The trend parameters of a check: the alert's, over its two periods, no comparison."""
    period, checked, previous = checked_periods(alert, today)
    params = {k: v for k, v in alert.params.items() if k not in ("compare", "date_from", "date_to")}
    params["period"] = period.value
    params["date_from"] = previous.isoformat()
    params["date_to"] = (today if alert.running_period else period.last_day(checked)).isoformat()
    return params


def pick_series(alert: MetricAlert, series: list[dict]) -> dict:
    current = [s for s in series if s.get("compare", "current") == "current"]
    if alert.series == "formula":
        mine = [s for s in current if s["event"] is None]
    else:
        mine = [s for s in current if s["event"] is not None and s["label"] == alert.series]
    if alert.params.get("breakdown"):
        mine = [s for s in mine if s["breakdown_value"] == alert.breakdown_value]
    if not mine:
        raise InvalidRequest("series", f"the trend has no series {alert.series!r}")
    return mine[0]


def alert_measure(alert: MetricAlert, today: dt.date | None = None) -> Measurement:
    """Raises rest_framework's ValidationError (stored parameters no longer valid),
    InvalidRequest (no such series) or a store error."""
    from analytics.product.registry import analysis_result
    from analytics.store.cache import cache_refresh

    today = today or dt.datetime.now(dt.UTC).date()
    _period, checked, previous = checked_periods(alert, today)
    with cache_refresh():
        result = analysis_result(name="trends", params=alert_params(alert, today))
    points = {p["period"]: p["value"] for p in pick_series(alert, result["series"])["points"]}
    value = points.get(checked.isoformat(), 0)
    before = points.get(previous.isoformat(), 0)
    return Measurement(checked, value, previous, before)


def breached(alert: MetricAlert, m: Measurement) -> bool:
    C = MetricAlert.Condition
    if alert.condition == C.ABOVE:
        return m.value is not None and m.value > alert.threshold
    if alert.condition == C.BELOW:
        return m.value is not None and m.value < alert.threshold
    change = m.change
    if change is None:  # from 0 (or to/from a missing value) there is no relative change
        return False
    if alert.condition == C.INCREASE:
        return change * 100 > alert.threshold
    return -change * 100 > alert.threshold


def recent_events(limit: int = 20):
    """The latest fired and resolved episodes of every alert (the Alerts page)."""
    from analytics.alerts.models import MetricAlertEvent

    return MetricAlertEvent.objects.select_related("alert")[:limit]


def firing_alerts():
    return MetricAlert.objects.filter(state=MetricAlert.State.FIRING)
