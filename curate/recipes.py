"""Recipe registry: every module in `pipelines/` with a NAME and a build(flow) is a recipe."""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from curate.errors import UsageError


def recipes() -> dict[str, ModuleType]:
    import pipelines

    found = {}
    for info in pkgutil.iter_modules(pipelines.__path__):
        module = importlib.import_module(f"pipelines.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "build"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


def get_recipe(name: str) -> ModuleType:
    available = recipes()
    if name not in available:
        raise UsageError(f"--pipeline: unknown recipe {name!r} (available: {', '.join(available)})")
    return available[name]
