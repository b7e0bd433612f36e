"""--keep: one SQL test of the samples' ledger columns, in the dialect of `curate.subset cut --where`."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from curate.keep.stage import ApplyTest, checked
from curate.run import main
from curate.sample import Sample, SampleBatch
from tests.conftest import read_ledger, run_curate
from tests.test_empty_outputs import CAPTIONS, _small_images, assert_complete_and_empty

EXPRESSION = "width >= 500 AND len(entry_ids) >= 2"  # the README's (computed by ImageFacts and MetaCLIP)
BEFORE_KEEP = ("input:", "metaclip:", "download:", "image:", "score:")  # the metaclip recipe's stages before Keep


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("keep") / "out"
    return out, run_curate("--pipeline", "metaclip", "--keep", EXPRESSION, output=out)


def test_drops_exactly_the_rows_the_expression_rejects(kept_run):
    out, stats = kept_run
    ledger = read_ledger(out)
    reached = ~ledger.reason.fillna("").str.startswith(BEFORE_KEEP)
    accepted = (ledger.width >= 500) & ledger.entry_ids.map(
        lambda ids: ids is not None and len(ids) >= 2)  # NULL (a URL-only row has no width) is not accepted
    rejected = ledger.reason == "keep:expression"
    assert set(ledger.uid[reached & ~accepted]) == set(ledger.uid[rejected])
    assert 100 < rejected.sum() < reached.sum()
    assert set(ledger.uid[ledger.status == "kept"]) <= set(ledger.uid[reached & accepted])
    assert stats["stages"]["Keep"] == {"expression": EXPRESSION, "rows_in": int(reached.sum()),
                                       "rows_dropped": int(rejected.sum())}
    assert stats["dropped_by_reason"]["keep:expression"] == rejected.sum()


def test_a_test_that_rejects_everything_gives_a_complete_empty_output(tmp_path, capsys):
    images = _small_images(tmp_path / "images")
    assert main(["--pipeline", "dedup", "--input", images, "--keep", "uid IS NULL", "--runner", "FnApiRunner",
                 "--output", str(tmp_path / "out")]) == 0
    stats = assert_complete_and_empty(tmp_path / "out", len(CAPTIONS), "keep:expression")
    assert stats["stages"]["Keep"]["rows_in"] == stats["stages"]["Keep"]["rows_dropped"] == len(CAPTIONS)


@pytest.mark.parametrize("expression, message", [
    ("nsfw_score < 0.45", "--keep: no column 'nsfw_score' reaches Keep: no stage before it computes it"),
    ("status = 'kept'", "--keep: no column 'status' reaches Keep"),
    ("caption > 1", "--keep: Binder Error: Cannot compare values of type VARCHAR"),
    ("width >", "--keep: Parser Error"),
    ("width > (SELECT max(column0) FROM read_csv('/etc/passwd'))", "--keep: a subquery is not a test of one row"),
    ("random() < 0.5", "--keep: random() gives another answer on every run"),
])
def test_a_bad_expression_is_one_line_and_exit_2_before_the_run(expression, message, tmp_path, capsys):
    assert main(["--keep", expression, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not os.path.exists(tmp_path / "out" / "stats.json")


def test_the_judge_reads_values_and_input_columns_as_the_ledger_types_them():
    """A float32 score compares with the number rounded to float32 (as the scoring stage and the
    ledger cut do); NaN and a missing value are NULL, so not accepted; input columns by ledger name."""
    test, columns = checked("clip_score >= 0.3 AND src_width > 10", {"clip_score": pa.float32(), "src_width": pa.int64()})
    boundary = np.float32(0.3)
    scores = [float(boundary), float(np.nextafter(boundary, np.float32(0))), float(np.nextafter(boundary, np.float32(1))),
              float("nan"), None, 0.9]
    samples = [Sample(uid=f"{i:032x}", width=1, values={} if s is None else {"clip_score": s}, extras={"width": 20})
               for i, s in enumerate(scores)]
    samples[-1].extras["width"] = 5  # the input's width (src_width in the ledger), not the image's
    judge = ApplyTest(test, columns)
    judge.setup()
    try:
        decisions = judge.judge_batch(SampleBatch("00000-0000000000", samples))
    finally:
        judge.teardown()
    assert decisions == [None, "expression", None, "expression", "expression", "expression"]
