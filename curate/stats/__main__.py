"""`python -m curate.stats OUTPUT`: a run's statistics as tables; `--plots DIR` / `--html FILE` too.

OUTPUT is a run's output folder (local, gs://, s3://). Exit 2 with one line when it is not one.
DuckDB computes the tables over the ledger parts, within a 1 GB memory limit (curate.ledger).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

from curate.errors import UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m curate.stats", description=__doc__.split("\n")[0])
    parser.add_argument("output", help="a curate run's output folder (local, gs://..., s3://...)")
    parser.add_argument("--parts", type=int, default=None,
                        help="read only this many ledger parts, evenly spread (quick look at a huge run)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DuckDB threads computing the statistics (default: one per core)")
    parser.add_argument("--metadata", default=None,
                        help="the run's MetaCLIP metadata file, to name entries (default: the shipped list)")
    parser.add_argument("--top", type=int, default=20, help="rows of the top-N tables (hosts, entries, languages)")
    parser.add_argument("--max_rows", type=int, default=40, help="rows printed per table")
    parser.add_argument("--plots", default=None, help="write one PNG per plot into this folder")
    parser.add_argument("--html", default=None, help="write a self-contained HTML report (tables and plots)")
    parser.add_argument("--quiet", action="store_true", help="do not print the tables")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        for flag in ("parts", "workers", "top", "max_rows"):
            value = getattr(args, flag)
            if value is not None and value < 1:
                raise UsageError(f"--{flag}: must be >= 1")
        drawing = "--html" if args.html else "--plots" if args.plots else None
        if drawing and importlib.util.find_spec("matplotlib") is None:
            raise UsageError(f"{drawing}: drawing needs matplotlib: pip install 'curate[stats]'")
        from curate.stats.collect import collect
        from curate.stats.tables import format_tables, tables

        rs = collect(args.output, parts=args.parts, workers=args.workers, metadata=args.metadata)
    except UsageError as e:
        print(f"curate.stats: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print(format_tables(tables(rs, args.top), args.max_rows), flush=True)
    if args.plots or args.html:
        from curate.stats.report import render, write_html, write_pngs

        drawn = render(rs, args.top)  # drawn once for both, top-N as the tables
        if args.plots:
            written = write_pngs(rs, args.plots, drawn)
            print(f"wrote {len(written)} plot(s) to {args.plots}", flush=True)
        if args.html:
            print(f"wrote {write_html(rs, args.html, args.top, drawn)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
