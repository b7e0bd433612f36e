from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class MetaclipOptions(PipelineOptions):
    """MetaCLIP matching and balancing."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--metadata", default="default",
                            help="JSON list of metadata entries (e.g. MetaCLIP's metadata.json); "
                                 "'default' = the shipped list (metadata/default.json); with "
                                 "--metaclip_version 2 a folder of <language>.json lists ('default' = "
                                 "metadata/languages/)")
        parser.add_argument("--t", type=float, default=None,
                            help="balancing threshold t (MetaCLIP: 20000 for 1.6B captions); "
                                 "default: auto, 20000 scaled to the pool size, at least 2; with "
                                 "--metaclip_version 2 this is t_en (auto: 170000 scaled to the English pool)")
        parser.add_argument("--metaclip_version", type=int, choices=(1, 2), default=1,
                            help="1: MetaCLIP (one English list); 2: MetaCLIP 2 worldwide (language ID, "
                                 "per-language metadata and t)")
        parser.add_argument("--metaclip_cjk_ranges", choices=("reference", "corrected"), default="reference",
                            help="MetaCLIP 2 padding: 'reference' = its CJK-or-similar ranges exactly; "
                                 "'corrected' adds Hiragana/Katakana and Hangul, which the reference misses")
        parser.add_argument("--language_map", default=None,
                            help="MetaCLIP 2: CODE=LANGUAGE,... aliases over the built-in table "
                                 "(yue=zh_yue, zh_yue=zh, zh_classical=zh, ...); CODE= removes one")


def worldwide_settings(options):
    """The MetaCLIP 2 settings of a run, or None for MetaCLIP v1; a bad --language_map is a UsageError."""
    from curate.metaclip.languages import parse_language_map
    from curate.metaclip.worldwide import Worldwide

    mc = options.view_as(MetaclipOptions)
    if mc.metaclip_version != 2:
        return None
    parse_language_map(mc.language_map)
    return Worldwide(mc.metaclip_cjk_ranges, mc.language_map)
