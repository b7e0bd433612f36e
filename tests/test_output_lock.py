"""One run at a time per output (issue 23): a second run into a busy output is refused before
any work; a rerun after a crash takes the lock its dead holder left and resumes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from curate.io.output_lock import LOCK_FILE
from curate.run import main
from tests.conftest import run_curate
from tests.test_hostile_inputs import photo


# --- 4. two runs into one output -----------------------------------------------------------------

HOLD = """
import os, signal, sys, time
from curate.io.output_lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    if sys.argv[2] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup: the lock file stays behind
    sys.stdin.read()
"""


def _holder(output, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(output), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def small_folder(tmp_path):
    root = tmp_path / "in"
    os.makedirs(root)
    (root / "a.jpg").write_bytes(photo(60))
    (root / "a.txt").write_text("a dog on a beach")
    return root


def test_a_second_run_into_a_busy_output_is_refused_before_any_work(small_folder, tmp_path, capsys):
    out = tmp_path / "out"
    holder = _holder(out, "hold")
    try:
        code = main(["--pipeline", "dedup", "--input", str(small_folder), "--output", str(out),
                     "--runner", "FnApiRunner"])
        assert os.listdir(out) == [LOCK_FILE]  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "is in use by another run" in err[0] and f"pid {holder.pid}" in err[0]


def test_a_rerun_after_a_crash_takes_the_stale_lock_and_resumes(small_folder, tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, "crash")
    holder.wait(timeout=60)
    assert (out / LOCK_FILE).exists()  # left behind by the killed run, its lock gone with it
    stats = run_curate("--pipeline", "dedup", "--input", str(small_folder), output=out)
    assert stats["kept"] == 1 and not (out / LOCK_FILE).exists()
