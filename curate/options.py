"""The run-wide flags (input, output, batches, seed), as Beam PipelineOptions.

Every stage declares the options classes it owns (`Stage.options`); the recipe registry
(`curate.recipes.option_groups`) collects them for the parser and --help.
"""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import bool_flag


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
