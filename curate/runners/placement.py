"""GPUs for the stages that run models, nowhere else: `--accelerator` as a per-stage resource hint.

A Beam resource hint on a transform reaches the environment its steps run in; Dataflow's right
fitting then gives those steps workers with that accelerator and the rest ordinary CPU workers
(do not also set `worker_accelerator`). The hint goes on the steps each stage declares as its
model steps (`Stage.model_steps`, e.g. Score's `Score_*`: the RunInference forward passes), or
on the transforms whose full label matches `--accelerator_stages` (fnmatch patterns) when it is
given, and on everything inside them; a pattern that matches nothing in the recipe's graph is
refused before the job starts.
"""
from __future__ import annotations

from fnmatch import fnmatch

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.resources import AcceleratorHint

from curate.errors import UsageError
from curate.stage import Stage


class PlacementOptions(PipelineOptions):
    """Where stages run: a GPU for the model stages only (Beam resource hints)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--accelerator", default=None,
                            help="accelerator for the model stages only, as a Beam resource hint, e.g. "
                                 "'type:nvidia-l4;count:1;install-nvidia-driver' (Dataflow right fitting; "
                                 "use --resource_hints accelerator=... instead to put it on every step)")
        parser.add_argument("--accelerator_stages", default=None,
                            help="comma-separated patterns of the step labels that get --accelerator "
                                 "(default: the model steps the recipe's stages declare, e.g. Score/Score_*)")


def stage_patterns(options) -> list[str]:
    given = options.view_as(PlacementOptions).accelerator_stages
    return [p.strip() for p in (given or "").split(",") if p.strip()]


def declared_patterns(root) -> list[str]:
    """`<stage label>/<model step>` for every stage in the graph that declares model steps."""
    found = []

    def visit(node):
        if isinstance(node.transform, Stage) and node.transform.model_steps:
            found.extend(f"{node.full_label}/{step}" for step in node.transform.model_steps)
        for part in node.parts:
            visit(part)

    visit(root)
    return found


def check_accelerator(options) -> None:
    placement = options.view_as(PlacementOptions)
    if placement.accelerator is None:
        return
    if "type:" not in placement.accelerator:
        raise UsageError(f"--accelerator: {placement.accelerator!r} names no type "
                         "(e.g. 'type:nvidia-l4;count:1;install-nvidia-driver')")
    if placement.accelerator_stages is not None and not stage_patterns(options):
        raise UsageError("--accelerator_stages: no stage pattern given")


def _hint_all(node, hints: dict[str, bytes]) -> None:
    node.resource_hints = {**node.resource_hints, **hints}
    for part in node.parts:
        _hint_all(part, hints)


def place_accelerator(pipeline, options) -> list[str]:
    """Put --accelerator on the matching stages of a built graph; returns their labels."""
    placement = options.view_as(PlacementOptions)
    if placement.accelerator is None:
        return []
    root = pipeline.transforms_stack[0]
    patterns = stage_patterns(options) or declared_patterns(root)
    hints = AcceleratorHint.parse(placement.accelerator)
    matched: list[str] = []

    def visit(node):
        if node.full_label and any(fnmatch(node.full_label, p) for p in patterns):
            _hint_all(node, hints)
            matched.append(node.full_label)
            return
        for part in node.parts:
            visit(part)

    visit(root)
    if not matched:
        stages = ", ".join(sorted({n.full_label for n in root.parts}))
        wanted = ", ".join(patterns) or "a model step (no stage of this run declares one)"
        raise UsageError(f"--accelerator_stages: nothing in this recipe's graph matches {wanted} (its stages: {stages})")
    return matched
