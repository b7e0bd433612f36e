"""The dfn / datacomp / laion recipes and optional scoring in metaclip, end to end on FnApiRunner."""
import os

import numpy as np
import pandas as pd
import pytest

from curate.models.tiny import TINY_CONFIG, write_tiny_model
from curate.run import main
from curate.score.embeddings import read_embeddings
from curate.score.pool_cut import keep_count
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.test_models import SCORE_TOLERANCE, direct_scores, open_clip_pixels

CUT_REASONS = (None, "score:below_threshold", "score:not_target_cluster")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("recipe-models"))
    clip = write_tiny_model(folder, name="tiny-clip", seed=11)
    dfn = write_tiny_model(folder, name="tiny-dfn", seed=12, quick_gelu=True)  # trained with QuickGELU
    images = [open(os.path.join(SAMPLE, "images", f), "rb").read() for f in sorted(os.listdir(
        os.path.join(SAMPLE, "images")))[:3]]
    _, target_embeddings = direct_scores(TINY_CONFIG, clip[1], False, images, ["x"] * len(images))
    targets = os.path.join(folder, "targets.npy")
    np.save(targets, target_embeddings)
    return {"clip": clip, "dfn": dfn, "targets": targets}


def _datacomp_args(models, batch_size):
    return ["--pipeline", "datacomp", "--clip_model", models["clip"][0], "--clip_pretrained", models["clip"][1],
            "--dfn_model", models["dfn"][0], "--dfn_pretrained", models["dfn"][1], "--clip_keep_fraction", "0.5",
            "--dfn_keep_fraction", "0.8", "--image_filter_targets", models["targets"], "--image_filter_clusters",
            "3", "--save_embeddings", "--batch_size", str(batch_size), "--score_batch_size", "16",
            "--device", "cpu", "--torch_threads", "1", "--dedup", "none"]


@pytest.fixture(scope="module")
def datacomp_runs(models, tmp_path_factory):
    """The same datacomp run (two models, both cuts, image filter) with two different batch splits."""
    runs = []
    for batch_size in (1000, 150):
        out = tmp_path_factory.mktemp(f"datacomp-{batch_size}")
        runs.append((out, run_curate(*_datacomp_args(models, batch_size), output=out)))
    return runs


def _image_bytes(source_keys):
    return [open(os.path.join(SAMPLE, key), "rb").read() for key in source_keys]


@pytest.fixture(scope="module")
def scored(datacomp_runs):
    """The first run's scored rows in uid order, with open_clip's own pixels for their images."""
    out, _ = datacomp_runs[0]
    ledger = read_ledger(out)
    rows = ledger[ledger.clip_score.notna()].reset_index(drop=True)
    return rows, open_clip_pixels(TINY_CONFIG, _image_bytes(rows.source_key))


def test_pipeline_scores_equal_direct_open_clip(datacomp_runs, scored, models):
    _, stats = datacomp_runs[0]
    rows, pixels = scored
    assert len(rows) > 200 and rows.dfn_score.notna().all()
    clip, _ = direct_scores(TINY_CONFIG, models["clip"][1], False, pixels, list(rows.caption))
    np.testing.assert_allclose(rows.clip_score.to_numpy(), clip, atol=SCORE_TOLERANCE, rtol=0)
    # the DFN checkpoint was trained with QuickGELU, its config file says GELU: corrected, and said so
    dfn, _ = direct_scores(TINY_CONFIG, models["dfn"][1], True, pixels, list(rows.caption))
    np.testing.assert_allclose(rows.dfn_score.to_numpy(), dfn, atol=SCORE_TOLERANCE, rtol=0)
    assert "QuickGELU" in stats["stages"]["Score"]["models"]["dfn"]["note"]
    assert stats["stages"]["Score"]["models"]["clip"]["note"] is None


def test_cuts_are_exact_over_the_pool_and_intersected(datacomp_runs):
    out, stats = datacomp_runs[0]
    ledger = read_ledger(out)
    pool = ledger[ledger.reason.isin(CUT_REASONS) | ledger.reason.isna()]
    cuts = stats["stages"]["Score"]["cuts"]
    for role, fraction in (("clip", 0.5), ("dfn", 0.8)):
        k = keep_count(fraction, len(pool))
        expected = np.sort(pool[f"{role}_score"].to_numpy())[::-1][k - 1]
        assert cuts["keep_fraction"][role]["threshold"] == float(expected)
        assert cuts["keep_fraction"][role]["pool"] == len(pool)
        assert (pool[f"{role}_threshold"] == expected).all()
    passes = (pool.clip_score >= pool.clip_threshold) & (pool.dfn_score >= pool.dfn_threshold)
    kept = pool.status == "kept"
    assert (kept == (passes & (pool.reason != "score:not_target_cluster"))).all()
    assert (pool[~passes].reason == "score:below_threshold").all()
    off_target = pool[pool.reason == "score:not_target_cluster"]
    assert len(off_target) and len(pool[kept])
    target_clusters = set(pool[kept].image_cluster)
    assert not target_clusters & set(off_target.image_cluster)
    assert cuts["image_filter"]["clusters"] == 3 and cuts["image_filter"]["trained_on"] == len(pool)
    assert stats["kept"] == kept.sum() > 0
    shard = pd.read_parquet(os.path.join(out, "shards", "00000.parquet"))
    assert shard.clip_score.notna().all() and set(shard.key) == set(pool[kept].uid)


