from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class MetaclipOptions(PipelineOptions):
    """MetaCLIP matching and balancing."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--metadata", default="default",
                            help="JSON list of metadata entries (e.g. MetaCLIP's metadata.json); "
                                 "'default' = the shipped list (metadata/default.json)")
        parser.add_argument("--t", type=float, default=None,
                            help="balancing threshold t (MetaCLIP: 20000 for 1.6B captions); "
                                 "default: auto, 20000 scaled to the pool size, at least 2")
