"""One DoFn applies any list of filter rules; the first rule that objects names the reason."""
from __future__ import annotations

from typing import Callable

import pyarrow as pa

from curate.sample import Sample
from curate.stage import SampleStage

Rule = Callable[[Sample], "str | None"]


class FilterStage(SampleStage):
    """Drops a sample with `<name>:<detail>` from the first rule that returns a detail."""

    def __init__(self, name: str, rules: list[Rule], fields: dict[str, pa.DataType] | None = None):
        self.name = name
        self.rules = rules
        self.fields = fields or {}

    def judge(self, sample: Sample) -> str | None:
        for rule in self.rules:
            detail = rule(sample)
            if detail is not None:
                return detail
        return None
