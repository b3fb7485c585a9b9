"""The one palette and layout of every plotly figure in the console, whatever the app.

Figures are plain plotly JSON (`{"data": [...], "layout": {...}}`), rendered in the browser by
the locally served plotly.js; apps build their traces and take colours and layout from here.
"""

from __future__ import annotations

PALETTE = (
    "#4f46e5",  # indigo: the main series
    "#16a34a",  # green
    "#d97706",  # amber
    "#dc2626",  # red
    "#0891b2",  # cyan
    "#9333ea",  # purple
    "#64748b",  # slate
    "#db2777",  # pink
    "#65a30d",  # lime
    "#0d9488",  # teal
    "#c2410c",  # orange
    "#7c3aed",  # violet
    "#be123c",  # rose
)
POSITIVE = PALETTE[1]  # a result that is good news
NEGATIVE = PALETTE[3]  # bad news
NEUTRAL = PALETTE[6]  # neither, or a baseline
TEXT = "#111827"
BACKGROUND_SERIES = "#c7d2fe"  # a light indigo behind the main series (e.g. volume bars)
# low to high, for heatmaps
SEQUENTIAL = [[0, "#eef2ff"], [0.5, "#818cf8"], [1, "#312e81"]]


def color(index: int) -> str:
    """The palette's colour for the `index`-th series (cycling)."""
    return PALETTE[index % len(PALETTE)]


def layout(*, title: str | None = None, **extra) -> dict:
    """The layout every figure starts from; `extra` keys replace the defaults (plotly names).
    A title gets room above the plot."""
    base = {
        "margin": {"l": 50, "r": 50, "t": 40 if title else 10, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "closest",
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "colorway": list(PALETTE),
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#fff",
    }
    if title:
        base["title"] = {"text": title, "font": {"size": 14}}
    base.update(extra)
    return base


def two_axes(left: str, right: str, **extra) -> dict:
    """The layout with a second y axis on the right (for traces with "yaxis": "y2")."""
    return layout(
        yaxis={"title": left, "rangemode": "tozero"},
        yaxis2={"overlaying": "y", "side": "right", "title": right, "rangemode": "tozero"},
        **extra,
    )


def period_axis(period: str, starts: list[str]) -> dict:
    """An x axis whose ticks fall on the period starts ("day", "week" or "month") the points
    sit at (plotly's own date ticks put weekly ones on Sundays, and weekly ticks under two
    monthly points)."""
    if not starts or period == "day":
        return {"type": "date"}
    count = len(set(starts))
    if period == "month":
        step = 1 if count <= 7 else 2 if count <= 14 else 3
        return {"type": "date", "tick0": min(starts), "dtick": f"M{step}", "tickformat": "%b %Y"}
    step = -(-count // 8)  # at most about 8 ticks
    return {
        "type": "date",
        "tick0": min(starts),
        "dtick": step * 7 * 86400000,
        "tickformat": "%b %d",
    }


def line_series(groups: dict[str, list[dict]], *, x: str, y: str) -> list[dict]:
    """One lines+markers trace per group, in name order; `x` and `y` name the rows' keys."""
    return [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": [row[x] for row in rows],
            "y": [row[y] for row in rows],
        }
        for name, rows in sorted(groups.items())
    ]


def figure(data: list[dict], **layout_extra) -> dict:
    """A figure of `data` traces on the shared layout."""
    return {"data": data, "layout": layout(**layout_extra)}


RELEASE_COLORS = {"start": PALETTE[6], "promoted": POSITIVE, "rollback": NEGATIVE}


def with_releases(figure: dict, markers: list[dict]) -> dict:
    """`figure` with a dotted vertical line and a label per release marker (`at`, `kind`:
    start, promoted or rollback, `label`), when its x axis holds dates."""
    layout = figure.get("layout", {})
    if not markers or layout.get("xaxis", {}).get("type") != "date":
        return figure
    shapes, notes = list(layout.get("shapes", [])), list(layout.get("annotations", []))
    for marker in markers:
        color = RELEASE_COLORS[marker["kind"]]
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": marker["at"],
                "x1": marker["at"],
                "y0": 0,
                "y1": 1,
                "line": {"color": color, "width": 1, "dash": "dot"},
            }
        )
        notes.append(
            {
                "x": marker["at"],
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "text": marker["label"],
                "showarrow": False,
                "textangle": -90,
                "xanchor": "right",
                "yanchor": "top",
                "font": {"size": 9, "color": color},
            }
        )
    return {**figure, "layout": {**layout, "shapes": shapes, "annotations": notes}}
