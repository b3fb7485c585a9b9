"""The Events page: latest events with filters, one event's properties, counts over time."""

from __future__ import annotations

import datetime as dt
import json
import uuid as uuid_module

from django import forms
from django.shortcuts import render
from django.utils import timezone

import charts
from analytics.catalog import Event
from analytics.events.buffer import buffer_status
from analytics.events.selectors import (
    EventFilter,
    event_counts,
    event_get,
    event_names,
    events_latest,
)
from analytics.store import StoreError
from core.roles import role_required

PAGE_LIMIT = 100


class EventFilterForm(forms.Form):
    event = forms.RegexField(regex=r"^[A-Za-z0-9_$.:-]{1,200}$", required=False)
    user_id = forms.CharField(required=False, max_length=200)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="inclusive",
    )

    def clean(self):
        data = super().clean()
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and first > last:
            self.add_error("date_to", "must not be before the start date")
        return data

    def to_filter(self) -> EventFilter:
        data = self.cleaned_data
        tz = timezone.get_current_timezone()

        def start_of(day: dt.date | None) -> dt.datetime | None:
            return dt.datetime.combine(day, dt.time(), tzinfo=tz) if day else None

        last = data.get("date_to")
        return EventFilter(
            event=data.get("event") or "",
            user_id=data.get("user_id") or "",
            date_from=start_of(data.get("date_from")),
            date_to=start_of(last + dt.timedelta(days=1)) if last else None,
        )


ENRICHMENT_KEYS = {"device_type", "is_mobile", "geo_country", "user_tier"}


def properties_preview(properties: dict, width: int = 90) -> str:
    """The client's own properties in one short line (enrichment has its own columns)."""
    text = ", ".join(f"{k}={v}" for k, v in properties.items() if k not in ENRICHMENT_KEYS)
    return text if len(text) <= width else text[: width - 1] + "…"


def counts_figure(counts) -> dict:
    """Stacked bars: events per name per bucket (each uuid once)."""
    tz = timezone.get_current_timezone()
    names = sorted({row["event"] for row in counts.rows})
    bars = []
    for index, name in enumerate(names):
        rows = [row for row in counts.rows if row["event"] == name]
        bars.append(
            {
                "type": "bar",
                "name": name,
                "x": [row["bucket"].astimezone(tz).isoformat() for row in rows],
                "y": [row["n"] for row in rows],
                "marker": {"color": charts.color(index)},
            }
        )
    return charts.figure(
        bars, barmode="stack", height=320, yaxis={"title": f"events per {counts.bucket.label}"}
    )


@role_required()
def events(request):
    form = EventFilterForm(request.GET or None)
    filters = form.to_filter() if form.is_valid() else EventFilter()
    context = {"form": form, "limit": PAGE_LIMIT, "catalog": [e.value for e in Event]}
    try:
        page = events_latest(filters=filters, limit=PAGE_LIMIT)
        for row in page.results:
            row["preview"] = properties_preview(row["properties"])
        context["page"] = page
        if page.count:
            counts = event_counts(filters=filters)
            context["figure"] = counts_figure(counts)
            context["bucket"] = counts.bucket.label
        context["names"] = sorted(set(event_names()) | set(context["catalog"]))
        selected = request.GET.get("uuid", "")
        if selected:
            try:
                uuid_module.UUID(selected)
            except ValueError:
                context["selected_missing"] = True
            else:
                event = event_get(uuid=selected)
                context["selected"] = event
                context["selected_missing"] = event is None
                if event:
                    context["selected_json"] = json.dumps(
                        event["properties"], indent=2, sort_keys=True
                    )
    except StoreError as exc:
        context["store_error"] = str(exc)
    try:
        context["buffer"] = buffer_status()
    except Exception:
        context["buffer"] = None
    query = request.GET.copy()
    query.pop("uuid", None)
    context["query"] = query.urlencode()
    return render(request, "analytics/events.html", context)
