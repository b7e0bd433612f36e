"""Images never cross the engine: no SampleBatch or Sample is encoded between stages.

Within a fused stage elements pass as Python objects; anything that crosses a fusion boundary
(a shuffle, a side-input wait, a stage boundary) is encoded by Beam. Parking writes batches
itself, without Beam's coders, so counting the coder's and pickle's calls on the element types
shows whether a run held or shuffled samples.
"""
from __future__ import annotations

import io

import apache_beam as beam
import pytest
from PIL import Image

from curate.coders import SampleBatchCoder
from curate.sample import Sample, SampleBatch
from tests.conftest import SAMPLE, run_curate


@pytest.fixture
def crossings(monkeypatch):
    seen: list[str] = []
    encode = SampleBatchCoder.encode

    def counted_encode(self, batch):
        seen.append(f"batch {batch.id}")
        return encode(self, batch)

    def counted_reduce_ex(self, protocol):
        seen.append(f"sample {self.uid}")
        return object.__reduce_ex__(self, protocol)

    batch_reduce = SampleBatch.__reduce__

    def counted_batch_reduce(self):
        seen.append(f"pickled batch {self.id}")
        return batch_reduce(self)

    monkeypatch.setattr(SampleBatchCoder, "encode", counted_encode)
    monkeypatch.setattr(Sample, "__reduce_ex__", counted_reduce_ex)
    monkeypatch.setattr(SampleBatch, "__reduce__", counted_batch_reduce)
    return seen


def test_the_probe_sees_samples_that_go_through_a_shuffle(crossings):
    """The probe itself: a graph that groups samples is caught."""
    samples = [Sample(uid=f"{i:032x}", caption="c", image=b"x") for i in range(4)]
    with beam.Pipeline("FnApiRunner") as p:
        _ = (p | beam.Create([SampleBatch("00000-0000000000", samples)]).with_output_types(SampleBatch)
             | beam.FlatMap(lambda b: [(s.uid[-1], s) for s in b.samples]) | beam.GroupByKey())
    assert crossings


def _image_folder(folder, n: int):
    folder.mkdir()
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (64 + i, 48), (i * 7 % 256, i * 13 % 256, i * 29 % 256)).save(buf, "PNG")
        (folder / f"img{i:03d}.png").write_bytes(buf.getvalue())
        (folder / f"img{i:03d}.txt").write_text(f"a photo of a dog number {i}")
    return folder


@pytest.mark.parametrize("recipe", ["dedup", "metaclip"])
def test_an_image_run_holds_and_shuffles_no_sample(tmp_path, crossings, recipe):
    folder = _image_folder(tmp_path / "images", 30)
    stats = run_curate("--pipeline", recipe, "--input", str(folder), "--batch_size", "7",
                       "--samples_per_shard", "8", output=tmp_path / "out")
    assert stats["kept_in_shards"] > 0
    assert crossings == []


def test_the_bundled_default_run_holds_and_shuffles_no_sample(tmp_path, crossings):
    stats = run_curate("--pipeline", "metaclip", "--input", SAMPLE, output=tmp_path / "out")
    assert stats["kept_in_shards"] > 0
    assert crossings == []


def test_a_scoring_run_holds_and_shuffles_no_sample(tmp_path, crossings):
    """RunInference with our ModelHandler inside the graph, then the pool-fraction cut."""
    from curate.models.tiny import write_tiny_model

    model, checkpoint = write_tiny_model(str(tmp_path / "model"), name="tiny-clip", seed=3)
    folder = _image_folder(tmp_path / "images", 12)
    stats = run_curate("--pipeline", "laion", "--input", str(folder), "--clip_model", model,
                       "--clip_pretrained", checkpoint, "--clip_keep_fraction", "0.5", "--batch_size", "5",
                       "--language", "none", output=tmp_path / "out")
    assert stats["inputs"] == 12
    assert crossings == []
