"""Statistics of a curate run for people: pandas tables, plots, a notebook, a CLI.

    from curate.stats import collect, tables
    rs = collect("curate-out/metaclip")          # local, gs://, s3:// (Beam FileSystems)
    rs.run.ledger(status="kept")                 # the ledger (open_run(path) without statistics)
    tables(rs)["funnel"]                         # pandas DataFrames
    from curate.stats import plots; plots.funnel(rs)

`python -m curate.stats OUTPUT` prints the tables; `--plots DIR` / `--html FILE` write figures.
"""
from curate.runners.quiet_logs import drop_noise

drop_noise()  # before Beam's import-time warnings

from curate.stats.collect import RunStats, collect
from curate.stats.reader import RunOutput, default_output, open_run
from curate.stats.tables import checks, format_tables, tables

__all__ = ["RunOutput", "RunStats", "checks", "collect", "default_output", "format_tables", "open_run",
           "tables"]
