"""Shared by the scoring benchmarks: the same images, captions, random-init models and Beam graph.

Images are the bundled COCO photos (real web-sized JPEGs, ~640x480) repeated; captions are
their real captions. Models are random-init open_clip configs saved as a checkpoint (weights do
not change speed), loaded through the same path as real weights.
"""
from __future__ import annotations

import functools
import json
import os
import resource
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from curate.inputs import bundled_sample
from curate.models.resolve import resolve
from curate.models.tiny import TINY_CONFIG, write_tiny_model
from curate.sample import Sample, SampleBatch, make_uid
from curate.ledger_layout import batch_id
from curate.score.handler import InferenceSettings
from curate.score.stage import ScoreWith


@functools.lru_cache(maxsize=1)
def sample_pairs() -> list[tuple[bytes, str]]:
    root = bundled_sample()
    with open(os.path.join(root, "pairs.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [(open(os.path.join(root, r["file"]), "rb").read(), r["caption"]) for r in rows if r.get("file")]


def samples(n: int) -> list[Sample]:
    pairs = sample_pairs()
    return [Sample(make_uid(f"bench-{i}", pairs[i % len(pairs)][1]), caption=pairs[i % len(pairs)][1],
                   image=pairs[i % len(pairs)][0]) for i in range(n)]


def random_model(model: str, folder: str):
    """A resolved spec for a random-init `model` ('tiny' or an open_clip config name)."""
    import open_clip

    config = TINY_CONFIG if model == "tiny" else open_clip.get_model_config(model)
    name = f"bench-{model.lower()}"
    config_path, checkpoint = write_tiny_model(folder, name=name, seed=0, config=config)
    return resolve("clip", config_path, checkpoint)


def _make_batch(index: int, n: int, rows_per_batch: int) -> SampleBatch:
    chunk = samples(n)[index * rows_per_batch:(index + 1) * rows_per_batch]
    return SampleBatch(batch_id(0, index), chunk)


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (steadier than wall time on a busy machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def beam_seconds(spec, inference: InferenceSettings, n: int) -> tuple[float, float]:
    """(wall, CPU) seconds of a FnApiRunner pipeline scoring n samples (start-up and model load included)."""
    batches = (n + inference.rows_per_batch - 1) // inference.rows_per_batch
    t0, c0 = time.perf_counter(), cpu_seconds()
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        out = (p | beam.Create(range(batches)) | beam.Map(_make_batch, n, inference.rows_per_batch)
               | ScoreWith(spec, inference))
        _ = out.kept | beam.Map(len) | beam.CombineGlobally(sum)
    return time.perf_counter() - t0, cpu_seconds() - c0


def beam_rate(spec, inference: InferenceSettings, n_small: int, n_large: int) -> tuple[float, float]:
    """Marginal (images/s, CPU ms per image) in the graph, from runs of n_small and n_large images.

    The difference cancels the fixed costs (pipeline start-up, model load) that a long run
    amortizes, so it compares with a bare loop that excludes model creation.
    """
    samples(n_large)  # read the files once, outside both timings
    small_wall, small_cpu = beam_seconds(spec, inference, n_small)
    large_wall, large_cpu = beam_seconds(spec, inference, n_large)
    n = n_large - n_small
    return n / (large_wall - small_wall), 1000 * (large_cpu - small_cpu) / n
