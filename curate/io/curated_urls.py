"""The curated URL list: kept samples that have no image yet (text-only curation).

One Parquet row per kept sample with the input columns preserved (url, caption, extras) plus
uid and what stages computed, readable by img2dataset (`--input_format parquet --url_col url
--caption_col caption`) or by curate's own download stage.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import files as fs
from curate.io.table import rows_to_table

URLS_DIR = "curated_urls"


def input_named_schema(schema: pa.Schema, url_col: str, caption_col: str) -> pa.Schema:
    """The ledger schema with url and caption under the input's own column names."""
    names = {"url": url_col, "caption": caption_col}
    return pa.schema([f.with_name(names.get(f.name, f.name)) for f in schema])


def write_url_part(part: str, row_lists, output: str, schema: pa.Schema,
                   columns: tuple[str, str] = ("url", "caption")) -> dict:
    url_col, caption_col = columns
    rows = sorted((r for rows in row_lists for r in rows), key=lambda r: r["uid"])
    for row in rows:
        row[url_col], row[caption_col] = row.pop("url"), row.pop("caption")
    schema = input_named_schema(schema, url_col, caption_col)
    with fs.atomic_write(fs.join(output, URLS_DIR, f"part-{part}.parquet")) as f:
        pq.write_table(rows_to_table(rows, schema), f, compression="zstd")
    return {"part": part, "rows": len(rows)}
