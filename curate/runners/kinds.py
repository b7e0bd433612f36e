"""What curate must know about a runner before it submits a job (one home for these facts)."""
from __future__ import annotations

# Runners whose workers run on other machines: they fetch model weights for themselves, so the
# submitting machine does not download them first.
WORKERS_ELSEWHERE = ("DataflowRunner", "SparkRunner", "FlinkRunner")
# Of those, the runners whose workers never see the submitting machine's files: a local
# --input, --output or data file is refused before the job starts (a Spark or Flink cluster
# may mount the submitter's disks, so curate leaves those paths to the user).
NO_LOCAL_FILES = ("DataflowRunner",)


def short_name(runner: str | None) -> str:
    return (runner or "").rsplit(".", 1)[-1]


def workers_elsewhere(runner: str | None) -> bool:
    return short_name(runner) in WORKERS_ELSEWHERE
