"""Statistics of a curate run for people: pandas tables, plots, a notebook, a CLI.

    from curate.stats import collect, tables
    rs = collect("curate-out/metaclip")          # local, gs://, s3:// (Beam FileSystems)
    tables(rs)["funnel"]                         # pandas DataFrames, computed by DuckDB
    from curate.stats import plots; plots.funnel(rs)
    run = open_run("curate-out/metaclip")        # the run without statistics
    run.sql("SELECT reason, count(*) FROM ledger GROUP BY ALL").df()   # SQL over the ledger
    run.ledger(status="kept")                    # the ledger as a DataFrame

`python -m curate.stats OUTPUT` prints the tables; `--plots DIR` / `--html FILE` write figures.
"""
from curate.runners.quiet_logs import drop_noise

drop_noise()  # before Beam's import-time warnings

from curate.stats.collect import RunStats, collect
from curate.stats.reader import RunOutput, default_output, open_run
from curate.stats.tables import checks, format_tables, tables

__all__ = ["RunOutput", "RunStats", "checks", "collect", "default_output", "format_tables", "open_run",
           "tables"]
