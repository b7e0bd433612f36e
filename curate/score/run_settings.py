"""How scoring models run on a worker, in a module free of torch so recipes import it cheaply
(Beam's RunInference module imports torch, ~2.5 s, which a run without scoring never needs)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSettings:
    """How a model runs on a worker (the same for every scoring model of a run)."""

    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 256  # images per forward pass
    rows_per_batch: int = 1000  # --batch_size: samples per SampleBatch
    decode: str = "cpu"  # "cpu" (PIL threads) | "gpu" (on the model's device)
    decode_threads: int = 0
    torch_threads: int = 0  # CPU intra-op threads (0: torch's default)
    model_copies: int = 1  # CUDA: models shared by a machine's SDK processes; 0 = one per process
