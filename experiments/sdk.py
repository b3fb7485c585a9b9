"""The GrowthBook SDK payload: every running experiment as a feature the SDKs evaluate locally.

A feature's key is the experiment's key and its value is our variant key, so
`gb.eval_feature("<experiment key>")` in any GrowthBook SDK answers what
`/api/experiments/assign/` answers for the same user and attributes (same hash, version 2;
same namespace hash; same targeting, with version comparisons spelled as GrowthBook's `$v*`).
Users outside an experiment get the feature's default value, null.

A key with encryption on gets GrowthBook's encrypted payload: `encryptedFeatures` (and
`encryptedSavedGroups`) as `<iv>.<ciphertext>`, both base64, AES-CBC with PKCS7 padding under
the key's base64 secret, which the SDKs take as `decryptionKey` / `decryption_key`.

Holdouts are spelled as GrowthBook spells them: a feature `$holdout:<key>` whose experiment rule
puts users in `holdoutcontrol` or `holdouttreatment` (default `genpop`), and a prerequisite on
every covered experiment's rules. A running experiment's rule requires the holdout feature not to
be `holdoutcontrol` (GrowthBook forces the held value instead, but a forced null is skipped by
some SDKs, the Python one among them); a concluded experiment first forces its control for held
users, then its winner for everyone else, so held users keep the product as it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.db.models import Q
from django.utils import timezone

from experiments.conditions import SAVED_GROUP_PREFIX, cohorts_in, condition_for_sdk
from experiments.models import (
    HOLDOUT_CONTROL,
    HOLDOUT_GROUPS,
    Experiment,
    Holdout,
    normalized_weights,
)

# The attribute the server hashes: `/assign` always hashes its `user_id`, and SDKs are given
# the same value as the `id` attribute (see README, SDKs).
HASH_ATTRIBUTE = "id"
# The payload changes only when an experiment starts, stops or concludes; SDKs revalidate
# with If-None-Match and get a 304 meanwhile.
CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=3600"


def _experiment_rule(experiment: Experiment, variants: list) -> dict:
    rule: dict = {
        "id": f"exp-{experiment.pk}",
        "key": experiment.key,
        "name": experiment.name,
        "seed": experiment.seed,
        "hashAttribute": HASH_ATTRIBUTE,
        "hashVersion": 2,
        "variations": [v.key for v in variants],
        "weights": normalized_weights([v.weight for v in variants]),
        "coverage": experiment.coverage,
        "meta": [{"key": v.key, "name": v.name or v.key} for v in variants],
        # Re-randomizing is our only new phase: it raises the bucket version.
        "phase": str(experiment.bucket_version),
    }
    # SDKs given a sticky bucket service keep a user's first variant as the server does.
    if experiment.sticky_bucketing:
        rule["bucketVersion"] = experiment.bucket_version
        rule["minBucketVersion"] = experiment.min_bucket_version
    else:
        rule["disableStickyBucketing"] = True
    if experiment.conditions:
        rule["condition"] = condition_for_sdk(experiment.conditions)
    if experiment.namespace:
        rule["namespace"] = [
            experiment.namespace,
            experiment.namespace_start,
            experiment.namespace_end,
        ]
    return rule


def active_holdouts() -> list[Holdout]:
    """Running holdouts before their planned end, with the experiments they cover."""
    return list(
        Holdout.objects.filter(status=Holdout.Status.RUNNING)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()))
        .prefetch_related("experiments")
        .order_by("key")
    )


def _holdout_feature(holdout: Holdout) -> dict:
    return {
        "defaultValue": "genpop",
        "rules": [
            {
                "id": f"holdout-{holdout.pk}",
                "key": holdout.tracking_key,
                "name": holdout.name,
                "seed": holdout.seed,
                "hashAttribute": HASH_ATTRIBUTE,
                "hashVersion": 2,
                "variations": list(HOLDOUT_GROUPS),
                "weights": [0.5, 0.5],
                "coverage": holdout.coverage,
                "meta": [{"key": group, "name": group} for group in HOLDOUT_GROUPS],
                "phase": "0",
                # Its parameters never change once started: nothing for sticky buckets to keep.
                "disableStickyBucketing": True,
            }
        ],
    }


def _held(holdouts: list[Holdout], *, is_control: bool) -> list[dict]:
    """parentConditions on the holdouts' features: held users only (`is_control`), or
    everyone else."""
    condition = {"value": HOLDOUT_CONTROL} if is_control else {"value": {"$ne": HOLDOUT_CONTROL}}
    return [{"id": h.tracking_key, "condition": condition} for h in holdouts]


def _concluded_value(experiment: Experiment, variants: list) -> str | None:
    if experiment.winner_id is not None:
        return next((v.key for v in variants if v.pk == experiment.winner_id), None)
    return next((v.key for v in variants if v.is_control), None)


def sdk_features() -> dict:
    """`features` of the payload: running experiments as experiment rules, concluded ones as
    their winner (or control) forced for everyone; drafts and stopped ones are absent."""
    experiments = Experiment.objects.filter(
        status__in=[Experiment.Status.RUNNING, Experiment.Status.CONCLUDED]
    ).prefetch_related("variants")
    holdouts = active_holdouts()
    covering: dict[int, list[Holdout]] = {}
    for holdout in holdouts:
        for covered in holdout.experiments.all():
            covering.setdefault(covered.pk, []).append(holdout)
    features: dict = {}
    used: dict[str, Holdout] = {}
    for experiment in sorted(experiments, key=lambda e: e.key):
        variants = list(experiment.variants.all())
        if not variants:
            continue
        held = covering.get(experiment.pk, [])
        used.update((h.tracking_key, h) for h in held)
        if experiment.status == Experiment.Status.RUNNING:
            rule = _experiment_rule(experiment, variants)
            if held:
                rule["parentConditions"] = _held(held, is_control=False)
            rules = [rule]
        else:
            value = _concluded_value(experiment, variants)
            control = next((v.key for v in variants if v.is_control), None)
            rules = [
                {"id": f"holdout-{h.pk}-exp-{experiment.pk}", "force": control}
                | {"parentConditions": _held([h], is_control=True)}
                for h in held
            ] + [{"id": f"exp-{experiment.pk}", "force": value}]
        features[experiment.key] = {"defaultValue": None, "rules": rules}
    # Only the holdouts a served feature refers to (GrowthBook prunes the others too).
    for key, holdout in sorted(used.items()):
        features[key] = _holdout_feature(holdout)
    return features


def sdk_saved_groups() -> dict[str, list[str]]:
    """`savedGroups` of the payload: the members of every saved cohort a running experiment
    targets with `$inCohort` (as `$inGroup` on `cohort-<id>`)."""
    from analytics.cohorts.selectors import cohort_saved_groups

    running = Experiment.objects.filter(status=Experiment.Status.RUNNING)
    ids = set().union(*(cohorts_in(e.conditions) for e in running))
    return cohort_saved_groups(ids, prefix=SAVED_GROUP_PREFIX) if ids else {}


def sdk_encrypt(text: str, secret: str) -> str:
    """GrowthBook's encrypted form of `text`: base64 IV, '.', base64 AES-CBC ciphertext.

    The IV is derived from the secret and the text (HMAC), so one payload always encrypts to
    the same body under one ETag; it reveals only whether two payloads are equal, which the
    ETag says anyway."""
    key = base64.b64decode(secret)
    plain = text.encode()
    iv = hmac.new(key, plain, hashlib.sha256).digest()[:16]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padded) + encryptor.finalize()
    return f"{base64.b64encode(iv).decode()}.{base64.b64encode(sealed).decode()}"


def _compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sdk_payload(*, secret: str | None = None) -> tuple[dict, str]:
    """(the payload GrowthBook SDKs read from `/api/features/<client_key>`, its ETag);
    encrypted with `secret` (a key's sdk_decryption_key) when given."""
    features = sdk_features()
    saved_groups = sdk_saved_groups()
    tagged = [features, saved_groups] if saved_groups else features
    seal = json.dumps(tagged, sort_keys=True, separators=(",", ":"))
    if secret:
        # Same content under another secret (or in the clear) is another body: another ETag.
        seal += "\n" + hashlib.sha256(secret.encode()).hexdigest()
    digest = hashlib.sha256(seal.encode()).hexdigest()[:32]
    if not secret:
        body = {"status": 200, "features": features, "experiments": []}
        if saved_groups:
            body["savedGroups"] = saved_groups
        return body, f'"{digest}"'
    body = {
        "status": 200,
        "features": {},
        "encryptedFeatures": sdk_encrypt(_compact(features), secret),
        "experiments": [],
    }
    if saved_groups:
        body["encryptedSavedGroups"] = sdk_encrypt(_compact(saved_groups), secret)
    return body, f'"{digest}"'
