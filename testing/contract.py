"""The API contract in-process: schemathesis drives the WSGI app with cases generated from the
published schema and runs every check of .ci/schemathesis.toml on each answer.

The CI step (.ci/api-contract) runs the full campaign against a live server; this module runs a
bounded number of cases per operation inside the test suite, where it cannot be skipped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / ".ci" / "schemathesis.toml"


@dataclass
class Credentials:
    staff_token: str
    api_key: str
    publishable_key: str
    alert_token: str


@dataclass
class Outcome:
    operations: list[str] = field(default_factory=list)
    cases: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)


def load_schema(credentials: Credentials):
    """The schema as the app publishes it, with .ci/schemathesis.toml's checks and auth."""
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    from config.wsgi import application

    os.environ.update(
        STAFF_TOKEN=credentials.staff_token,
        API_KEY=credentials.api_key,
        PUBLISHABLE_KEY=credentials.publishable_key,
        ALERT_WEBHOOK_TOKEN=credentials.alert_token,
    )
    config = SchemathesisConfig.from_path(CONFIG)
    return schemathesis.openapi.from_wsgi("/api/schema/", application, config=config)


def _headers(operation, credentials: Credentials) -> dict[str, str]:
    schemes = {
        name for requirement in operation.definition.raw.get("security", []) for name in requirement
    }
    if "AlertWebhookBearer" in schemes:
        return {"Authorization": f"Bearer {credentials.alert_token}"}
    headers = {"X-Api-Key": credentials.api_key}
    if "tokenAuth" in schemes:
        headers["Authorization"] = f"Token {credentials.staff_token}"
    return headers


def run(schema, credentials: Credentials, *, examples: int) -> Outcome:
    """`examples` positive and `examples` negative cases per operation; every failure named."""
    from schemathesis import GenerationMode

    outcome = Outcome()
    for result in schema.get_all_operations():
        operation = result.ok()
        outcome.operations.append(operation.label)
        headers = _headers(operation, credentials)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            found = _run_operation(operation, mode, headers, examples, outcome)
            if found:
                outcome.failures.setdefault(operation.label, []).extend(found)
    return outcome


@contextlib.contextmanager
def connection_kept():
    """As Django's test client does: requests made in-process must not close the test's
    database connection (Django closes it when a request finishes)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _run_operation(operation, mode, headers: dict, examples: int, outcome: Outcome) -> list[str]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.failures import FailureGroup

    found: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        outcome.cases += 1
        try:
            case.call_and_validate(headers=headers)
        except (AssertionError, FailureGroup) as exc:
            found.append(f"{mode.value}: {str(exc).strip()[:2000]}")

    try:
        check()
    except Unsatisfiable:
        pass  # no invalid request exists (an operation without parameters or body)
    except Exception as exc:  # an operation whose cases cannot be generated
        found.append(f"{mode.value}: {type(exc).__name__}: {exc}")
    return found
