"""Recipe registry: every module in `pipelines/` with NAME, SUMMARY and STAGES is a recipe.

A recipe is an ordered list of stages plus the flag defaults it changes (datatrove's pipeline
list, open_clip's name -> config registry). Loading checks it: every entry is a Stage class (or
`Stage.using(...)`), every DEFAULTS key is a flag of the run or of one of its stages, and every
capability a stage requires (`Stage.needs`) has exactly one provider among the recipe's stages
and PROVIDERS (stage classes that serve others without running: the dedup recipe's Download
fetches an eval set given as URLs), so a misspelt default or a missing provider fails when the
registry imports the recipe, not in a run.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

from apache_beam.options.pipeline_options import PipelineOptions

from curate.errors import UsageError
from curate.options import CurateOptions
from curate.stage import RUNNING, Stage, StageSpec, stage_class


class RecipeError(TypeError):
    """A recipe module that does not say what a recipe must (a programming error, not a user's)."""


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    stages: tuple  # Stage classes or StageSpecs, in graph order
    defaults: dict = field(default_factory=dict)
    module: ModuleType | None = None
    check: Callable | None = None  # check(run, stages): what the recipe itself needs of a run
    providers: dict = field(default_factory=dict)  # capability -> the Stage class that provides it

    @property
    def DEFAULTS(self) -> dict:
        """As a recipe module spells it (readers of a module's DEFAULTS get the same)."""
        return self.defaults

    @property
    def stage_classes(self) -> list[type[Stage]]:
        return [stage_class(e) for e in self.stages]

    def option_groups(self) -> list[type[PipelineOptions]]:
        """The run's flags and every flag group its stages read, in stage order."""
        groups: list = [CurateOptions]
        for cls in [*self.stage_classes, *dict.fromkeys(self.providers.values())]:
            groups.extend(g for g in cls.options if g not in groups)
        return groups

    def configure(self, run) -> list[Stage]:
        """The stages this run's flags turn on, each configured (and its flags checked) once, in order:
        a stage's `from_run` finds those before it in `run.configured`."""
        run.providers = dict(self.providers)
        run.configured = []
        for entry in self.stages:
            stage = entry.from_run(run)
            if stage is not None:
                run.configured.append(stage)
        stages = list(run.configured)
        if self.check is not None:
            self.check(run, stages)
        return stages

    def outline(self) -> str:
        """`MetaCLIP -> Download -> ...`: the stage order --help shows."""
        return " -> ".join(cls.step for cls in self.stage_classes)


def flag_names(groups) -> set[str]:
    parser = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    for group in groups:
        group._add_argparse_args(parser)
    return {a.dest for a in parser._actions}


def wire(where: str, classes: list[type[Stage]], extra: tuple = ()) -> dict:
    """capability -> its one provider among the recipe's stage classes and extra providers;
    RecipeError when two provide one capability, a required need has none, or what a stage
    makes on the samples (RUNNING) is needed before, or without, the stage that makes it."""
    providers: dict = {}
    for cls in [*classes, *extra]:
        for capability in cls.provides:
            if capability in RUNNING and cls not in classes:
                continue  # a provider that does not run makes nothing on the samples
            if providers.get(capability, cls) is not cls:
                raise RecipeError(f"{where}: {providers[capability].__name__} and {cls.__name__} both provide "
                                  f"{capability!r}")
            providers[capability] = cls
    for at, cls in enumerate(classes):
        missing = [c for c, required in cls.needs.items() if required and c not in providers]
        if missing:
            raise RecipeError(f"{where}: {cls.__name__} needs {', '.join(map(repr, missing))}, which no stage "
                              f"of the recipe provides")
        late = [c for c in cls.needs if c in RUNNING and c in providers and classes.index(providers[c]) > at]
        if late:
            raise RecipeError(f"{where}: {cls.__name__} needs {', '.join(map(repr, late))} from "
                              f"{providers[late[0]].__name__}, which comes after it")
    return providers


def load_recipe(module: ModuleType) -> Recipe:
    """The module's recipe, checked; RecipeError names what is wrong."""
    where = module.__name__
    for attr in ("NAME", "SUMMARY", "STAGES"):
        if not hasattr(module, attr):
            raise RecipeError(f"{where}: a recipe module needs {attr}")
    for entry in module.STAGES:
        if not (isinstance(entry, StageSpec) or (isinstance(entry, type) and issubclass(entry, Stage))):
            raise RecipeError(f"{where}: STAGES holds {entry!r}, not a Stage class or Stage.using(...)")
    classes = [stage_class(e) for e in module.STAGES]
    providers = wire(where, classes, tuple(getattr(module, "PROVIDERS", ())))
    recipe = Recipe(module.NAME, module.SUMMARY, tuple(module.STAGES), dict(getattr(module, "DEFAULTS", {})),
                    module, getattr(module, "check", None), providers)
    known = flag_names(recipe.option_groups())
    unknown = sorted(set(recipe.defaults) - known)
    if unknown:
        raise RecipeError(f"{where}: DEFAULTS names {', '.join(unknown)}, not a flag of the run or of its stages "
                          f"({', '.join(c.step for c in recipe.stage_classes)})")
    return recipe


def recipes() -> dict[str, Recipe]:
    import pipelines

    found = {}
    for info in pkgutil.iter_modules(pipelines.__path__):
        module = importlib.import_module(f"pipelines.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "STAGES"):
            found[module.NAME] = load_recipe(module)
    return dict(sorted(found.items()))


def get_recipe(name: str) -> Recipe:
    available = recipes()
    if name not in available:
        raise UsageError(f"--pipeline: unknown recipe {name!r} (available: {', '.join(available)})")
    return available[name]


def option_groups() -> list[type[PipelineOptions]]:
    """Every flag group of every recipe, run-wide first (all are accepted with any recipe)."""
    groups: list = []
    for recipe in recipes().values():
        groups.extend(g for g in recipe.option_groups() if g not in groups)
    return groups
