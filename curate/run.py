"""`python -m curate.run --pipeline NAME [flags]`: validate, build the recipe's graph, run, report.

Every check a user can fail (flags, files, metadata, columns) runs before the pipeline starts
and ends with one line on stderr and exit status 2. Beam's own flags pass through.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from curate.errors import UsageError
from curate.flow import Flow
from curate.inputs import open_source
from curate.io.cleanup import remove_stale
from curate.io.run_stats import read_stats, write_stats
from curate.options import CurateOptions, option_groups
from curate.recipes import get_recipe, recipes
from curate.runners.checks import check_runner, is_dry_run
from curate.runners.dry_run import dry_run_report, format_dry_run
from curate.runners.placement import place_accelerator
from curate.summary import format_summary

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


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<10} {module.SUMMARY}" for name, module in recipes().items())
    parser = _Parser(
        prog="python -m curate.run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Curate image-text data with one Apache Beam graph.\n\nrecipes (--pipeline):\n{listing}",
        epilog="Beam's flags pass through: --runner (default FnApiRunner; also DataflowRunner, "
               "PortableRunner, SparkRunner, FlinkRunner, DaskRunner), --direct_num_workers, "
               "--direct_running_mode, --temp_location, --project, --region, ...",
    )
    for group_cls in option_groups():
        group = parser.add_argument_group(group_cls.__doc__.strip().rstrip("."))
        group_cls._add_argparse_args(group)
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


def check_beam_flags(rest: list[str]) -> None:
    _, unknown = _beam_flags_parser().parse_known_args(rest)
    if unknown:
        raise UsageError(f"unknown flag {unknown[0]!r} (see --help)")


def parse(argv: list[str]):
    """Our flags (with the recipe's defaults applied), the recipe, and Beam's flags."""
    parser = build_parser()
    known, rest = parser.parse_known_args(argv)
    recipe = get_recipe(known.pipeline)
    parser.set_defaults(**getattr(recipe, "DEFAULTS", {}))
    known, rest = parser.parse_known_args(argv)
    if any("dask" in arg.lower() for arg in rest):
        import curate.runners.dask  # noqa: F401  (registers Beam's --dask_* flags)
    check_beam_flags(rest)
    return known, recipe, rest


def validate(known: argparse.Namespace) -> None:
    if known.t is not None and not known.t > 0:
        raise UsageError(f"--t: must be > 0, got {known.t:g}")
    if known.output_format not in ("webdataset", "parquet"):
        raise UsageError(f"--output_format: {known.output_format!r} is not webdataset or parquet")
    for flag in ("samples_per_shard", "batch_size"):
        if getattr(known, flag) < 1:
            raise UsageError(f"--{flag}: must be >= 1")


def given(argv: list[str], flag: str) -> bool:
    """Whether the user set a flag (a column named by the user must exist; a default may fall back)."""
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def make_runner(options: PipelineOptions):
    name = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    name = RUNNER_ALIASES.get(name, name)
    options.view_as(StandardOptions).runner = name
    return name


def run(argv: list[str] | None = None) -> dict:
    """Validate, run the recipe, clean up leftovers, return the run's stats."""
    argv = sys.argv[1:] if argv is None else argv
    known, recipe, rest = parse(argv)
    validate(known)
    explicit = (given(argv, "--url_col"), given(argv, "--caption_col"))
    source = open_source(known.input, known.input_format, known.url_col, known.caption_col, explicit)
    output = known.output or os.path.join("curate-out", known.pipeline)
    known.output = output
    options = PipelineOptions(rest, **vars(known))
    runner = make_runner(options)
    check_runner(runner, options, known)
    recipe.prepare(options, source)
    run_info = {"pipeline": recipe.NAME, "source": source.describe(), "output": output,
                "runner": runner.rsplit(".", 1)[-1], "seed": known.seed}
    print(f"curate {recipe.NAME}: reading {source.describe()}; writing to {output}", flush=True)
    started = time.time()
    with beam.Pipeline(runner=runner, options=options) as p:
        flow = Flow(p, options, source, output, run_info)
        flow.write(recipe.build(flow))
        place_accelerator(p, options)
    if is_dry_run(options):
        return dry_run_report(p.result, run_info)
    stats = read_stats(output)
    stats["wall_time_s"] = round(time.time() - started, 3)
    write_stats(output, stats)
    remove_stale(output, stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        stats = run(argv)
    except UsageError as e:
        print(f"curate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_dry_run(stats) if stats.get("dry_run") else format_summary(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
