"""CSV/TSV list reading: curate's line-aware reader vs the pandas chunked reader it replaced.

The reader (curate/io/row_files.py) parses with Python's csv module in strict mode so that a bad
line (unterminated quote, ragged row) becomes one `input:bad_row` and reading goes on; pandas
raised on the first such line. Both read the same generated list (URL, caption, one carried
column) into row dicts; best of --rounds, rows per second and the ratio.

    python benchmarks/bench_list_reader.py --rows 200000
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd

from curate.io.row_files import iter_rows


def pandas_rows(path: str):
    """The previous reader: pandas chunks, '' -> None."""
    chunks = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=8192,
                         encoding_errors="surrogateescape")
    for chunk in chunks:
        for row in chunk.to_dict("records"):
            yield {k: (v if v != "" else None) for k, v in row.items()}


def best_of(rounds: int, read) -> tuple[int, float]:
    best, count = float("inf"), 0
    for _ in range(rounds):
        start = time.perf_counter()
        count = sum(1 for _ in read())
        best = min(best, time.perf_counter() - start)
    return count, best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "list.csv")
        n = args.rows
        pd.DataFrame({"url": [f"http://x.example/{i}.jpg" for i in range(n)],
                      "caption": [f"a photo of a dog number {i}, on a beach" for i in range(n)],
                      "license": ["cc-by"] * n}).to_csv(path, index=False)
        base_rows, base = best_of(args.rounds, lambda: pandas_rows(path))
        ours_rows, ours = best_of(args.rounds, lambda: iter_rows(path, "csv"))
    assert base_rows == ours_rows == n
    print(f"pandas chunked (before): {n / base:,.0f} rows/s")
    print(f"curate csv reader:       {n / ours:,.0f} rows/s")
    print(f"ratio curate / pandas:   {base / ours:.2f}x")


if __name__ == "__main__":
    main()
