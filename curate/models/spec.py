"""What a resolved model name is (a ModelSpec), shared by the open_clip and transformers resolvers."""
from __future__ import annotations

from dataclasses import dataclass

HF_HUB = "hf-hub:"
LOCAL_DIR = "local-dir:"
TRANSFORMERS = "transformers"
EMBED, CAPTION = "embed", "caption"  # what a transformers checkpoint must do: a CLIPModel, or a captioner


@dataclass(frozen=True)
class ModelSpec:
    role: str  # "clip" | "dfn": the flag prefix, used in messages and column names
    name: str  # what open_clip.create_model gets
    pretrained: str | None  # tag, checkpoint file or hf-hub:org/repo; None for hf-hub:/local-dir: names
    config: dict | None = None  # model config read from a JSON file (registered on each worker)
    quick_gelu: bool | None = None  # activation override when the weights need another than the config
    note: str | None = None  # what was corrected, for the run's output
    kind: str = "open_clip"  # or TRANSFORMERS: a Hugging Face checkpoint (hub id or local folder)
    task: str = EMBED  # a TRANSFORMERS checkpoint's job: EMBED (a CLIPModel) or CAPTION (image-text-to-text)

    def describe(self) -> str:
        return self.name if self.pretrained is None else f"{self.name} + {self.pretrained}"
