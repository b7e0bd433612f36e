"""The scoring cascade end to end: a tiny transformers CLIPModel prefilters, a tiny open_clip DFN decides."""
import hashlib
import os
import shutil

import numpy as np
import pytest
from scipy.stats import spearmanr

from curate.models.hf_clip import write_tiny_hf_clip
from curate.models.tiny import write_tiny_model
from curate.run import main
from curate.score.pool_cut import keep_count
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.test_hf_clip import direct_hf_scores
from tests.test_models import SCORE_TOLERANCE

AUDIT, PRE_KEEP, DFN_KEEP = 0.3, 0.5, 0.2


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cascade-models")
    return {"prefilter": write_tiny_hf_clip(str(folder / "tinyclip"), seed=3),
            "dfn": write_tiny_model(str(folder), name="tiny-cascade-dfn", seed=5)}


def _args(models, *extra):
    return ["--pipeline", "dfn", "--dfn_model", models["dfn"][0], "--dfn_pretrained", models["dfn"][1],
            "--prefilter_model", models["prefilter"], "--device", "cpu", "--torch_threads", "1",
            "--score_batch_size", "64", "--dedup", "none", *extra]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The bundled sample's first 200 image-caption rows (a smaller pool keeps the test fast)."""
    folder = tmp_path_factory.mktemp("cascade-pool")
    shutil.copytree(os.path.join(SAMPLE, "images"), folder / "images")  # a symlink out of the input is refused
    with open(os.path.join(SAMPLE, "pairs.jsonl"), encoding="utf-8") as f:
        rows = [line for line in f if '"file"' in line][:200]
    (folder / "pairs.jsonl").write_text("".join(rows), encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="module")
def cascade(models, pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("cascade")
    stats = run_curate(*_args(models, "--input", pool, "--prefilter_keep_fraction", str(PRE_KEEP),
                              "--dfn_keep_fraction", str(DFN_KEEP), "--prefilter_audit_fraction", str(AUDIT)),
                       output=out)
    ledger = read_ledger(out)
    return ledger, ledger[ledger.prefilter_score.notna()].reset_index(drop=True), stats["stages"]["Score"]


def test_prefilter_scores_every_sample_and_equal_clipmodel(cascade, models, pool):
    ledger, reached, facts = cascade
    assert len(reached) == facts["cascade"]["reached"] == facts["cascade"]["scored"]["prefilter"] > 100
    assert ledger[ledger.source_key.notna() & ledger.reason.isna()].prefilter_score.notna().all()
    images = [open(os.path.join(pool, key), "rb").read() for key in reached.source_key[:12]]
    direct = direct_hf_scores(models["prefilter"], images, list(reached.caption[:12]))
    np.testing.assert_allclose(reached.prefilter_score[:12], direct, atol=SCORE_TOLERANCE, rtol=0)


def test_the_expensive_model_never_sees_what_the_prefilter_dropped(cascade):
    _, reached, facts = cascade
    k = keep_count(PRE_KEEP, len(reached))
    threshold = np.sort(reached.prefilter_score.to_numpy())[::-1][k - 1]
    passed = reached.prefilter_score >= threshold
    assert facts["cascade"]["cut"]["keep_fraction"]["prefilter"]["threshold"] == float(threshold)
    assert (reached[~passed].reason == "score:prefilter").all() and passed.sum() == k
    audited = reached.prefilter_audit.astype(bool)
    # the handler counts what the model embedded: survivors and the audited rest, nothing else
    assert facts["cascade"]["scored"]["dfn"] == passed.sum() + (~passed & audited).sum()
    assert reached[passed | audited].dfn_score.notna().all()
    assert reached[~passed & ~audited].dfn_score.isna().all()
    assert facts["cascade"]["expensive_calls_saved"] == (~passed & ~audited).sum() > 0
    # the expensive cut keeps its fraction of the whole pool, chosen among the survivors
    survivors = reached[passed]
    kept = keep_count(DFN_KEEP, len(reached))
    assert (survivors.status == "kept").sum() == kept == facts["cuts"]["keep_fraction"]["dfn"]["keep"]
    assert (survivors[survivors.status != "kept"].reason == "score:below_threshold").all()


def test_audit_numbers_equal_a_direct_computation(cascade):
    _, reached, facts = cascade
    audit = facts["cascade"]["audit"]
    seed = 0
    keyed = [int.from_bytes(hashlib.blake2b(f"{seed}\x00prefilter_audit\x00{u}".encode(), digest_size=8).digest(),
                            "big") / 2.0 ** 64 < AUDIT for u in reached.uid]
    assert list(reached.prefilter_audit) == keyed
    rows = reached[reached.prefilter_audit.astype(bool)]
    assert audit["audited"] == len(rows) > 20
    passed = rows.prefilter_score >= rows.prefilter_threshold
    assert audit["passed_prefilter"] == passed.sum()
    k = keep_count(DFN_KEEP, len(rows))
    reference = np.sort(rows.dfn_score.to_numpy())[::-1][k - 1]
    would_keep = rows.dfn_score >= reference
    assert audit["reference_thresholds"]["dfn"] == float(reference)
    assert audit["recall"] == pytest.approx((would_keep & passed).sum() / would_keep.sum(), abs=1e-12)
    assert audit["spearman"]["dfn"] == pytest.approx(spearmanr(rows.prefilter_score, rows.dfn_score)[0], abs=1e-9)
    assert audit["correlated_on"] == len(rows)


@pytest.mark.parametrize("with_prefilter, extra, message", [
    (False, ["--prefilter_min", "0.1"], "--prefilter_min: needs --prefilter_model"),
    (True, [], "--prefilter_model: needs --prefilter_keep_fraction or --prefilter_min"),
    (True, ["--prefilter_keep_fraction", "0.1"], "--prefilter_keep_fraction: 0.1 passes fewer samples than"),
    (True, ["--prefilter_keep_fraction", "0.5", "--prefilter_audit_fraction", "2"], "--prefilter_audit_fraction"),
])
def test_bad_cascade_flags_exit_2_with_one_line(models, with_prefilter, extra, message, tmp_path, capsys):
    args = _args(models, *extra)
    if not with_prefilter:
        at = args.index("--prefilter_model")
        del args[at:at + 2]
    assert main([*args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
