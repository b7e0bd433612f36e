"""The scoring stage alone in a Beam graph: every sample is scored or becomes a precise ledger row."""
import pickle
import sys
import traceback

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from curate.models.resolve import resolve
from curate.models.tiny import TINY_CONFIG, write_tiny_model
from curate.sample import Sample, SampleBatch, make_uid
from curate.score.handler import InferenceSettings
from curate.score.stage import FailedCalls, ScoreWith
from tests.test_models import SCORE_TOLERANCE, direct_scores, sample_images


def _samples():
    images = sample_images(7)
    good = [Sample(make_uid(f"img{i}", f"a good photo {i}"), caption=f"a good photo {i}", image=b)
            for i, b in enumerate(images)]
    bad = [
        Sample(make_uid("trunc", "cut"), caption="a truncated jpeg file", image=images[0][:2000]),
        Sample(make_uid("junk", "junk"), caption="not an image at all", image=b"GIF89a garbage"),
        Sample(make_uid("noimg", "x"), caption="only a url here", url="http://example.com/x.jpg"),
        Sample(make_uid("nocap", ""), caption=None, image=images[1]),
    ]
    return good, bad


def _write(item, path):
    with open(path, "ab") as f:
        pickle.dump(item, f)


def _read(path):
    out = []
    try:
        with open(path, "rb") as f:
            while True:
                out.append(pickle.load(f))
    except (EOFError, FileNotFoundError):
        return out


def test_bad_images_become_ledger_rows_and_good_ones_get_open_clip_scores(tmp_path):
    config, checkpoint = write_tiny_model(str(tmp_path), name="tiny-stage", seed=4)
    spec = resolve("clip", config, checkpoint)
    good, bad = _samples()
    mixed = [good[0], bad[0], good[1], good[2], bad[1], bad[2], good[3], bad[3], good[4], good[5], good[6]]
    batches = [SampleBatch(f"00000-{i:06d}", mixed[i:i + 3]) for i in range(0, len(mixed), 3)]
    kept_path, dropped_path = str(tmp_path / "kept.pkl"), str(tmp_path / "dropped.pkl")
    run = InferenceSettings(device="cpu", batch_size=2, rows_per_batch=3, decode_threads=2, torch_threads=1)
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        out = p | beam.Create(batches, reshuffle=False) | ScoreWith(spec, run)
        _ = out.kept | "Kept" >> beam.Map(lambda b: [(s.uid, s.values["clip_score"], s.vectors["clip_embedding"])
                                                     for s in b.samples]) | "SaveKept" >> beam.Map(_write, kept_path)
        _ = (out.dropped | beam.Flatten() | beam.Map(lambda kv: kv[1].to_pylist())
             | "SaveDropped" >> beam.Map(_write, dropped_path))
    kept = {uid: (score, vector) for rows in _read(kept_path) for uid, score, vector in rows}
    dropped = {row["uid"]: row["reason"] for rows in _read(dropped_path) for row in rows}
    assert dropped == {bad[0].uid: "score:decode_error", bad[1].uid: "score:decode_error",
                       bad[2].uid: "score:no_image", bad[3].uid: "score:no_caption"}
    assert set(kept) == {s.uid for s in good}
    reference, ref_image = direct_scores(TINY_CONFIG, checkpoint, False, [s.image for s in good],
                                         [s.caption for s in good])
    ours = np.array([kept[s.uid][0] for s in good], dtype=np.float32)
    np.testing.assert_allclose(ours, reference, atol=SCORE_TOLERANCE, rtol=0)
    vectors = np.stack([kept[s.uid][1] for s in good])
    assert vectors.dtype == np.float16 and vectors.shape == (len(good), TINY_CONFIG["embed_dim"])
    np.testing.assert_allclose(vectors, ref_image, atol=1e-3, rtol=0)  # fp16 rounding of unit vectors


def test_a_failed_inference_call_puts_each_of_its_samples_in_the_ledger():
    good, _ = _samples()
    batches = [SampleBatch("00000-000000", good[:2]), SampleBatch("00000-000100", good[2:3])]
    try:
        raise RuntimeError("CUDA out of memory")
    except RuntimeError as e:
        dead_letter = (batches, (type(e), repr(e), traceback.format_exception(*sys.exc_info())))
    dofn = FailedCalls()
    dofn.setup()
    rows = [(part, table.to_pylist()) for part, table in dofn.process(dead_letter)]
    assert [batch_id for batch_id, _ in rows] == [batches[0].id, batches[1].id]
    flat = [row for _, part_rows in rows for row in part_rows]
    assert [r["uid"] for r in flat] == [s.uid for s in good[:3]]
    assert {r["reason"] for r in flat} == {"score:error_RuntimeError"} and {r["status"] for r in flat} == {"dropped"}
