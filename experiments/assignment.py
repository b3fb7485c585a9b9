"""The assignment hot path: which variant of each running experiment a user is in.

Running experiments are held in-process as plain tuples and reloaded every
EXPERIMENTS_CACHE_SECONDS (and at once in the process that starts or stops one), so a call
costs a few hashes and no database query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from experiments.conditions import condition_eval
from experiments.hashing import bucket_ranges, choose_variation, gb_hash, in_namespace
from experiments.models import Experiment, normalized_weights


@dataclass(frozen=True)
class RunningExperiment:
    key: str
    seed: str
    conditions: dict
    namespace: tuple[str, float, float] | None
    ranges: tuple[tuple[float, float], ...]
    variant_keys: tuple[str, ...]

    @classmethod
    def from_model(cls, experiment: Experiment) -> RunningExperiment:
        variants = list(experiment.variants.all())
        weights = normalized_weights([v.weight for v in variants])
        namespace = (
            (experiment.namespace, experiment.namespace_start, experiment.namespace_end)
            if experiment.namespace
            else None
        )
        return cls(
            key=experiment.key,
            seed=experiment.seed,
            conditions=experiment.conditions or {},
            namespace=namespace,
            ranges=tuple(bucket_ranges(len(variants), experiment.coverage, weights)),
            variant_keys=tuple(v.key for v in variants),
        )

    def variant_for(self, user_id: str, attributes: dict) -> str | None:
        if self.conditions and not condition_eval(self.conditions, attributes):
            return None
        if self.namespace is not None and not in_namespace(user_id, self.namespace):
            return None
        index = choose_variation(gb_hash(self.seed, user_id, 2), self.ranges)
        return self.variant_keys[index] if index >= 0 else None


class _Snapshot:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expires = 0.0
        self._experiments: dict[str, RunningExperiment] = {}

    def get(self) -> dict[str, RunningExperiment]:
        if time.monotonic() < self._expires:
            return self._experiments
        with self._lock:
            if time.monotonic() >= self._expires:
                running = Experiment.objects.filter(
                    status=Experiment.Status.RUNNING
                ).prefetch_related("variants")
                self._experiments = {e.key: RunningExperiment.from_model(e) for e in running}
                self._expires = time.monotonic() + settings.EXPERIMENTS_CACHE_SECONDS
        return self._experiments

    def invalidate(self) -> None:
        self._expires = 0.0


running_experiments = _Snapshot()


def assignments_for(
    user_id: str, attributes: dict, keys: Iterable[str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """({experiment key: variant key} for the running experiments that include the user,
    the requested keys that are not running experiments)."""
    running = running_experiments.get()
    attrs = {"id": user_id, "user_id": user_id, **attributes}
    if keys is None:
        chosen, unknown = running.values(), []
    else:
        wanted = list(dict.fromkeys(keys))
        chosen = [running[k] for k in wanted if k in running]
        unknown = [k for k in wanted if k not in running]
    out = {}
    for experiment in chosen:
        variant = experiment.variant_for(user_id, attrs)
        if variant is not None:
            out[experiment.key] = variant
    return out, unknown
