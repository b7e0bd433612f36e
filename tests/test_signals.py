"""The signals stage end to end on FnApiRunner: every value equals its published code path on the
same images, the heads reuse the scoring stage's embedding (the CLIP model is never called), and
bad flags are one line and exit 2."""
import http.server
import io
import os
import sys
import threading
import traceback
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from curate.errors import UsageError
from curate.models.heads import HEADS, apply_head, load_head, write_random_head
from curate.models.image_classifier import write_tiny_image_classifier
from curate.models.text_boxes import TextDetector, text_area
from curate.models.tiny_signals import TINY_L14_CONFIG, write_tiny_signals
from curate.models.watermark import WatermarkModel, watermark_pixels
from curate.models.weights import weights_file
from curate.recipes import recipes
from curate.run import main
from curate.sample import SampleBatch
from curate.score.score_with import FailedCalls
from curate.signals.stage import Signals
from tests.conftest import read_ledger, run_curate
from tests.test_models import direct_scores
from tests.test_tmars import image_folder

TOLERANCE = 1e-5
SIGNAL_FLAGS = ("--nsfw_model", "laion-l14", "--aesthetic_model", "laion-v2", "--text_detector", "default")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signal-models")
    files = write_tiny_signals(str(folder), seed=4)
    files["classifier"] = write_tiny_image_classifier(str(folder / "watermark-vit"), ("clear", "watermark"), seed=6)
    items = image_folder(str(folder / "images"))
    return files, items, str(folder / "images")


def _common(files):
    return [*SIGNAL_FLAGS, "--nsfw_weights", files["--nsfw_weights"], "--aesthetic_weights",
            files["--aesthetic_weights"], "--signal_clip_model", files["--signal_clip_model"],
            "--signal_clip_pretrained", files["--signal_clip_pretrained"], "--dedup", "none", "--device", "cpu",
            "--torch_threads", "1"]


@pytest.fixture(scope="module")
def reused(models, tmp_path_factory):
    """The dedup recipe scoring with the heads' own CLIP model: Signals reads Score's embedding."""
    files, _, images = models
    out = tmp_path_factory.mktemp("signals-reused")
    stats = run_curate("--pipeline", "dedup", "--input", images, *_common(files), "--clip_model",
                       files["--signal_clip_model"], "--clip_pretrained", files["--signal_clip_pretrained"],
                       "--watermark_model", "laion", "--watermark_weights", files["--watermark_weights"], output=out)
    return read_ledger(out), stats


@pytest.fixture(scope="module")
def own(models, tmp_path_factory):
    """No scoring model in the run: Signals embeds the images itself (and a transformers classifier)."""
    files, _, images = models
    out = tmp_path_factory.mktemp("signals-own")
    stats = run_curate("--pipeline", "dedup", "--input", images, *_common(files), "--watermark_model",
                       files["classifier"], "--watermark_label", "watermark", output=out)
    return read_ledger(out), stats, out


def _by_name(ledger, items, column):
    by_key = {os.path.basename(k).split(".")[0]: v for k, v in zip(ledger.source_key, ledger[column])}
    return np.array([by_key[name] for name, _, _ in items], dtype=np.float64)


def _direct_embeddings(files, items) -> np.ndarray:
    """open_clip by hand (its CLIP class, the checkpoint, its transform): normalized image embeddings."""
    _, image = direct_scores(TINY_L14_CONFIG, files["--signal_clip_pretrained"], False, [d for _, d, _ in items],
                             [c for _, _, c in items])
    return image


def _direct_heads(files, embeddings):
    return {column: apply_head(load_head(HEADS[name], files[flag]), embeddings)
            for column, name, flag in (("nsfw_score", "laion-l14", "--nsfw_weights"),
                                       ("aesthetic_score", "laion-v2", "--aesthetic_weights"))}


def test_own_embedding_heads_and_classifier_equal_the_published_path(own, models):
    import transformers

    files, items, _ = models
    ledger, stats, _ = own
    for column, expected in _direct_heads(files, _direct_embeddings(files, items)).items():
        np.testing.assert_allclose(_by_name(ledger, items, column), expected, atol=TOLERANCE, rtol=0)
    processor = transformers.AutoImageProcessor.from_pretrained(files["classifier"])
    model = transformers.AutoModelForImageClassification.from_pretrained(files["classifier"]).eval()
    images = [Image.open(io.BytesIO(d)).convert("RGB") for _, d, _ in items]
    with torch.no_grad():
        expected = torch.softmax(model(**processor(images=images, return_tensors="pt")).logits, -1)[:, 1].numpy()
    np.testing.assert_allclose(_by_name(ledger, items, "watermark_score"), expected, atol=TOLERANCE, rtol=0)
    facts = stats["stages"]["Signals"]
    assert facts["models"]["clip"]["samples"] == len(items) and facts["models"]["clip"]["calls"] >= 1
    assert "reused" not in facts["models"] and facts["reused_embedding"] is None


