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
