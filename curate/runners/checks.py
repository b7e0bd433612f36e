"""What a runner cannot do with the flags given, refused before the job starts (exit 2).

Dataflow workers run on other machines: a path on the machine that submits the job is not
there for them, so input, output and a custom metadata file must be on shared storage
(gs://, s3://): the run's own paths and each stage's `local_files()`.
Only Dataflow can build and validate a job without running it (`--dry_run`).
"""
from __future__ import annotations

from apache_beam.options.pipeline_options import TestOptions

from curate.errors import UsageError
from curate.runners.kinds import NO_LOCAL_FILES, short_name
from curate.runners.placement import check_accelerator


def is_dry_run(options) -> bool:
    return bool(options.view_as(TestOptions).dry_run)


def check_runner(runner: str, options, known, stages=()) -> None:
    check_accelerator(options)
    name = short_name(runner)
    if is_dry_run(options) and name != "DataflowRunner":
        raise UsageError(f"--dry_run: only DataflowRunner builds a job without running it, not {name}")
    if name not in NO_LOCAL_FILES:
        return
    if known.input is None:
        raise UsageError(f"--input: {name} workers cannot read the bundled sample on this machine; "
                         "copy your input to gs:// and pass --input gs://...")
    paths = {"--input": known.input, "--output": known.output}
    for stage in stages:  # what each stage's workers read (e.g. a custom --metadata)
        paths.update(stage.local_files())
    for flag, path in paths.items():
        if "://" not in path:
            raise UsageError(f"{flag}: {name} workers cannot reach the local path {path}; "
                             "use shared storage (gs://bucket/...)")
