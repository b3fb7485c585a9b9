"""plotly figures of the devices pages (rendered in the browser by the static plotly.js)."""

import json

import plotly.graph_objects as go

from devices.selectors import Series

PLATFORM_COLORS = {"ios": "#6366f1", "android": "#22c55e", "web": "#f59e0b"}


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
        height=320,
        legend={"orientation": "h", "y": -0.15},
        yaxis={"title": "active devices", "rangemode": "tozero"},
        template="plotly_white",
    )
    return fig


def platforms_figure(series: Series) -> dict:
    fig = go.Figure()
    for platform, counts in series.counts.items():
        fig.add_trace(
            go.Scatter(
                x=series.days,
                y=counts,
                name=platform,
                stackgroup="one",
                line={"color": PLATFORM_COLORS.get(platform)},
            )
        )
    return json.loads(_layout(fig, "Active devices by platform").to_json())


def versions_figure(series: Series) -> dict:
    fig = go.Figure()
    for version, counts in series.counts.items():
        fig.add_trace(go.Scatter(x=series.days, y=counts, name=version, mode="lines"))
    return json.loads(_layout(fig, "Active devices by current app version").to_json())
