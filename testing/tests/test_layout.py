"""Product code never imports test tooling, test doubles or benchmarks (the image ships none)."""

import ast
from pathlib import Path

from django.conf import settings

APPS = ["platform_site", "deployments", "analytics", "experiments", "devices"]
FORBIDDEN = ("testing", "benchmarks", "django.test", "celery.contrib.testing", "kmock", "http_ece")


def product_modules():
    for app in APPS:
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            if "tests" not in path.relative_to(settings.BASE_DIR).parts:
                yield path


def imported_names(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_product_code_imports_no_test_tooling():
    found = [
        f"{path.relative_to(settings.BASE_DIR)}: {name}"
        for path in product_modules()
        for name in imported_names(path)
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)
    ]
    assert found == []
