"""Errors a user can fix: printed as one line, exit status 2, before the pipeline starts."""


class UsageError(Exception):
    """Bad flag, missing file, unreadable input: the run never starts."""
