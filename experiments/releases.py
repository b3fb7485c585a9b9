"""Releases during an experiment: rollouts as markers on the readout's charts, and the warning
when a service the experiment depends on was rolled out while it ran (through core.releases:
experiments may not import deployments)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from core import releases
from experiments.models import Experiment

KIND_WORDS = {"start": "started", "promoted": "promoted", "rollback": "rolled back"}


def _window(experiment: Experiment) -> tuple[dt.datetime, dt.datetime] | None:
    if experiment.started_at is None:
        return None
    return experiment.started_at, experiment.ended_at or timezone.now()


def experiment_release_markers(*, experiment: Experiment) -> list[dict]:
    """Every rollout start, promotion and rollback while the experiment ran (chart markers)."""
    window = _window(experiment)
    return [] if window is None else releases.markers(start=window[0], end=window[1])


def experiment_release_warning(*, experiment: Experiment) -> dict | None:
    """None, or a message and the rollouts of the services the experiment depends on that
    happened while it ran: users exposed before and after may have seen different versions."""
    window = _window(experiment)
    services = list(experiment.depends_on_services or [])
    if window is None or not services:
        return None
    found = releases.markers(start=window[0], end=window[1], services=services)
    if not found:
        return None
    names = sorted({m["service"] for m in found})
    rollouts = [
        {
            "service": m["service"],
            "image_tag": m["image_tag"],
            "kind": m["kind"],
            "at": m["at"],
            "label": m["label"],
        }
        for m in found
    ]
    counted = f"{len(rollouts)} rollout event{'s' if len(rollouts) != 1 else ''}"
    return {
        "message": (
            f"{', '.join(names)} {'was' if len(names) == 1 else 'were'} rolled out while this "
            f"experiment ran ({counted}): users exposed before and after may have met different "
            "versions, and a rollout that moved a metric moves it in every variant; read the "
            "results per period or restart the experiment if the release changed what it tests."
        ),
        "rollouts": rollouts,
    }
