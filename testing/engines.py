"""The ClickHouse engines the tests run the store on: the newest (chdb of requirements.txt, in
this interpreter) and the one bundling the oldest server version the project supports
(ClickHouse 24.8 LTS: chdb 3.0.1, pinned in testing/requirements-oldest-engine.txt), in a
virtual environment of its own that `make test` creates under var/."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLDEST_ENGINE_VERSION = "24.8"
OLDEST_ENGINE_PYTHON = os.environ.get("CLICKHOUSE_OLDEST_ENGINE_PYTHON") or str(
    ROOT / "var" / "clickhouse-24.8" / "bin" / "python"
)


def oldest_engine_missing() -> str:
    """Why the oldest engine cannot run here, or "" when it can."""
    if Path(OLDEST_ENGINE_PYTHON).exists():
        return ""
    return (
        f"no interpreter with chdb for ClickHouse {OLDEST_ENGINE_VERSION} at "
        f"{OLDEST_ENGINE_PYTHON} (`make test` creates it; CLICKHOUSE_OLDEST_ENGINE_PYTHON "
        "points elsewhere)"
    )


# GrowthBook's gbstats, the oracle of experiments/stats.py: its pins (numpy<2, pandas<2)
# conflict with the project's, so it has its own environment (testing/requirements-gbstats.txt).
GBSTATS_PYTHON = os.environ.get("GBSTATS_PYTHON") or str(
    ROOT / "var" / "gbstats" / "bin" / "python"
)


def gbstats_missing() -> str:
    """Why gbstats cannot run here, or "" when it can."""
    if Path(GBSTATS_PYTHON).exists():
        return ""
    return (
        f"no interpreter with gbstats at {GBSTATS_PYTHON} (`make var/gbstats/.installed` or "
        "`make test` creates it; GBSTATS_PYTHON points elsewhere)"
    )


def gbstats_run(cases: list[dict]) -> list[dict | None]:
    """gbstats' results for these cases (testing/gbstats_oracle.py documents the format)."""
    import json
    import subprocess

    out = subprocess.run(
        [GBSTATS_PYTHON, str(ROOT / "testing" / "gbstats_oracle.py")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)
