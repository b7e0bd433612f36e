"""The names the scoring stage writes, in one place: reasons, metrics, ledger columns, vectors.

Torch-free and Beam-free, so that whatever reads a scored run (the subset cut, the text graph,
tests) names the same things the stage does.
"""
from __future__ import annotations

from curate.io import verdicts

NAME = "score"  # the stage's reason and metric prefix: `score:<detail>`
ROLES = ("dfn", "clip")  # scored in this order; each role has its own model and cut

# drop details (`score:<detail>`)
NO_IMAGE = "no_image"
NO_CAPTION = "no_caption"
DECODE_ERROR = "decode_error"
NAN_SCORE = "nan_score"
BELOW = "below_threshold"
OFF_TARGET = "not_target_cluster"  # DataComp's image-based filter
PREFILTER = "prefilter"  # the cascade's cheap model: its role, column prefix and drop detail

TEXT_AREA = "text_area"  # ledger column: share of the image inside detected text boxes (T-MARS, signals)
MASKED = "masked"  # --score_field masked: the cut reads `masked_<role>_score` (T-MARS)
CLUSTER = "image_cluster"  # ledger column: the image's k-means cluster (image-based filter)
AUDIT = "prefilter_audit"  # ledger column: whether the sample is in the cascade's audit sample


def reason(detail: str) -> str:
    return verdicts.reason(NAME, detail)


def score_column(role: str) -> str:
    return f"{role}_score"


def masked_role(role: str) -> str:
    """T-MARS: the role's score with the image's text masked is `masked_<role>_score`, its cut
    threshold `masked_<role>_threshold`."""
    return f"{MASKED}_{role}"


def threshold_column(role: str) -> str:
    return f"{role}_threshold"


def vector_name(role: str) -> str:
    """The Sample.vectors key of a role's image embedding (fp16, L2-normalized, 1-D)."""
    return f"{role}_embedding"


def text_vector_name(role: str) -> str:
    """The Sample.vectors key of a role's caption embedding (fp16, L2-normalized, 1-D)."""
    return f"{role}_text_embedding"


def role_metric(role: str, what: str) -> str:
    """A per-model counter, e.g. `score_clip_in`, `score_clip_model_samples`."""
    return f"{NAME}_{role}_{what}"


def metrics_namespace(role: str) -> str:
    """RunInference's metrics namespace of one scoring model."""
    return f"curate_score_{role}"
