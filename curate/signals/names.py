"""The names the signals stage writes, in one place: its reason prefix, metrics and ledger columns.

Torch-free and Beam-free, so what reads a run (stats, the --keep expression's checks) names the
same columns the stage does.
"""
from __future__ import annotations

from curate.score.names import TEXT_AREA  # noqa: F401  (T-MARS in the scoring stage writes it too)

NAME = "signals"  # reasons `signals:<detail>`, metrics `signals_<what>`
STEP = "Signals"
METRICS_NAMESPACE = "curate_signals"

NSFW = "nsfw"
AESTHETIC = "aesthetic"
WATERMARK = "watermark"
SIGNALS = (NSFW, AESTHETIC, WATERMARK)  # each fills `<signal>_score`

# drop details (`signals:<detail>`) and counters
DECODE_ERROR = "decode_error"
NO_IMAGE_METRIC = f"{NAME}_no_image"  # a sample without image bytes passes with no signal
NO_EMBEDDING_METRIC = f"{NAME}_no_embedding"  # reuse expected, the scoring stage's embedding missing


def column(signal: str) -> str:
    """`nsfw_score`, `aesthetic_score`, `watermark_score`."""
    return f"{signal}_score"
