"""plotly figures of an experiment readout, rendered by static/js/experiments.js."""

from __future__ import annotations

import plotly.graph_objects as go

PALETTE = ("#64748b", "#4f46e5", "#059669", "#d97706", "#dc2626", "#0891b2")
LAYOUT = {
    "margin": {"l": 56, "r": 16, "t": 36, "b": 40},
    "height": 320,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "#fff",
    "legend": {"orientation": "h", "y": -0.2},
    "font": {"size": 12},
}


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def exposures_figure(result: dict, variant_names: dict[str, str]) -> dict:
    ts = result["timeseries"]
    fig = go.Figure()
    for i, (key, values) in enumerate(ts["exposures"].items()):
        fig.add_trace(
            go.Scatter(
                x=ts["days"], y=values, name=variant_names.get(key, key), line={"color": _color(i)}
            )
        )
    fig.update_layout(title="Cumulative users exposed", yaxis_title="users", **LAYOUT)
    return fig.to_plotly_json()


def primary_rate_figure(result: dict, variant_names: dict[str, str]) -> dict | None:
    ts = result["timeseries"]
    primary = next((m for m in result["metrics"] if m["role"] == "primary"), None)
    if primary is None or not ts["primary"]:
        return None
    fig = go.Figure()
    for i, (key, series) in enumerate(ts["primary"].items()):
        color = _color(i)
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
        title=f"{primary['name']}: cumulative {label}",
        yaxis={"tickformat": ".1%" if primary["kind"] == "conversion" else ""},
        **LAYOUT,
    )
    return fig.to_plotly_json()


def lift_figure(result: dict, variant_names: dict[str, str]) -> dict | None:
    labels, lifts, lows, highs, colors = [], [], [], [], []
    for metric in result["metrics"]:
        for row in metric["variants"]:
            if row["lift"] is None:
                continue
            labels.append(
                f"{metric['name']} ({metric['role']}) · {variant_names.get(row['variant'], row['variant'])}"
            )
            lifts.append(row["lift"])
            lows.append(row["lift"] - row["ci"][0])
            highs.append(row["ci"][1] - row["lift"])
            good = row["ci"][0] > 0 if metric["direction"] == "increase" else row["ci"][1] < 0
            bad = row["ci"][1] < 0 if metric["direction"] == "increase" else row["ci"][0] > 0
            colors.append("#059669" if good else "#dc2626" if bad else "#64748b")
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
    fig.add_vline(x=0, line={"color": "#111827", "width": 1, "dash": "dot"})
    layout = {
        **LAYOUT,
        "height": max(220, 70 * len(labels) + 80),
        "margin": {**LAYOUT["margin"], "l": 260},
    }
    fig.update_layout(
        title="Relative lift vs control with its interval",
        xaxis={"tickformat": "+.1%", "zeroline": False},
        showlegend=False,
        **{k: v for k, v in layout.items() if k != "legend"},
    )
    return fig.to_plotly_json()
