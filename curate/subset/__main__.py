"""`python -m curate.subset export|cut|combine|info`: subsets as DataComp uid arrays.

    export OUT --to kept.npy                       the kept uids of a run
    cut OUT --keep_fraction dfn_score=0.15 --to s.npy  re-cut from the ledger, no recompute
    cut OUT --where "dfn_score >= 0.3 AND language = 'de'" --to s.npy   any SQL test of a row
    combine a.npy b.npy --and --to both.npy        set algebra (--and | --or | --not)
    info s.npy                                     count, first and last uids, checks

A bad flag or file ends with one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from curate.errors import UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _add_output(cmd) -> None:
    cmd.add_argument("--to", required=True, help="the subset .npy to write (DataComp's format)")
    cmd.add_argument("--summary", default=None, help="summary JSON (default: --to with .json)")
    cmd.add_argument("--uid_column", default="uid",
                     help="ledger column of the uids to write; e.g. src_uid, the DataComp uid of a run on "
                          "DataComp shards")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m curate.subset", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    export = commands.add_parser("export", help="the kept uids of a run -> DataComp .npy")
    export.add_argument("ledger", help="run output folder, ledger folder, or ledger Parquet file(s)")
    _add_output(export)
    cut = commands.add_parser("cut", help="select ledger rows by cuts (AND) -> DataComp .npy")
    cut.add_argument("ledger", help="run output folder, ledger folder, or ledger Parquet file(s)")
    cut.add_argument("--where", action="append", default=[],
                     help="a SQL true/false test of a ledger row (DuckDB's dialect), e.g. \"dfn_score >= 0.3 AND "
                          "(width >= 256 OR language IN ('en', 'de'))\"; a NULL result is not selected")
    cut.add_argument("--keep_fraction", action="append", default=[], metavar="COLUMN=F",
                     help="the pool's top fraction by a score, exactly as the scoring stage cuts it")
    cut.add_argument("--min", action="append", default=[], metavar="COLUMN=V", help="COLUMN >= V")
    cut.add_argument("--max", action="append", default=[], metavar="COLUMN=V", help="COLUMN <= V")
    cut.add_argument("--language", action="append", default=[], metavar="CODE",
                     help="caption language (the language column), e.g. en; repeat for several")
    cut.add_argument("--reason", action="append", default=None, metavar="PATTERN",
                     help="candidate rows by fate: 'kept' or a reason pattern such as 'dedup:*'; repeat for "
                          "several; '*' = every row (default: kept, score:below_threshold, "
                          "score:not_target_cluster)")
    _add_output(cut)
    comb = commands.add_parser("combine", help="set algebra on subsets")
    comb.add_argument("subsets", nargs="+", help="two or more subset .npy files")
    group = comb.add_mutually_exclusive_group(required=True)
    for op, what in (("and", "intersection"), ("or", "union"), ("not", "the first minus the others")):
        group.add_argument(f"--{op}", dest="op", action="store_const", const=op, help=what)
    comb.add_argument("--to", required=True, help="the subset .npy to write")
    info = commands.add_parser("info", help="check a subset file and print its size")
    info.add_argument("subset")
    return parser


def _report(summary: dict) -> str:
    lines = [f"curate.subset: {summary['uids']:,} uids -> {summary['output']}"
             + (f" ({summary['selected_rows']:,} of {summary['rows']:,} ledger rows)" if "rows" in summary else "")]
    for cut in summary.get("cuts", []):
        lines.append(f"  {cut['rows']:>12,} rows  {cut['cut']}")
    for column, fact in summary.get("keep_fraction", {}).items():
        lines.append(f"  {column}: threshold {fact['threshold']} keeps {fact['at_or_above']:,} of a pool "
                     f"of {fact['pool']:,} (k = {fact['keep']:,})")
    for key in ("repeated_uids", "bad_uids"):
        if summary.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {summary[key]:,}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.command == "info":
            from curate.subset.format import keys_to_hex, open_subset, pairs_to_keys

            pairs = open_subset(args.subset, flag="info")
            ends = keys_to_hex(pairs_to_keys(pairs[[0, -1]])) if len(pairs) else [None, None]
            print(json.dumps({"subset": args.subset, "uids": len(pairs), "first": ends[0], "last": ends[1]}))
            return 0
        if args.command == "combine":
            from curate.subset.combine import combine

            summary = combine(args.subsets, args.op, args.to)
        else:
            from curate.subset.cut import run_cut

            named = dict(reason=["kept"]) if args.command == "export" else dict(
                where=args.where, keep_fraction=args.keep_fraction, minimum=args.min, maximum=args.max,
                language=args.language, reason=args.reason)
            summary = run_cut(args.ledger, args.to, args.summary, uid_column=args.uid_column, **named)
    except UsageError as e:
        print(f"curate.subset: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(_report(summary), flush=True)
    if not summary["uids"]:
        print("curate.subset: warning: the subset is empty: no row passed every cut (see the counts above)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
