"""Statistics of a curate run for people: pandas tables, plots, a notebook, a CLI.

    from curate.stats import collect, tables
    rs = collect("curate-out/metaclip")          # local, gs://, s3:// (Beam FileSystems)
    tables(rs)["funnel"]                         # pandas DataFrames
    from curate.stats import plots; plots.funnel(rs)

`python -m curate.stats OUTPUT` prints the tables; `--plots DIR` / `--html FILE` write figures.
"""
from curate.stats.collect import RunStats, collect
from curate.stats.reader import RunOutput
from curate.stats.tables import checks, format_tables, tables

__all__ = ["RunOutput", "RunStats", "checks", "collect", "format_tables", "tables"]
