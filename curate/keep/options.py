from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class KeepOptions(PipelineOptions):
    """One SQL test of the samples' ledger columns (the dialect of `curate.subset cut --where`)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--keep", default=None,
                            help="keep only the samples this SQL true/false test accepts, e.g. \"nsfw_score < 0.45 "
                                 "AND aesthetic_score >= 5\" (DuckDB's dialect, as `curate.subset cut --where`); "
                                 "a sample it rejects (false or NULL) is dropped as keep:expression")
