"""Finding the optional per-app modules (`<app>/demo.py`, `<app>/bench.py`) the commands gather."""

import importlib
from types import ModuleType


def optional_app_module(app: str, name: str) -> ModuleType | None:
    """`<app>.<name>` if the app has that module; errors inside the module still raise."""
    try:
        return importlib.import_module(f"{app}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app}.{name}":
            raise
        return None
