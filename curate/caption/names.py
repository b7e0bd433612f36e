"""The names the caption stage writes, in one place: reasons, metrics, ledger columns."""
from __future__ import annotations

NAME = "caption"  # the stage's reason and metric prefix; also the flag prefix (--caption_model)
SYN_ROLE = "syn_clip"  # the CLIP model scoring synthetic captions: its column is syn_clip_score

# per-sample details (`caption:<detail>`); NO_IMAGE is not a drop: the sample passes uncaptioned
NO_IMAGE = "no_image"
DECODE_ERROR = "decode_error"
GENERATE_ERROR = "generate_error"
EMPTY = "empty"  # every caption of the sample was empty (after the prompt echo and special tokens)
SYN_SCORE_ERROR = "syn_score_error"  # a failed call of the CLIP model on the synthetic captions

NO_IMAGE_METRIC = f"{NAME}_{NO_IMAGE}"  # samples that passed uncaptioned
METRICS_NAMESPACE = f"curate_{NAME}"  # RunInference's metrics of the captioner

# ledger columns
SYN_CAPTION, SYN_CAPTIONS, MODEL, TXT_IS_SYNTHETIC = "syn_caption", "syn_captions", "caption_model", "txt_is_synthetic"
SYN_SCORE = f"{SYN_ROLE}_score"
