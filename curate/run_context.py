"""What a stage is configured from: the run's options, its source and output, once per run.

`Stage.from_run(run)` reads its flags here and validates them. Settings more than one stage
needs are derived once through `run.derive(fn)`: every caller gets the same object. What a
stage needs from another (the scoring models' embeddings, a fetcher) it asks for with
`run.provided(capability)`: the recipe names which of its stages provides it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from curate.inputs import is_bundled_sample
from curate.io.source import Source
from curate.options import CurateOptions
from curate.runners.kinds import workers_elsewhere


class RunContext:
    def __init__(self, options: PipelineOptions, source: Source, output: str):
        self.options = options
        self.source = source
        self.output = output
        self.curate = options.view_as(CurateOptions)
        self._derived: dict[Callable, Any] = {}
        self.providers: dict[str, type] = {}  # capability -> the recipe's Stage class that provides it
        self.started = time.time()
        # the stages configured so far, in recipe order (Recipe.configure): what a stage may read of
        # those before it (their `fields`, e.g. the columns `--keep` may test)
        self.configured: list = []

    @property
    def seed(self) -> int:
        return self.curate.seed

    @property
    def batch_size(self) -> int:
        return self.curate.batch_size

    def view(self, options_class: type[PipelineOptions]):
        return self.options.view_as(options_class)

    def derive(self, settings_of: Callable[[PipelineOptions], Any]):
        """`settings_of(options)`, computed (and validated) once per run."""
        if settings_of not in self._derived:
            self._derived[settings_of] = settings_of(self.options)
        return self._derived[settings_of]

    def provided(self, capability: str):
        """What the recipe's provider of `capability` offers in this run; None without one."""
        provider = self.providers.get(capability)
        return None if provider is None else provider.provide(capability, self)

    @property
    def downloads(self) -> bool:
        """Whether URL-only samples are fetched (off for the offline bundled sample by default)."""
        if self.curate.download is not None:
            return self.curate.download
        return self.curate.input is not None and not is_bundled_sample(self.curate.input)

    @property
    def fetches_urls(self) -> bool:
        """Whether this run's samples arrive as URLs that it downloads."""
        return self.downloads and self.source.needs_download

    @property
    def workers_elsewhere(self) -> bool:
        """Whether the runner's workers are other machines (they fetch model weights themselves)."""
        return workers_elsewhere(self.options.view_as(StandardOptions).runner)
