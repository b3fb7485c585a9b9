"""plotly figures of an experiment readout (palette and layout from `charts`), rendered by
static/js/experiments.js."""

from __future__ import annotations

import plotly.graph_objects as go

import charts

HEIGHT = 320


def exposures_figure(result: dict, variant_names: dict[str, str]) -> dict:
    ts = result["timeseries"]
    fig = go.Figure()
    for i, (key, values) in enumerate(ts["exposures"].items()):
        fig.add_trace(
            go.Scatter(
                x=ts["days"],
                y=values,
                name=variant_names.get(key, key),
                line={"color": charts.color(i)},
            )
        )
    fig.update_layout(
        charts.layout(
            title="Cumulative users exposed",
            height=HEIGHT,
            xaxis={"type": "date"},
            yaxis={"title": {"text": "users"}},
        )
    )
    return fig.to_plotly_json()


def primary_rate_figure(result: dict, variant_names: dict[str, str]) -> dict | None:
    ts = result["timeseries"]
    primary = next((m for m in result["metrics"] if m["role"] == "primary"), None)
    if primary is None or not ts["primary"]:
        return None
    fig = go.Figure()
    for i, (key, series) in enumerate(ts["primary"].items()):
        color = charts.color(i)
        fig.add_trace(
            go.Scatter(
                x=ts["days"] + ts["days"][::-1],
                y=series["high"] + series["low"][::-1],
                fill="toself",
                fillcolor=color,
                opacity=0.15,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=ts["days"],
                y=series["rate"],
                name=variant_names.get(key, key),
                line={"color": color},
            )
        )
    label = "conversion rate" if primary["kind"] == "conversion" else "mean per user"
    fig.update_layout(
        charts.layout(
            title=f"{primary['name']}: cumulative {label}",
            height=HEIGHT,
            xaxis={"type": "date"},
            yaxis={"tickformat": ".1%" if primary["kind"] == "conversion" else ""},
        )
    )
    return fig.to_plotly_json()


def lift_figure(result: dict, variant_names: dict[str, str]) -> dict | None:
    labels, lifts, lows, highs, colors = [], [], [], [], []
    for metric in result["metrics"]:
        for row in metric["variants"]:
            c = row["comparison"]
            if c is None or c["lift"] is None:
                continue
            labels.append(
                f"{metric['name']} ({metric['role']}) · {variant_names.get(row['key'], row['key'])}"
            )
            lifts.append(c["lift"])
            lows.append(c["lift"] - c["ci"][0])
            highs.append(c["ci"][1] - c["lift"])
            good = c["ci"][0] > 0 if metric["direction"] == "increase" else c["ci"][1] < 0
            bad = c["ci"][1] < 0 if metric["direction"] == "increase" else c["ci"][0] > 0
            colors.append(charts.POSITIVE if good else charts.NEGATIVE if bad else charts.NEUTRAL)
    if not labels:
        return None
    fig = go.Figure(
        go.Scatter(
            x=lifts,
            y=labels,
            mode="markers",
            marker={"color": colors, "size": 10},
            error_x={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows},
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.add_vline(x=0, line={"color": charts.TEXT, "width": 1, "dash": "dot"})
    layout = charts.layout(
        title="Relative lift vs control with its "
        + ("credible" if result["engine"] == "bayesian" else "confidence")
        + " interval",
        height=max(220, 70 * len(labels) + 80),
        xaxis={"tickformat": "+.1%", "zeroline": False},
        showlegend=False,
    )
    layout["margin"]["l"] = 260
    del layout["legend"]
    fig.update_layout(layout)
    return fig.to_plotly_json()
