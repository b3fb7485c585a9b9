"""The processes of the platform: what `manage.py run`, the Dockerfile and compose start."""

import sys
from pathlib import Path

from core.queues import Queue

MANAGE_PY = Path(__file__).resolve().parent.parent / "manage.py"


def process_commands(*, host: str, port: int, python: str = sys.executable) -> dict[str, list[str]]:
    return {
        "web": [
            python,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            ",".join(q.value for q in Queue),
            "--concurrency",
            "3",
            "--loglevel",
            "INFO",
        ],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
        # Moves captured events from the Redis buffer into the analytics store (analytics/events/).
        "events-writer": [python, str(MANAGE_PY), "events_writer"],
    }


def reset_metrics_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR before the processes start, as prometheus_client requires:
    files of processes from an earlier run would otherwise be summed into the new one."""
    from django.conf import settings

    for path in settings.PROMETHEUS_MULTIPROC_DIR.glob("*.db"):
        path.unlink(missing_ok=True)
