"""plotly figures of the devices pages (palette and layout from `charts`), rendered in the
browser by the static plotly.js."""

import json

import plotly.graph_objects as go

import charts
from devices.selectors import Series

PLATFORM_COLORS = {"ios": charts.PALETTE[0], "android": charts.PALETTE[1], "web": charts.PALETTE[2]}


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        charts.layout(
            title=title, height=320, yaxis={"title": "active devices", "rangemode": "tozero"}
        )
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
