"""The period arithmetic every analysis shares (`Period`), against pandas' own periods."""

import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.product.common import Period

FREQ = {Period.DAY: "D", Period.WEEK: "W-SUN", Period.MONTH: "M"}  # W-SUN: weeks end Sunday
days = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31))


@settings(max_examples=300)
@given(
    period=st.sampled_from(list(Period)), day=days, later=st.integers(0, 400), n=st.integers(0, 30)
)
def test_period_arithmetic_matches_pandas(period, day, later, n):
    freq = FREQ[period]
    mine = pd.Period(day, freq=freq)
    start = period.start_of(day)
    assert start == mine.start_time.date()
    assert period.last_day(start) == mine.end_time.date()
    assert period.add(start, n) == (mine + n).start_time.date()
    other = day + dt.timedelta(days=later)
    assert period.offset(start, other) == (pd.Period(other, freq=freq) - mine).n
    expected = [p.start_time.date() for p in pd.period_range(day, other, freq=freq)]
    assert period.starts(day, other) == expected


def test_chart_ticks_fall_on_the_period_starts():
    """Weekly ticks on the Mondays the points sit at (plotly's own are Sundays), monthly ones
    a month apart from the first month, fewer as the range grows."""
    from charts import period_axis

    weeks = [(dt.date(2026, 8, 31) + dt.timedelta(weeks=i)).isoformat() for i in range(14)]
    axis = period_axis("week", weeks)
    assert axis["tick0"] == "2026-08-31" and axis["dtick"] == 2 * 7 * 86400 * 1000
    assert period_axis("week", weeks[:5])["dtick"] == 7 * 86400 * 1000
    months = [Period.MONTH.add(dt.date(2025, 12, 1), i).isoformat() for i in range(13)]
    assert period_axis("month", months[:2]) == {
        "type": "date",
        "tick0": "2025-12-01",
        "dtick": "M1",
        "tickformat": "%b %Y",
    }
    assert period_axis("month", months)["dtick"] == "M2"
    assert period_axis("day", weeks) == {"type": "date"}
    assert period_axis("week", []) == {"type": "date"}
