"""The curated URL list: kept samples that have no image yet (text-only curation).

One Parquet row per kept sample with the input columns preserved (url, caption, extras) plus
uid and what stages computed, readable by img2dataset (`--input_format parquet --url_col url
--caption_col caption`) or by curate's own download stage.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import files as fs
from curate.io.ledger import sort_by_uid
from curate.io.ledger_batch import conform

URLS_DIR = "curated_urls"


def input_named_schema(schema: pa.Schema, url_col: str, caption_col: str) -> pa.Schema:
    """The ledger schema with url and caption under the input's own column names."""
    names = {"url": url_col, "caption": caption_col}
    return pa.schema([f.with_name(names.get(f.name, f.name)) for f in schema])


def write_url_part(part: str, batches, output: str, schema: pa.Schema,
                   columns: tuple[str, str] = ("url", "caption")) -> dict:
    table = sort_by_uid(conform(list(batches), schema))
    table = table.rename_columns(input_named_schema(schema, *columns).names)
    with fs.atomic_write(fs.join(output, URLS_DIR, f"part-{part}.parquet")) as f:
        pq.write_table(table, f, compression="zstd")
    return {"part": part, "rows": table.num_rows}
