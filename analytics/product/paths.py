"""Paths: what users do right after a start event, or right before an end event.

Each user has at most one path:
- after `start_event`: from their first `start_event` in [date_from, date_to], that event and
  the events after it;
- before `end_event`: from their last `end_event` in the range, the events before it and it;
- with neither: from their first event in the range, that event and those after it.
A path holds at most `steps` events (2-10), taken in time order (ties: by event name; events of one name at
one millisecond count once; `exclude`d events are left out as if never sent), and is
bounded either by a session (`bound=session`: it stops at the first gap between consecutive
events longer than `bound_minutes`) or by a window (`bound=window`: only events within
`bound_minutes` of the start or end event). Steps are numbered in time order: the start
event is step 1; before an end event, the end event is step `steps` and a shorter path
occupies the last steps.

Figures count users. At each step the `top` most frequent events (by users; ties by name)
keep their name and the rest become "$other", so the flows of the Sankey add up and at most
(top + 1)² edges join two steps. An edge (step k, source, target) counts the users whose
path has `source` at step k and `target` at step k + 1; its users are listed by
`path_edge_users`. The most common whole sequences are listed too, without "$other".

Input, selector, presenter and pages of paths and of the users on an edge.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from enum import StrEnum

from django.shortcuts import redirect
from django.urls import reverse
from rest_framework import serializers

import charts
from analytics.product.common import (
    EVENT_NAME,
    InCohortInput,
    PageInput,
    RangeInput,
    UserFilter,
    page_window,
    query_timeout,
)
from analytics.product.pages import (
    Analysis,
    Table,
    analysis_view,
    query_string,
    select_field,
    text_field,
    users_panel,
)
from analytics.store import store
from analytics.store.cache import cache_ttl, cached
from core.errors import UNPROCESSABLE
from core.roles import role_required

OTHER = "$other"
MIN_STEPS, MAX_STEPS = 2, 10
MAX_TOP = 20
MAX_EXCLUDE = 20
MAX_BOUND_MINUTES = 30 * 24 * 60
TOP_PATHS = 20


class Bound(StrEnum):
    SESSION = "session"
    WINDOW = "window"


@dataclass(frozen=True)
class PathsQuery:
    date_from: dt.date
    date_to: dt.date
    start_event: str = ""
    end_event: str = ""
    steps: int = 5
    bound: Bound = Bound.SESSION
    bound_minutes: int = 30
    exclude: tuple[str, ...] = ()
    top: int = 5
    user_filter: UserFilter | None = None

    @property
    def backward(self) -> bool:
        return bool(self.end_event)

    @property
    def span_ms(self) -> int:
        """How far from the start (or end) event a path can reach."""
        bound = self.bound_minutes * 60_000
        return bound * (self.steps - 1) if self.bound is Bound.SESSION else bound


def per_user_sql(query: PathsQuery) -> str:
    """One row per user with a path: user_id, path (event names in time order).

    It reads each user's distinct times per event (the funnel rollup, migration 0012)
    rather than raw events: a tenth of the rows, no uuid, no join. Repeated rows of a
    not-yet-merged rollup and events of one name at one millisecond count once."""
    users = f" AND {query.user_filter.sql('user_id')}" if query.user_filter else ""
    anchor = "{anchor:String}"
    if query.start_event or query.end_event:
        arrays = f"arrayFlatten(arrayFilter((ts, e) -> e = {anchor}, tms, evn))"
        is_anchor = f"x.1 = t0 AND x.2 = {anchor}"
    else:
        arrays = "arrayFlatten(tms)"
        is_anchor = "x.1 = t0"
    t0 = "arrayMax(cands)" if query.backward else "arrayMin(cands)"
    if query.backward:
        # the events up to the end event, latest first
        seq = f"arrayReverse(arraySlice(evs, 1, toUInt64(arrayLastIndex(x -> {is_anchor}, evs))))"
        near = "t >= t0 - {span:Int64} AND t <= t0"
    else:
        seq = f"arraySlice(evs, arrayFirstIndex(x -> {is_anchor}, evs))"
        near = "t >= t0 AND t <= t0 + {span:Int64}"
    if query.bound is Bound.SESSION:
        # the path stops before the first gap longer than the bound
        gaps = "arrayMap(d -> abs(d), arrayDifference(arrayMap(x -> x.1, sub)))"
        cut = (
            f"arrayFirstIndex((g, i) -> i > 1 AND g > {{bound:Int64}}, {gaps}, arrayEnumerate(sub))"
        )
        # both branches Int64: 24.8 finds no common type for UInt64 and Int64
        length = f"toUInt64(if({cut} = 0, toInt64(length(sub)), toInt64({cut}) - 1))"
    else:
        length = "length(sub)"  # `near` already keeps only events within the window
    names = f"arrayMap(x -> x.2, arraySlice(sub, 1, {length}))"
    path = f"arrayReverse({names})" if query.backward else names
    events = f"arrayMap((e, ts) -> arrayMap(t -> (t, e), arrayFilter(t -> {near}, ts)), evn, tms)"
    return (
        f"SELECT user_id, {path} AS path FROM ("
        f"  SELECT user_id, arraySlice({seq}, 1, {{steps:UInt8}}) AS sub FROM ("
        "    SELECT user_id, arrayFilter(t -> t >= {from_ms:Int64} AND t < {end_ms:Int64}, "
        f"      {arrays}) AS cands, {t0} AS t0,"
        f"      arraySort(arrayDistinct(arrayFlatten({events}))) AS evs"
        "    FROM ("
        "      SELECT user_id, groupArray(toString(event)) AS evn,"
        "        groupArray(arrayMap(t -> toUnixTimestamp64Milli(t), times)) AS tms"
        "      FROM panalytics_user_event_times"
        f"      WHERE event NOT IN {{exclude:Array(String)}}{users} GROUP BY user_id"
        "    ) WHERE notEmpty(cands)"
        "  )"
        ")"
    )


def _params(query: PathsQuery) -> dict:
    start = dt.datetime.combine(query.date_from, dt.time(), dt.UTC)
    end = dt.datetime.combine(query.date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
    params = {
        "anchor": query.start_event or query.end_event,
        "exclude": list(query.exclude),
        "span": query.span_ms,
        "bound": query.bound_minutes * 60_000,
        "steps": query.steps,
        "from_ms": int(start.timestamp() * 1000),
        "end_ms": int(end.timestamp() * 1000),
    }
    if query.user_filter:
        params.update(query.user_filter.params)
    return params


def paths(query: PathsQuery) -> dict:
    return cached("paths", {"query": query}, lambda: _paths(query), ttl=cache_ttl(query.date_to))


def _paths(query: PathsQuery) -> dict:
    sql = f"SELECT path, count() AS users FROM ({per_user_sql(query)}) GROUP BY path"
    rows = store().query(sql, _params(query), timeout=query_timeout())
    return summarize(query, [(tuple(r["path"]), int(r["users"])) for r in rows])


def positions(query: PathsQuery, path: tuple[str, ...]) -> range:
    """The steps (1-based) a path of this length occupies."""
    first = query.steps - len(path) + 1 if query.backward else 1
    return range(first, first + len(path))


def summarize(query: PathsQuery, sequences: list[tuple[tuple[str, ...], int]]) -> dict:
    """Nodes, edges and top sequences from the distinct paths and their user counts."""
    by_step: dict[int, Counter] = defaultdict(Counter)
    for path, users in sequences:
        for step, event in zip(positions(query, path), path, strict=True):
            by_step[step][event] += users
    kept = {
        step: {e for e, _n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: query.top]}
        for step, counts in by_step.items()
    }
    nodes: Counter = Counter()
    ends: Counter = Counter()  # users whose path stops (or, before an end event, starts) there
    edges: Counter = Counter()
    for path, users in sequences:
        labels = [
            (step, event if event in kept[step] else OTHER)
            for step, event in zip(positions(query, path), path, strict=True)
        ]
        for node in labels:
            nodes[node] += users
        ends[labels[0] if query.backward else labels[-1]] += users
        for (step, source), (_next, target) in itertools.pairwise(labels):
            edges[(step, source, target)] += users
    total = sum(users for _path, users in sequences)
    ordered = sorted(sequences, key=lambda s: (-s[1], s[0]))[:TOP_PATHS]
    return {
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "start_event": query.start_event or None,
        "end_event": query.end_event or None,
        "steps": query.steps,
        "bound": query.bound.value,
        "bound_minutes": query.bound_minutes,
        "top": query.top,
        "exclude": list(query.exclude),
        "users": total,
        "nodes": [
            {"step": step, "event": event, "users": users, "path_ends": ends[(step, event)]}
            for (step, event), users in sorted(
                nodes.items(), key=lambda kv: (kv[0][0], kv[0][1] == OTHER, -kv[1], kv[0][1])
            )
        ],
        "edges": [
            {"step": step, "source": source, "target": target, "users": users}
            for (step, source, target), users in sorted(
                edges.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1], kv[0][2])
            )
        ],
        "paths": [
            {"events": list(path), "users": users, "share": round(users / total, 6)}
            for path, users in ordered
        ],
    }


def _label_sql(step_param: str, kept_param: str) -> str:
    """The label ($other for an event outside the step's top) of a path at a step, '' when
    the path does not reach it."""
    off = "if({backward:UInt8}, {steps:UInt8} - length(path), 0)"
    index = f"toInt64({{{step_param}:UInt8}}) - {off}"
    event = f"if({index} BETWEEN 1 AND length(path), path[{index}], '')"
    return f"if({event} = '', '', if(has({{{kept_param}:Array(String)}}, {event}), {event}, '{OTHER}'))"


def path_edge_users(
    query: PathsQuery, *, step: int, source: str, target: str, limit: int, offset: int
) -> dict:
    """The users on the edge from `source` at `step` to `target` at step + 1 (labels as in
    `paths`), ordered by user id: one page and their total."""
    result = paths(query)
    kept = defaultdict(list)
    for node in result["nodes"]:
        if node["event"] != OTHER:
            kept[node["step"]].append(node["event"])
    where = (
        f"{_label_sql('step_a', 'kept_a')} = {{source:String}} "
        f"AND {_label_sql('step_b', 'kept_b')} = {{target:String}}"
    )
    params = {
        **_params(query),
        "backward": int(query.backward),
        "step_a": step,
        "step_b": step + 1,
        "kept_a": kept[step],
        "kept_b": kept[step + 1],
        "source": source,
        "target": target,
        "limit": limit,
        "offset": offset,
    }
    inner = per_user_sql(query)
    rows = store().query(
        f"SELECT user_id, count() OVER () AS total FROM ({inner}) WHERE {where} "
        "ORDER BY user_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        params,
        timeout=query_timeout(),
    )
    total = rows[0]["total"] if rows else 0
    if not rows and offset:
        total = store().query(
            f"SELECT count() AS n FROM ({inner}) WHERE {where}", params, timeout=query_timeout()
        )[0]["n"]
    return {"total": int(total), "users": [r["user_id"] for r in rows]}


# --- input


def _event_list(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))
    for name in names:
        if not EVENT_NAME.match(name):
            raise serializers.ValidationError(f"{name!r} is not an event name", code=UNPROCESSABLE)
    if len(names) > MAX_EXCLUDE:
        raise serializers.ValidationError(
            f"at most {MAX_EXCLUDE} events, got {len(names)}", code=UNPROCESSABLE
        )
    return names


def _optional_event(help_text: str) -> serializers.RegexField:
    return serializers.RegexField(
        EVENT_NAME,
        required=False,
        allow_blank=True,
        help_text=help_text,
        error_messages={"invalid": "an event name: 1-100 letters, digits, '_', '.', '-' or '$'"},
    )


class PathsInput(RangeInput, InCohortInput):
    default_days = 30
    breakdowns = False
    period = None  # paths have no period
    breakdown = None

    start_event = _optional_event("paths start at each user's first such event in the range")
    end_event = _optional_event(
        "paths end at each user's last such event in the range (not with start_event)"
    )
    steps = serializers.IntegerField(
        min_value=MIN_STEPS, max_value=MAX_STEPS, default=5, help_text="events per path"
    )
    bound = serializers.ChoiceField(
        choices=[b.value for b in Bound],
        default=Bound.SESSION.value,
        help_text="session: a path stops at a gap longer than bound_minutes; "
        "window: only events within bound_minutes of the start (or end) event",
    )
    bound_minutes = serializers.IntegerField(min_value=1, max_value=MAX_BOUND_MINUTES, default=30)
    exclude = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="comma-separated events left out of every path",
    )
    top = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOP,
        default=5,
        help_text='events shown per step; the rest "$other"',
    )

    def validate_exclude(self, value):
        return _event_list(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start, end = attrs.get("start_event") or "", attrs.get("end_event") or ""
        if start and end:
            raise serializers.ValidationError(
                {"end_event": ["give start_event or end_event, not both"]}, code=UNPROCESSABLE
            )
        excluded = attrs.get("exclude") or ()
        if (start or end) and (start or end) in excluded:
            which = "start_event" if start else "end_event"
            raise serializers.ValidationError(
                {"exclude": [f"cannot exclude the {which}"]}, code=UNPROCESSABLE
            )
        return attrs

    def query(self, *, user_filter: UserFilter | None = None) -> PathsQuery:
        v = self.validated_data
        return PathsQuery(
            date_from=v["date_from"],
            date_to=v["date_to"],
            start_event=v.get("start_event") or "",
            end_event=v.get("end_event") or "",
            steps=v["steps"],
            bound=Bound(v["bound"]),
            bound_minutes=v["bound_minutes"],
            exclude=tuple(v.get("exclude") or ()),
            top=v["top"],
            user_filter=user_filter or v.get("in_cohort"),
        )


class PathUsersInput(PathsInput, PageInput):
    step = serializers.IntegerField(
        min_value=1, max_value=MAX_STEPS - 1, help_text="the edge's source step"
    )
    source = serializers.RegexField(
        EVENT_NAME,
        help_text="the event at `step` as the paths result names it (or $other)",
        error_messages={"invalid": "an event name or $other"},
    )
    target = serializers.RegexField(
        EVENT_NAME,
        help_text="the event at step + 1 (or $other)",
        error_messages={"invalid": "an event name or $other"},
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["step"] >= attrs["steps"]:
            raise serializers.ValidationError(
                {"step": ["the last step has no edge after it"]}, code=UNPROCESSABLE
            )
        return attrs


def edge_users(params: PathUsersInput, *, export_limit: int | None = None) -> dict:
    """The requested page of an edge's users, or the first `export_limit` of them."""
    v = params.validated_data
    return path_edge_users(
        params.query(),
        step=v["step"],
        source=v["source"],
        target=v["target"],
        **page_window(v, export_limit),
    )


# --- pages


def _step_name(query_result: dict, step: int) -> str:
    if query_result["end_event"]:
        before = query_result["steps"] - step
        return "end" if not before else f"end-{before}"
    return str(step)


def _faded(hex_colour: str, alpha: float = 0.35) -> str:
    """A palette colour (#rrggbb) as a translucent rgba, for the flows out of a node."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _edge_url(request, edge: dict) -> str:
    changes = {"step": edge["step"], "source": edge["source"], "target": edge["target"]}
    return reverse("analytics:paths-users") + "?" + query_string(request, csv=None, **changes)


def present_paths(request, result, params):
    nodes = result["nodes"]
    index = {(n["step"], n["event"]): i for i, n in enumerate(nodes)}
    events = sorted({n["event"] for n in nodes} - {OTHER})
    colour = {e: charts.color(i) for i, e in enumerate(events)} | {OTHER: charts.NEUTRAL}
    edges = result["edges"]
    sankey = {
        "type": "sankey",
        "arrangement": "snap",
        "node": {
            "label": [f"{_step_name(result, n['step'])}. {n['event']}" for n in nodes],
            "color": [colour[n["event"]] for n in nodes],
            "pad": 12,
            "thickness": 14,
            "hovertemplate": "%{label}<br>%{value:,} users<extra></extra>",
        },
        "link": {
            "source": [index[(e["step"], e["source"])] for e in edges],
            "target": [index[(e["step"] + 1, e["target"])] for e in edges],
            "value": [e["users"] for e in edges],
            "color": [_faded(colour[e["source"]]) for e in edges],
            "customdata": [[e["users"], _edge_url(request, e)] for e in edges],
            "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} users"
            "<br>click for the users<extra></extra>",
        },
    }
    anchor = result["start_event"] or result["end_event"]
    title = (
        f"After {anchor}"
        if result["start_event"]
        else f"Before {anchor}"
        if anchor
        else "From the first event"
    )
    edge_rows = [
        {
            **e,
            "from_step": _step_name(result, e["step"]),
            "to_step": _step_name(result, e["step"] + 1),
            "share": e["users"] / result["users"] if result["users"] else None,
        }
        for e in edges
    ]
    node_rows = [{**n, "step_name": _step_name(result, n["step"])} for n in nodes]
    path_rows = [{**p, "sequence": " → ".join(p["events"])} for p in result["paths"]]
    stats = [
        ("Users with a path", f"{result['users']:,}", title),
        ("Distinct edges", f"{len(edges):,}", f"top {result['top']} events per step + {OTHER}"),
    ]
    return {
        "stats": stats,
        "charts": [
            {
                "id": "paths-sankey",
                "wide": True,
                "clickable": True,
                "height": 520,
                "title": f"{title}: {result['steps']} steps, bounded by a {result['bound']} "
                f"of {result['bound_minutes']} min (click an edge for its users)",
                "table": "edges",
                "figure": {"data": [sankey], "layout": charts.layout()},
            }
        ],
        "tables": [
            Table(
                "edges",
                "Edges",
                [
                    ("from_step", "From step"),
                    ("source", "Event"),
                    ("to_step", "To step"),
                    ("target", "Next event"),
                    ("users", "Users"),
                    ("share", "Of all paths"),
                ],
                edge_rows,
                {"users": lambda row: _edge_url(request, row)},
                percent=("share",),
            ),
            Table(
                "nodes",
                "Events per step",
                [
                    ("step_name", "Step"),
                    ("event", "Event"),
                    ("users", "Users"),
                    (
                        "path_ends",
                        "Paths ending here" if not result["end_event"] else "Paths starting here",
                    ),
                ],
                node_rows,
            ),
            Table(
                "paths",
                f"Most common paths (top {TOP_PATHS})",
                [("sequence", "Path"), ("users", "Users"), ("share", "Share")],
                path_rows,
                percent=("share",),
            ),
        ],
        "empty": not result["users"],
    }


PATHS_FIELDS = [
    text_field("start_event", "Start event", size=16),
    text_field("end_event", "or end event", "", size=16),
    text_field("steps", "Steps", "5", size=3, kind="number"),
    select_field("bound", "Bounded by", [b.value for b in Bound], Bound.SESSION.value),
    text_field("bound_minutes", "Minutes", "30", size=5, kind="number"),
    text_field("exclude", "Exclude events", "", size=24),
    text_field("top", "Top events per step", "5", size=3, kind="number"),
]


def present_edge_users(request, result, params):
    v = params.validated_data
    title = f"Step {v['step']} {v['source']} → step {v['step'] + 1} {v['target']}"
    return users_panel(
        request,
        result,
        title=title,
        stat="Users on this edge",
        back="analytics:paths",
        own=("step", "source", "target"),
    )


PATHS = Analysis(
    "paths",
    "Paths",
    PathsInput,
    lambda params: paths(params.query()),
    present_paths,
    extra_fields=PATHS_FIELDS,
)
PATH_USERS = Analysis(
    "paths",
    "Paths: users on an edge",
    PathUsersInput,
    edge_users,
    present_edge_users,
    template="analytics/users.html",
    extra_fields=[
        *PATHS_FIELDS,
        text_field("step", "Step", size=3, kind="number"),
        text_field("source", "Event", size=16),
        text_field("target", "Next event", size=16),
    ],
)
_page = analysis_view(PATHS)


@role_required()
def page(request):
    """A first visit shows what users do right after signing up."""
    if not request.GET:
        return redirect(reverse("analytics:paths") + "?start_event=signup")
    return _page(request)


users_page = analysis_view(PATH_USERS, users=True)
