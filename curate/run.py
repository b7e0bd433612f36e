"""`python -m curate.run --pipeline NAME [flags]`: validate, build the recipe's graph, run, report.

Every check a user can fail (flags, files, metadata, columns) runs before the pipeline starts
and ends with one line on stderr and exit status 2. Beam's own flags pass through.
"""
from __future__ import annotations

import argparse
import difflib
import os
import sys
import time

from curate.runners import quiet_logs

quiet_logs.install()  # before Beam is imported: its import-time warnings are not ours to print

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions  # noqa: E402

from curate.errors import UsageError  # noqa: E402
from curate.flow import Flow  # noqa: E402
from curate.inputs import open_source  # noqa: E402
from curate.io.cleanup import remove_stale  # noqa: E402
from curate.io.output_lock import output_lock  # noqa: E402
from curate.io.run_stats import read_stats  # noqa: E402
from curate.recipes import get_recipe, option_groups as stage_option_groups, recipes  # noqa: E402
from curate.run_context import RunContext  # noqa: E402
from curate.runners.checks import check_runner, is_dry_run  # noqa: E402
from curate.runners.dry_run import dry_run_report, format_dry_run  # noqa: E402
from curate.runners import progress  # noqa: E402
from curate.runners.placement import PlacementOptions, place_accelerator  # noqa: E402
from curate.summary import format_summary  # noqa: E402

EXIT_USAGE = 2
RUNNER_ALIASES = {
    "FnApiRunner": "apache_beam.runners.portability.fn_api_runner.FnApiRunner",
    # Beam's own DaskRunner mixes a ParDo's tagged outputs: curate's fixed subclass runs instead
    "DaskRunner": "curate.runners.dask.DaskRunner",
    "apache_beam.runners.dask.dask_runner.DaskRunner": "curate.runners.dask.DaskRunner",
}
DEFAULT_RUNNER = "FnApiRunner"  # in-process and offline; DirectRunner may try to fetch Prism


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def option_groups() -> list:
    """Every flag group: the run's, every stage's, then where stages run and how progress shows."""
    return [*stage_option_groups(), PlacementOptions, progress.ProgressOptions]


def _defaults_line(recipe) -> str:
    return ", ".join(f"--{k} {v}" for k, v in recipe.defaults.items())


def recipe_listing() -> str:
    """One line per recipe: name, summary, the flag defaults it changes (`--list`)."""
    lines = []
    for name, recipe in recipes().items():
        changed = _defaults_line(recipe)
        lines.append(f"  {name:<10} {recipe.summary}" + (f"\n  {'':<10} defaults: {changed}" if changed else ""))
    return "\n".join(lines)


def recipe_help(recipe) -> str:
    """What `--pipeline NAME --help` says of that recipe: its stages in order and its defaults."""
    lines = [f"the {recipe.name} recipe: {recipe.summary}", f"  stages: {recipe.outline()}"]
    for cls in recipe.stage_classes:
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        lines.append(f"    {cls.step:<16} {doc}")
    lines.append(f"  defaults: {_defaults_line(recipe) or 'none changed'}")
    return "\n".join(lines)


