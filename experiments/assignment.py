"""The assignment hot path: which variant of each running experiment a user is in.

Running experiments are held in-process as plain tuples and reloaded every
EXPERIMENTS_CACHE_SECONDS (and at once in the process that starts or stops one), so a call
costs a few hashes, one indexed read of the user's sticky buckets and, for a user new to an
experiment, one insert.

Sticky bucketing follows GrowthBook's `_run` (growthbook 4.x, `core.py`): a stored bucket of
the current bucket version wins over targeting, namespace, coverage and weights; a bucket of
any version below `min_bucket_version` excludes the user; otherwise the user is hashed as usual
and the result stored.

Holdouts come first, as GrowthBook SDKs check a rule's prerequisites before anything else: a
user hashed into an active holdout's `holdoutcontrol` group gets no covered experiment (sticky
bucket or not), and every user evaluated for a covered experiment is told their holdout group.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from experiments.conditions import condition_eval
from experiments.hashing import bucket_ranges, choose_variation, gb_hash, in_namespace
from experiments.models import (
    HOLDOUT_CONTROL,
    HOLDOUT_GROUPS,
    Experiment,
    Holdout,
    StickyAssignment,
    normalized_weights,
    sticky_key,
)

HASH_ATTRIBUTE = "id"


@dataclass(frozen=True)
class RunningHoldout:
    """An active holdout as its SDK feature evaluates it: an experiment rule over two equal
    groups covering twice the held share, hashed on the holdout's own seed (no targeting,
    no namespace, as GrowthBook's holdout feature)."""

    key: str
    tracking_key: str
    seed: str
    ranges: tuple[tuple[float, float], ...]
    ends_at: float | None = None  # epoch seconds: past it, the holdout holds nobody

    @classmethod
    def from_model(cls, holdout: Holdout) -> RunningHoldout:
        return cls(
            key=holdout.key,
            tracking_key=holdout.tracking_key,
            seed=holdout.seed,
            ranges=tuple(bucket_ranges(2, holdout.coverage, [0.5, 0.5])),
            ends_at=holdout.ends_at.timestamp() if holdout.ends_at else None,
        )

    def group_for(self, user_id: str) -> str | None:
        """`holdoutcontrol`, `holdouttreatment`, or None (the general population not measured,
        or the holdout past its planned end)."""
        if self.ends_at is not None and time.time() >= self.ends_at:
            return None
        index = choose_variation(gb_hash(self.seed, user_id, 2), self.ranges)
        return HOLDOUT_GROUPS[index] if index >= 0 else None


@dataclass(frozen=True)
class RunningExperiment:
    key: str
    seed: str
    conditions: dict
    namespace: tuple[str, float, float] | None
    ranges: tuple[tuple[float, float], ...]
    variant_keys: tuple[str, ...]
    sticky: bool = False
    bucket_version: int = 0
    min_bucket_version: int = 0
    holdouts: tuple[RunningHoldout, ...] = ()

    @classmethod
    def from_model(
        cls, experiment: Experiment, holdouts: tuple[RunningHoldout, ...] = ()
    ) -> RunningExperiment:
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
            sticky=experiment.sticky_bucketing,
            bucket_version=experiment.bucket_version,
            min_bucket_version=experiment.min_bucket_version,
            holdouts=holdouts,
        )

    def sticky_variant(self, buckets: dict[str, str]) -> tuple[str | None, bool]:
        """(the stored variant of the current bucket version or None, blocked): blocked when
        the user holds a bucket of a version below `min_bucket_version`."""
        if any(sticky_key(self.key, v) in buckets for v in range(self.min_bucket_version)):
            return None, True
        stored = buckets.get(sticky_key(self.key, self.bucket_version))
        return (stored if stored in self.variant_keys else None), False

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
                held = _running_holdouts()
                self._experiments = {
                    e.key: RunningExperiment.from_model(e, held.get(e.pk, ())) for e in running
                }
                self._expires = time.monotonic() + settings.EXPERIMENTS_CACHE_SECONDS
        return self._experiments

    def invalidate(self) -> None:
        self._expires = 0.0


def _running_holdouts() -> dict[int, tuple[RunningHoldout, ...]]:
    """{experiment id: the running holdouts covering it}."""
    out: dict[int, tuple[RunningHoldout, ...]] = {}
    for holdout in Holdout.objects.filter(status=Holdout.Status.RUNNING).prefetch_related(
        "experiments"
    ):
        running = RunningHoldout.from_model(holdout)
        for experiment in holdout.experiments.all():
            out[experiment.pk] = (*out.get(experiment.pk, ()), running)
    return out


running_experiments = _Snapshot()


def assignments_for(
    user_id: str, attributes: dict, keys: Iterable[str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """({experiment key: variant key} for the running experiments that include the user,
    the requested keys that are not running experiments)."""
    assignments, _, unknown = assign(user_id, attributes, keys)
    return assignments, unknown


def assign(
    user_id: str, attributes: dict, keys: Iterable[str] | None = None
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """`assignments_for` and, third, {holdout key: group} for the holdouts of the experiments
    evaluated that hold the user or measure them as the general population."""
    running = running_experiments.get()
    attrs = {"id": user_id, "user_id": user_id, **attributes}
    if keys is None:
        chosen, unknown = running.values(), []
    else:
        wanted = list(dict.fromkeys(keys))
        chosen = [running[k] for k in wanted if k in running]
        unknown = [k for k in wanted if k not in running]
    buckets = sticky_buckets(user_id) if any(e.sticky for e in chosen) else {}
    out, new, held = {}, {}, {}
    for experiment in chosen:
        groups = [(h.key, h.group_for(user_id)) for h in experiment.holdouts]
        held.update((key, group) for key, group in groups if group is not None)
        if any(group == HOLDOUT_CONTROL for _, group in groups):
            continue
        stored, blocked = experiment.sticky_variant(buckets) if experiment.sticky else (None, False)
        if blocked:
            continue
        variant = stored or experiment.variant_for(user_id, attrs)
        if variant is None:
            continue
        out[experiment.key] = variant
        if experiment.sticky and stored is None:
            new[(experiment.key, experiment.bucket_version)] = variant
    if new:
        out.update(sticky_buckets_save(user_id, new))
    return out, held, unknown


def sticky_buckets(value: str, attribute: str = HASH_ATTRIBUTE) -> dict[str, str]:
    """The user's GrowthBook assignment document, `{"<experiment>__<version>": variant}`."""
    rows = StickyAssignment.objects.filter(
        attribute_name=attribute, attribute_value=value
    ).values_list("experiment_key", "bucket_version", "variant_key")
    return {sticky_key(key, version): variant for key, version, variant in rows}


def sticky_buckets_save(
    value: str, assignments: dict[tuple[str, int], str], attribute: str = HASH_ATTRIBUTE
) -> dict[str, str]:
    """Store new buckets, first writer wins; {experiment key: the variant now stored} for
    them (another process may have stored a bucket for the same version a moment earlier,
    e.g. before a weight change reached this process: the stored one is the answer)."""
    StickyAssignment.objects.bulk_create(
        [
            StickyAssignment(
                attribute_name=attribute,
                attribute_value=value,
                experiment_key=key,
                bucket_version=version,
                variant_key=variant,
            )
            for (key, version), variant in assignments.items()
        ],
        ignore_conflicts=True,
    )
    stored = sticky_buckets(value, attribute)
    return {
        key: stored.get(sticky_key(key, v), variant) for (key, v), variant in assignments.items()
    }
