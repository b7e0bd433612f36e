"""Block-list flags and the checked BlockSettings every stage that checks them carries."""
from __future__ import annotations

import os
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from curate.blocklist.names import KINDS, NEAR_KINDS
from curate.errors import UsageError

MAX_RADIUS = {"pdq": 63, "phash": 16}  # past these a radius search probes too much to be useful


class BlockListOptions(PipelineOptions):
    """Block lists: hashes and URLs that must never be fetched or kept."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--block_list", action="append", default=None, metavar="KIND:PATH",
            help=f"a list of hashes or URLs to drop (repeatable); KIND is one of {', '.join(KINDS)}; "
                 "one lowercase hex hash a line (extra comma-separated fields, as ThreatExchange's "
                 "'hash,quality,...', are ignored), or one URL a line for url (the whole line)")
        parser.add_argument("--block_pdq_radius", type=int, default=31,
                            help="largest Hamming distance (bits of 256) a pdq entry matches at")
        parser.add_argument("--block_phash_radius", type=int, default=0,
                            help="largest Hamming distance (bits of 64) a phash entry matches at")


@dataclass(frozen=True)
class ListSpec:
    name: str  # the file's name without its extension: what the ledger's block_list says
    kind: str
    path: str


@dataclass(frozen=True)
class BlockSettings:
    lists: tuple[ListSpec, ...] = ()
    pdq_radius: int = 31
    phash_radius: int = 0

    def radius(self, kind: str) -> int:
        return {"pdq": self.pdq_radius, "phash": self.phash_radius}.get(kind, 0)


def parse_spec(value: str) -> ListSpec:
    kind, colon, path = value.partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in KINDS or not path:
        raise UsageError(f"--block_list: {value!r} is not KIND:PATH with KIND one of {', '.join(KINDS)}")
    if not FileSystems.exists(path) or ("://" not in path and not os.path.isfile(path)):
        raise UsageError(f"--block_list: {path} is not a file")
    name = os.path.basename(path.rstrip("/")).split(".", 1)[0] or path
    return ListSpec(name, kind, path)


def block_settings(options: PipelineOptions) -> BlockSettings:
    """The checked settings; UsageError (exit 2) on a bad flag, before the pipeline starts."""
    o = options.view_as(BlockListOptions)
    specs = tuple(parse_spec(v) for v in (o.block_list or ()))
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"--block_list: two lists are named {name!r} (the ledger names a list by its "
                             "file name): rename one file")
    for kind in NEAR_KINDS:
        radius = getattr(o, f"block_{kind}_radius")
        if not 0 <= radius <= MAX_RADIUS[kind]:
            raise UsageError(f"--block_{kind}_radius: must be 0..{MAX_RADIUS[kind]}, got {radius}")
    return BlockSettings(specs, o.block_pdq_radius, o.block_phash_radius)