def test_same_result_whatever_the_batch_split(datacomp_runs):
    (out_a, stats_a), (out_b, stats_b) = datacomp_runs
    a, b = read_ledger(out_a), read_ledger(out_b)
    assert list(a.uid) == list(b.uid)
    assert (a.status == b.status).all() and (a.reason.fillna("") == b.reason.fillna("")).all()
    np.testing.assert_allclose(a.clip_score.fillna(9), b.clip_score.fillna(9), atol=1e-6, rtol=0)
    assert (a.image_cluster.fillna(-9) == b.image_cluster.fillna(-9)).all()
    assert stats_a["stages"]["Score"]["cuts"] == stats_b["stages"]["Score"]["cuts"]


def test_every_input_is_in_the_ledger_with_a_precise_reason(datacomp_runs):
    out, stats = datacomp_runs[0]
    ledger = read_ledger(out)
    assert len(ledger) == stats["inputs"] and ledger.uid.is_unique
    reasons = set(ledger.reason.dropna())
    assert {"score:no_image", "score:below_threshold", "filter:language"} <= reasons  # URL-only LAION rows
    assert ledger[ledger.reason == "score:no_image"].source_key.isna().all()


def test_embeddings_are_written_for_every_scored_sample(datacomp_runs, scored, models):
    out, stats = datacomp_runs[0]
    rows, pixels = scored
    uids, vectors = read_embeddings(str(out), "clip")
    assert uids == list(rows.uid) and vectors.dtype == np.float16  # read_ledger sorts by uid too
    _, reference = direct_scores(TINY_CONFIG, models["clip"][1], False, pixels, ["x"] * len(rows))
    np.testing.assert_allclose(vectors, reference, atol=1e-3, rtol=0)
    files = stats["stages"]["Score"]["files"]
    assert set(files) == {"embeddings/clip", "embeddings/dfn"}
    assert sorted(os.listdir(os.path.join(out, "embeddings", "clip"))) == files["embeddings/clip"]


def test_laion_keeps_english_above_an_absolute_score_then_dedups(models, tmp_path):
    stats = run_curate("--pipeline", "laion", "--clip_model", models["clip"][0], "--clip_pretrained",
                       models["clip"][1], "--clip_min", "0.05", "--device", "cpu", "--torch_threads", "1",
                       output=tmp_path)
    ledger = read_ledger(tmp_path)
    judged = ledger[ledger.clip_threshold.notna()]
    assert len(judged) and (judged.clip_threshold == np.float32(0.05)).all()
    passed = judged.clip_score >= np.float32(0.05)
    assert (judged[~passed].reason == "score:below_threshold").all()
    # the bundled sample has 5 captions per photo: the default dedup keeps one of each image
    deduped = judged[judged.reason.fillna("").str.startswith("dedup:")]
    assert len(deduped) and passed[deduped.index].all()
    assert (judged[passed & ~judged.index.isin(deduped.index)].status == "kept").all()
    assert (ledger[ledger.status == "kept"].language == "en").all()
    assert stats["dropped_by_reason"]["score:below_threshold"] == (~passed).sum()
    assert "filter:caption_words" not in stats["dropped_by_reason"]  # LAION: language only


def test_metaclip_scores_only_when_asked(default_run, models, tmp_path):
    out, _ = default_run
    assert "clip_score" not in read_ledger(out).columns
    run_curate("--pipeline", "metaclip", "--clip_model", models["clip"][0], "--clip_pretrained",
               models["clip"][1], "--device", "cpu", "--torch_threads", "1", output=tmp_path)
    ledger = read_ledger(tmp_path)
    kept_images = ledger[(ledger.status == "kept") & ledger.source_key.notna()]
    assert len(kept_images) and kept_images.clip_score.notna().all()
    assert "clip_threshold" not in ledger.columns  # no cut asked: scores only


@pytest.mark.parametrize("args, message", [
    (["--pipeline", "dfn", "--dfn_pretrained", "nosuchtag"], "--dfn_pretrained: 'nosuchtag' is neither"),
    (["--pipeline", "datacomp", "--clip_keep_fraction", "1.5"], "--clip_keep_fraction: must be in (0, 1]"),
    (["--pipeline", "metaclip", "--clip_min", "0.3"], "--clip_min: needs --clip_model"),
    (["--pipeline", "laion", "--clip_model", "ViT-Nope"], "--clip_model: unknown open_clip model"),
    (["--pipeline", "laion", "--score_decode", "dali"], "--score_decode"),
    (["--pipeline", "dfn", "--dfn_model", "none.json"], "--dfn_model: cannot read model config"),
])
def test_bad_scoring_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    assert main([*args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_unreachable_weights_fail_before_the_run(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as on a machine without network
    assert main(["--pipeline", "dfn", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--dfn_pretrained: cannot fetch the weights of ViT-L-14-quickgelu + dfn2b" in err
    assert "\n" not in err