def test_heads_reuse_the_scoring_embedding_and_never_call_clip(reused, own, models):
    files, items, _ = models
    ledger, stats = reused
    facts = stats["stages"]["Signals"]
    assert facts["reused_embedding"] == "clip_embedding"
    assert "clip" not in facts["models"] and facts["models"]["reused"]["samples"] == len(items)
    assert stats["stages"]["Score"]["models"]["clip"]["model"] == "tiny-l14"
    # the heads read the fp16 embedding the run keeps: the published heads on it, to 1e-5
    fp16 = _direct_embeddings(files, items).astype(np.float16).astype(np.float32)
    for column, expected in _direct_heads(files, fp16).items():
        np.testing.assert_allclose(_by_name(ledger, items, column), expected, atol=TOLERANCE, rtol=0)
        # and within fp16 rounding of the run that embedded the images itself
        np.testing.assert_allclose(_by_name(ledger, items, column), _by_name(own[0], items, column), atol=1e-3)


def test_watermark_and_text_area_equal_their_published_paths(reused, models):
    files, items, _ = models
    ledger, _ = reused
    images = [Image.open(io.BytesIO(d)) for _, d, _ in items]
    expected = WatermarkModel(files["--watermark_weights"], "cpu").probabilities(
        np.stack([watermark_pixels(im) for im in images]))
    np.testing.assert_allclose(_by_name(ledger, items, "watermark_score"), expected, atol=TOLERANCE, rtol=0)
    detector = TextDetector()
    areas = []
    for im in images:
        rgb = np.asarray(im.convert("RGB"))
        areas.append(text_area(detector.boxes(rgb), *rgb.shape[:2]))
    np.testing.assert_allclose(_by_name(ledger, items, "text_area"), areas, rtol=1e-6)
    assert (ledger.status == "kept").all()  # signals are columns; nothing is cut here


def test_every_recipe_with_images_computes_signals_after_scoring_and_before_dedup():
    for name in ("metaclip", "metaclip2", "dfn", "datacomp", "laion", "dedup", "recap", "download"):
        stages = [cls.__name__ for cls in recipes()[name].stage_classes]
        assert "Signals" in stages, name
        if "Score" in stages:
            assert stages.index("Score") < stages.index("Signals"), name
        if "Dedup" in stages:
            assert stages.index("Signals") < stages.index("Dedup"), name


def test_a_failed_model_call_drops_its_samples_as_signals_errors(models):
    from curate.sample import Sample, make_uid

    samples = [Sample(make_uid(f"u{i}", "c"), caption="c", image=b"x") for i in range(3)]
    batches = [SampleBatch("00000-000000", samples[:2]), SampleBatch("00000-000100", samples[2:])]
    try:
        raise RuntimeError("CUDA out of memory")
    except RuntimeError as e:
        dead = (batches, (type(e), repr(e), traceback.format_exception(*sys.exc_info())))
    dofn = FailedCalls("signals")
    dofn.setup()
    rows = [r for _, table in dofn.process(dead) for r in table.to_pylist()]
    assert [r["uid"] for r in rows] == [s.uid for s in samples]
    assert {r["reason"] for r in rows} == {"signals:error_RuntimeError"}


