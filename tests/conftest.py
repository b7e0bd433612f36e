"""Shared test helpers: run curate in-process on Beam's FnApiRunner, read its outputs."""
from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from curate.inputs import bundled_sample  # noqa: E402
from curate.run import run  # noqa: E402

SAMPLE = bundled_sample()


def run_curate(*args: str, output) -> dict:
    """Run the CLI in-process (FnApiRunner unless args name a runner); returns stats.json."""
    argv = [*args, "--output", str(output)]
    if not any(a.startswith("--runner") for a in args):
        argv += ["--runner", "FnApiRunner"]
    return run(argv)


def read_ledger(output) -> pd.DataFrame:
    return pd.read_parquet(os.path.join(str(output), "ledger")).sort_values("uid").reset_index(drop=True)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The bundled default metaclip run, shared by the tests that only read its output."""
    out = tmp_path_factory.mktemp("default_run")
    stats = run_curate("--pipeline", "metaclip", output=out)
    return out, stats
