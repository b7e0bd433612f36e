"""Subsets as DataComp uid arrays: export, re-cut from the ledger, set algebra, reshard (format.py)."""
