from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class SubsetOptions(PipelineOptions):
    """Resharding by a subset (the reshard recipe)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--subset", default=None,
                            help="reshard: the subset to keep, a sorted DataComp uid array (.npy, "
                                 "dtype=[('f0','<u8'),('f1','<u8')]), e.g. from python -m curate.subset")
        parser.add_argument("--shard_size", type=int, default=None,
                            help="reshard: samples per output shard, DataComp's name for --samples_per_shard")
