"""How scoring models run on a worker, in a module free of torch so recipes import it cheaply
(Beam's RunInference module imports torch, ~2.5 s, which a run without scoring never needs)."""
from __future__ import annotations

from dataclasses import dataclass

from curate.flags import flag_defaults
from curate.options import CurateOptions
from curate.score.options import ScoreOptions

_FLAGS = flag_defaults(ScoreOptions, CurateOptions)  # a field left out is its flag's default


@dataclass(frozen=True)
class InferenceSettings:
    """How a model runs on a worker (the same for every scoring model of a run)."""

    device: str = _FLAGS.device
    precision: str = _FLAGS.score_precision
    batch_size: int = _FLAGS.score_batch_size  # images per forward pass
    rows_per_batch: int = _FLAGS.batch_size  # --batch_size: samples per SampleBatch
    decode: str = _FLAGS.score_decode  # "cpu" (PIL threads) | "gpu" (on the model's device)
    decode_threads: int = _FLAGS.score_decode_threads
    torch_threads: int = _FLAGS.torch_threads  # CPU intra-op threads (0: torch's default)
    model_copies: int = _FLAGS.model_copies  # CUDA: models shared by a machine's SDK processes; 0 = one per process
