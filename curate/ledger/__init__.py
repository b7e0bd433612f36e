"""A run's ledger as a table: DuckDB over its Parquet parts, asked in SQL.

    from curate.ledger import open_ledger
    con = open_ledger("curate-out/metaclip")      # local, gs://, s3:// (through Beam's FileSystems)
    con.sql("SELECT reason, count(*) AS n FROM ledger GROUP BY ALL ORDER BY n DESC").df()

`curate.subset cut --where` and the pipeline's `--keep` test rows with the same SQL
(`curate.ledger.expression`); `curate.stats` computes its tables with queries over this view.
"""
from curate.ledger.connection import MEMORY_LIMIT, VIEW, open_ledger

__all__ = ["MEMORY_LIMIT", "VIEW", "open_ledger"]
