"""Model artifacts on disk (joblib) and the active version of each kind."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import joblib
from django.conf import settings

from analytics.insights.features import FEATURES
from analytics.insights.models import ModelKind, ModelVersion


def artifact_path(kind: str, version: int) -> Path:
    directory = Path(settings.ML_MODEL_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{kind}-v{version}.joblib"


def artifact_save(*, kind: str, version: int, model) -> Path:
    path = artifact_path(kind, version)
    joblib.dump({"kind": kind, "version": version, "features": FEATURES, "model": model}, path)
    return path


@lru_cache(maxsize=16)
def _load(path: str, _mtime: float):
    bundle = joblib.load(path)
    if tuple(bundle["features"]) != FEATURES:
        raise ValueError(f"{path} was trained on other features; retrain it")
    return bundle["model"]


def load_model(version: ModelVersion):
    path = Path(version.artifact)
    return _load(str(path), path.stat().st_mtime)


def active_versions() -> dict[str, ModelVersion]:
    """The active version of each kind that has one and whose artifact is readable."""
    versions = {}
    for version in ModelVersion.objects.filter(is_active=True):
        if Path(version.artifact).exists():
            versions[version.kind] = version
    return versions


KINDS = tuple(ModelKind.values)
