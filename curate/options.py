"""All of curate's flags, as Beam PipelineOptions (so they travel to workers with the job).

Each stage package owns its own options class; `option_groups()` lists them for --help.
"""
from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def bool_flag(parser, name: str, default, help: str) -> None:
    parser.add_argument(name, type=str2bool, nargs="?", const=True, default=default, help=help)


class CurateOptions(PipelineOptions):
    """Input, output and run-wide flags."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--pipeline", default="metaclip", help="recipe to run (see the list above)")
        parser.add_argument("--input", default=None,
                            help="URL list (.parquet/.csv/.tsv/.jsonl, glob or {a..b} pattern), image "
                                 "folder, or WebDataset .tar shards / img2dataset output folder; "
                                 "default: the bundled real sample (offline)")
        parser.add_argument("--input_format", default="auto",
                            help="auto | urls | folder | webdataset")
        parser.add_argument("--url_col", default="url", help="URL column of a URL list (case-insensitive)")
        parser.add_argument("--caption_col", default="caption",
                            help="caption column of a URL list (case-insensitive; 'text' also accepted)")
        parser.add_argument("--output", default=None, help="output folder; default ./curate-out/<pipeline>")
        parser.add_argument("--output_format", default="webdataset",
                            help="webdataset (tar + parquet sidecar) | parquet (image bytes in a column)")
        parser.add_argument("--samples_per_shard", type=int, default=10000, help="target samples per output shard")
        parser.add_argument("--batch_size", type=int, default=1000,
                            help="input rows per batch (the unit of work between stages)")
        parser.add_argument("--seed", type=int, default=0, help="seed of every random decision")
        bool_flag(parser, "--download", None,
                  "download URL-only samples (default: yes, except for the offline bundled sample); "
                  "--download=false curates text only and writes a curated URL list")


def option_groups() -> list[type[PipelineOptions]]:
    """Every curate options class, in --help order."""
    from curate.balance.options import BalanceOptions
    from curate.caption.options import CaptionOptions
    from curate.dedup.options import DedupOptions
    from curate.download.options import DownloadOptions
    from curate.metaclip.options import MetaclipOptions
    from curate.runners.placement import PlacementOptions
    from curate.score.options import ScoreOptions
    from curate.subset.options import SubsetOptions

    return [CurateOptions, MetaclipOptions, DownloadOptions, ScoreOptions, DedupOptions, BalanceOptions,
            CaptionOptions, PlacementOptions, SubsetOptions]