def test_published_weights_are_fetched_once_into_the_cache(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    write_random_head(HEADS["laion-v2"], str(served / "sac+logos+ava1-l14-linearMSE.pth"))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{server.server_address[1]}/sac+logos+ava1-l14-linearMSE.pth"
    try:
        path = weights_file(None, url, "--aesthetic_weights", "aesthetic laion-v2")
    finally:
        server.shutdown()
    assert path.startswith(str(tmp_path / "cache"))
    assert open(path, "rb").read() == (served / "sac+logos+ava1-l14-linearMSE.pth").read_bytes()
    assert weights_file(None, url, "--aesthetic_weights", "x") == path  # the server is gone: the cache answers
    with pytest.raises(UsageError, match=r"^--nsfw_weights: cannot fetch the published weights http://127.0.0.1:9/"):
        weights_file(None, "http://127.0.0.1:9/h14_nsfw.pth", "--nsfw_weights", "nsfw laion-h14")


def _tiny_clip(models):
    files, _, _ = models
    return ["--signal_clip_model", files["--signal_clip_model"], "--signal_clip_pretrained",
            files["--signal_clip_pretrained"]]


@pytest.mark.parametrize("args, message", [
    (["--nsfw_model", "laion-x"], "--nsfw_model: 'laion-x' is not one of laion-l14, laion-b32, laion-h14, a transformers"),
    (["--aesthetic_model", "v3"], "--aesthetic_model: 'v3' is not one of laion-v2, laion-v1-l14, laion-v1-b32"),
    (["--watermark_model", "best"], "--watermark_model: 'best' is not laion or a transformers"),
    (["--nsfw_model", "laion-l14", "--nsfw_weights", "/no/such.pth"], "--nsfw_weights: no such file /no/such.pth"),
    (["--aesthetic_weights", "a.pth"], "--aesthetic_weights: needs --aesthetic_model"),
    (["--nsfw_model", "laion-b32", "--aesthetic_model", "laion-v2"], "--signal_clip_model: the heads read different"),
    (["--nsfw_model", "laion-b32", "TINY"], "--nsfw_model laion-b32 reads 512-d embeddings; --signal_clip_model tiny-l14 embeds to 768"),
    (["TINY"], "--signal_clip_model: needs a head that reads CLIP embeddings"),
    (["--watermark_model", "CLASSIFIER", "--watermark_label", "logo"], "--watermark_label: "),
    (["--nsfw_model", "CLASSIFIER", "--nsfw_weights", "WEIGHTS"], "--nsfw_weights: only for the laion-* detectors"),
    (["--nsfw_model", "laion-b32", "TINY"], None),  # no published PyTorch weights: refused when fetched
])
def test_bad_signal_flags_exit_2_with_one_line(args, message, models, tmp_path, capsys):
    files, _, images = models
    if message is None:
        args = [*args[:2], *_tiny_clip(models)]
        args[-3] = files["--signal_clip_model"].replace("tiny-l14", "tiny-b32")
        from curate.models.tiny import write_tiny_model
        write_tiny_model(os.path.dirname(args[-3]), name="tiny-b32", config={**TINY_L14_CONFIG, "embed_dim": 512})
        message = "--nsfw_weights: nsfw laion-b32 has no published PyTorch weights; pass the file with --nsfw_weights"
    expanded = []
    for a in args:
        expanded += _tiny_clip(models) if a == "TINY" else [
            {"CLASSIFIER": files["classifier"], "WEIGHTS": files["--nsfw_weights"]}.get(a, a)]
    argv = ["--pipeline", "dedup", "--input", images, *expanded, "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_signals_off_without_flags():
    from curate.run_context import RunContext
    from apache_beam.options.pipeline_options import PipelineOptions

    run = RunContext(PipelineOptions([]), source=None, output="/tmp/x")
    assert Signals.from_run(run) is None


def test_the_readme_offline_signals_command_runs_as_written(tmp_path):
    """The README's line, only paths changed and a few photos as input."""
    import json
    import subprocess

    from tests.test_first_hour import REPO, _few_sample_photos

    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    lines = [ln for ln in text.splitlines() if "$(python -m curate.models.tiny_signals" in ln]
    assert len(lines) == 1, lines
    command = lines[0].replace("/tmp/curate-", str(tmp_path / "curate-"))
    command += f" --input {_few_sample_photos(tmp_path / 'photos', n=3)} --torch_threads 1"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ledger = read_ledger(tmp_path / "curate-signals-run")
    kept = ledger[ledger.status == "kept"]
    assert len(kept) == 3
    for column in ("nsfw_score", "aesthetic_score", "watermark_score", "text_area"):
        assert kept[column].notna().all(), column
    stats = json.load(open(tmp_path / "curate-signals-run" / "stats.json"))
    assert set(stats["stages"]["Signals"]["models"]) == {"clip", "nsfw_score", "aesthetic_score", "watermark"}


def test_the_statistics_report_shows_each_signals_distribution(own):
    from curate.stats import collect, plots, tables

    ledger, _, out = own
    rs = collect(str(out))
    table = tables(rs)["signals"].set_index("signal")
    assert list(table.index) == ["nsfw_score", "aesthetic_score", "watermark_score", "text_area"]
    for column in table.index:
        assert table.loc[column, "count"] == ledger[column].notna().sum() == len(ledger)
        assert table.loc[column, "min"] == pytest.approx(ledger[column].min(), abs=1e-6)
        assert table.loc[column, "max"] == pytest.approx(ledger[column].max(), abs=1e-6)
    assert "nsfw_score" not in set(tables(rs).get("scores", {"score": []})["score"])  # not a CLIP score
    histogram = rs.get("signals").histogram("text_area")
    assert histogram["all"].sum() == len(ledger) and histogram.left.min() >= 0
    figure = plots.signals(rs)
    assert [ax.get_title().split(":")[0] for ax in figure.axes] == list(table.index)
