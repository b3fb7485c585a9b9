"""The rooms of the project and which may import which (docs/architecture.md).

Read from the source with `ast`, so a wrong arrow fails here before anyone runs the code path
that has it: a domain app importing the layer above it, product code importing a test or
benchmark module or a test-only library, or one package reaching into another's private names.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# Each product room and the project rooms it may import (itself always allowed). `config` is
# the composition root: it may import every room and nothing imports it but entry points.
MAY_IMPORT = {
    "charts": set(),
    "core": set(),
    "deployments": {"core", "charts"},
    "analytics": {"core", "charts"},
    "experiments": {"core", "charts", "analytics"},
    "devices": {"core", "charts"},
    "operations": {"core", "charts", "deployments", "analytics", "experiments", "devices"},
    "config": {
        "core",
        "charts",
        "deployments",
        "analytics",
        "experiments",
        "devices",
        "operations",
    },
}
# Never imported by product code: the test and benchmark tooling and the libraries only they use.
NOT_FOR_PRODUCT = (
    "benchmarks",
    "testing",
    "conftest",
    "django.test",
    "celery.contrib.testing",
    "rest_framework.test",
    "kmock",
    "http_ece",
    "hypothesis",
    "factory",
    "playwright",
    "pytest",
)
# The Celery app is imported where a process starts it (the tests' worker fixture, the entry
# points); inside product code only `config` itself holds it.


def _is_test_path(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "tests" in parts or path.name == "conftest.py"


def product_files() -> list[Path]:
    files = []
    for room in MAY_IMPORT:
        base = ROOT / room
        candidates = [base.with_suffix(".py")] if not base.is_dir() else base.rglob("*.py")
        for path in candidates:
            if path.exists() and not _is_test_path(path) and "migrations" not in path.parts:
                files.append(path)
    return sorted(files)


def _room_of(path: Path) -> str:
    first = path.relative_to(ROOT).parts[0]
    return first.removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) for every import, absolute ones only (the project uses no others)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def test_there_is_product_code_to_check():
    rooms = {_room_of(path) for path in product_files()}
    assert rooms == set(MAY_IMPORT)


def problems_in(path: Path, room: str) -> list[str]:
    problems = []
    for line, module, names in _imports(path):
        top = module.split(".")[0]
        where = f"{path.name}:{line}"
        if any(module == banned or module.startswith(banned + ".") for banned in NOT_FOR_PRODUCT):
            problems.append(f"{where} imports test or benchmark tooling {module}")
        if ".tests." in f".{module}.":
            problems.append(f"{where} imports a test module {module}")
        if top in MAY_IMPORT and top != room and top not in MAY_IMPORT[room]:
            problems.append(f"{where}: {room} may not import {module} (an arrow running back up)")
        if top in MAY_IMPORT and top != room:
            private = [name for name in names if name.startswith("_")]
            if private:
                problems.append(f"{where} takes private names {private} from {module}")
    return problems


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way_and_never_at_tooling(path):
    problems = problems_in(path, _room_of(path))
    assert not problems, "\n".join(problems)


def test_the_rule_catches_what_it_is_for(tmp_path):
    """Each kind of wrong import is found (in a file written for the purpose)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from operations.services import alert_act\n"
        "from django.test import Client\n"
        "from analytics.tests.reference import retention\n"
        "from core.services import _private\n"
        "from core.services import audit_record\n"
        "from deployments.models import Rollout\n"
    )
    assert problems_in(sample, "deployments") == [
        "sample.py:1: deployments may not import operations.services (an arrow running back up)",
        "sample.py:2 imports test or benchmark tooling django.test",
        "sample.py:3 imports a test module analytics.tests.reference",
        "sample.py:3: deployments may not import analytics.tests.reference (an arrow running back up)",
        "sample.py:4 takes private names ['_private'] from core.services",
    ]
