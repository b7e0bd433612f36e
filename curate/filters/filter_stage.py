"""A filter stage: a list of rules, each `rule(sample) -> None (keep) | detail (drop)`; the first
rule that objects names the reason `<name>:<detail>`."""
from __future__ import annotations

from typing import Callable, ClassVar

import pyarrow as pa

from curate.sample import Sample
from curate.stage import SampleStage

Rule = Callable[[Sample], "str | None"]


class FilterStage(SampleStage):
    """A subclass names its rules (and the ledger fields they record); an instance may too."""

    name = "filter"
    rules: ClassVar[tuple[Rule, ...]] = ()

    def __init__(self, name: str | None = None, rules: list[Rule] | None = None,
                 fields: dict[str, pa.DataType] | None = None):
        super().__init__()
        if name is not None:
            self.name = name
        if rules is not None:
            self.rules = tuple(rules)
        self.fields.update(fields or {})

    def judge(self, sample: Sample) -> str | None:
        for rule in self.rules:
            detail = rule(sample)
            if detail is not None:
                return detail
        return None
