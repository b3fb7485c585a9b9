"""What a metrics backend answers: one reading per version, None for a metric without data."""

from dataclasses import dataclass, field
from typing import Protocol

METRICS = ("request_rate", "error_rate", "p99_ms", "cpu_percent", "memory_percent")


@dataclass
class Reading:
    request_rate: float | None = None
    error_rate: float | None = None
    p99_ms: float | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return all(getattr(self, m) is None for m in METRICS)

    def values(self) -> dict:
        return {m: getattr(self, m) for m in METRICS}


class MetricsBackend(Protocol):
    def read(self, service, version: str) -> Reading:
        """Current metrics of `version` ("stable" or "canary") of `service`."""
