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


def write_url_part(part: str, row_lists, output: str, schema: pa.Schema) -> dict:
    rows = sorted((r for rows in row_lists for r in rows), key=lambda r: r["uid"])
    with fs.atomic_write(fs.join(output, URLS_DIR, f"part-{part}.parquet")) as f:
        pq.write_table(rows_to_table(rows, schema), f, compression="zstd")
    return {"part": part, "rows": len(rows)}