def _pre_parser() -> argparse.ArgumentParser:
    """Just --pipeline and --list: the recipe decides the defaults the full parser shows."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument("--pipeline", default="metaclip")
    parser.add_argument("--list", action="store_true")
    return parser


def build_parser(recipe=None) -> argparse.ArgumentParser:
    recipe = recipe if recipe is not None else get_recipe("metaclip")
    parser = _Parser(
        prog="python -m curate.run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Curate image-text data with one Apache Beam graph.\n\nrecipes (--pipeline):\n"
                    f"{recipe_listing()}\n\n{recipe_help(recipe)}\n\nDefaults below are the {recipe.name} "
                    "recipe's (`--pipeline NAME --help` shows another's).",
        epilog="Beam's flags pass through: --runner (default FnApiRunner; also DataflowRunner, "
               "PortableRunner, SparkRunner, FlinkRunner, DaskRunner), --direct_num_workers, "
               "--direct_running_mode, --temp_location, --project, --region, ...",
    )
    for group_cls in option_groups():
        group = parser.add_argument_group(group_cls.__doc__.strip().rstrip("."))
        group_cls._add_argparse_args(group)
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.set_defaults(**recipe.defaults)  # keys checked against the stages' flags when the recipe loaded
    for action in parser._actions:
        if action.default is not argparse.SUPPRESS and action.help and "default" not in action.help:
            action.help += f" (default: {action.default})"
    return parser


def _beam_flags_parser() -> argparse.ArgumentParser:
    parser = _Parser(allow_abbrev=False, add_help=False, conflict_handler="resolve")
    ours = set(option_groups())
    for cls in PipelineOptions.__subclasses__():
        if cls not in ours:
            cls._add_argparse_args(parser)
    return parser


def _flag_names(*parsers) -> list[str]:
    return [s for parser in parsers for a in parser._actions for s in a.option_strings if s.startswith("--")]


def check_beam_flags(rest: list[str], ours: argparse.ArgumentParser | None = None) -> None:
    beam_flags = _beam_flags_parser()
    _, unknown = beam_flags.parse_known_args(rest)
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        close = difflib.get_close_matches(flag, _flag_names(beam_flags, ours or build_parser()), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown flag {unknown[0]!r} ({hint}see --help)")


def parse(argv: list[str]):
    """Our flags (with the recipe's defaults applied), the recipe, and Beam's flags."""
    pre, _ = _pre_parser().parse_known_args(argv)
    recipe = get_recipe(pre.pipeline)
    parser = build_parser(recipe)
    known, rest = parser.parse_known_args(argv)
    if any("dask" in arg.lower() for arg in rest):
        import curate.runners.dask  # noqa: F401  (registers Beam's --dask_* flags)
    check_beam_flags(rest, parser)
    return known, recipe, rest


def validate(known: argparse.Namespace) -> None:
    """The run-wide flags (each stage checks its own when it is configured)."""
    if known.output_format not in ("webdataset", "parquet"):
        raise UsageError(f"--output_format: {known.output_format!r} is not webdataset or parquet")
    for flag in ("samples_per_shard", "batch_size"):
        if getattr(known, flag) < 1:
            raise UsageError(f"--{flag}: must be >= 1")


def given(argv: list[str], flag: str) -> bool:
    """Whether the user set a flag (a column named by the user must exist; a default may fall back)."""
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def make_runner(options: PipelineOptions):
    from apache_beam.runners.runner import create_runner

    name = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    name = RUNNER_ALIASES.get(name, name)
    try:
        create_runner(name)  # only resolves the name: a typo fails here, not inside Beam
    except (ValueError, ImportError, AttributeError) as e:
        known = "FnApiRunner, DirectRunner, PortableRunner, DataflowRunner, SparkRunner, FlinkRunner, DaskRunner"
        why = "" if isinstance(e, ValueError) else f" ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
        raise UsageError(f"--runner: unknown runner {name!r}{why}; known: {known}, or a full class path") from None
    options.view_as(StandardOptions).runner = name
    return name


def check_output(output: str) -> None:
    """A local --output must be a folder or creatable as one (not a file, not under a file)."""
    if "://" in output:
        return
    path = os.path.abspath(output)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        what = "is a file" if path == os.path.abspath(output) else f"is under the file {path}"
        raise UsageError(f"--output: {output} {what}; name a folder")


class _MeteredFlow(Flow):
    """The recipe's flow with a progress count after the read and after every stage."""

    def __init__(self, *args, total: int | None = None):
        super().__init__(*args)
        self.total = total

    def read(self):
        return progress.tally(super().read(), "read", self.total)

    def apply(self, stage, batches):
        return progress.tally(super().apply(stage, batches), stage.step)

    def write(self, kept):
        return super().write(progress.tally(kept, "written"))


def run(argv: list[str] | None = None) -> dict:
    """Validate, configure the recipe's stages once, run, clean up leftovers, return the run's stats."""
    argv = sys.argv[1:] if argv is None else argv
    known, recipe, rest = parse(argv)
    validate(known)
    explicit = (given(argv, "--url_col"), given(argv, "--caption_col"))
    source = open_source(known.input, known.input_format, known.url_col, known.caption_col, explicit,
                         known.max_image_bytes)
    output = known.output or os.path.join("curate-out", known.pipeline)
    known.output = output
    check_output(output)
    with output_lock(output):  # a second run into the same folder stops here (exit 2)
        return _run_holding_output(known, recipe, rest, source, output)


def _run_holding_output(known: argparse.Namespace, recipe, rest: list[str], source, output: str) -> dict:
    """The run itself, while this process holds the output folder (output_lock.py)."""
    del known.list
    known.progress = progress.enabled(known.progress)  # decided here: workers' stderr is no terminal
    options = PipelineOptions(rest, **vars(known))
    runner = make_runner(options)
    context = RunContext(options, source, output)
    stages = recipe.configure(context)  # every stage checks its flags here, once
    check_runner(runner, options, known, stages)
    for stage in stages:
        stage.prepare()  # weights, metadata: before the pipeline starts
    header = {"pipeline": recipe.name, "source": source.describe(), "output": output,
                "runner": runner.rsplit(".", 1)[-1], "seed": known.seed}
    print(f"curate {recipe.name}: reading {source.describe()}; writing to {output}", flush=True)
    make_flow = (lambda *a: _MeteredFlow(*a, total=progress.total_rows(source))) if known.progress else Flow
    context.started = time.time()
    with beam.Pipeline(runner=runner, options=options) as p:
        make_flow(p, context, header, stages).build()
        place_accelerator(p, options)
    progress.finish()
    if is_dry_run(options):
        return dry_run_report(p.result, header)
    stats = read_stats(output)
    remove_stale(output, stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    quiet_logs.install()
    argv = sys.argv[1:] if argv is None else argv
    try:
        if _pre_parser().parse_known_args(argv)[0].list:
            print(f"recipes (--pipeline NAME; --pipeline NAME --help shows its flags and defaults):\n"
                  f"{recipe_listing()}")
            return 0
        stats = run(argv)
    except UsageError as e:
        print(f"curate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_dry_run(stats) if stats.get("dry_run") else format_summary(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
