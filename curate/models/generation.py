"""What `--caption_*` asks of a captioner's decoder, and the seed of each sampled caption.

Torch-free: the caption settings (imported by every recipe) use it. One GenerationParams serves
both engines: open_clip's CoCa `generate` (`generate_kwargs`) and transformers' `generate`
(`transformers_kwargs`). The lengths count differently: CoCa's `seq_len` is the whole token
sequence, start token included (open_clip's own meaning); for a transformers model it is the
number of new tokens (`max_new_tokens`), the prompt and image tokens not counted.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

GENERATION_TYPES = ("beam_search", "greedy", "top_p", "top_k")
SAMPLING = ("top_p", "top_k")


@dataclass(frozen=True)
class GenerationParams:
    generation_type: str = "beam_search"
    seq_len: int = 30  # --caption_max_length: CoCa: tokens with the start token; transformers: new tokens
    min_seq_len: int = 5  # --caption_min_length (same counting as seq_len)
    top_p: float = 0.9
    top_k: int = 50
    temperature: float = 1.0
    num_beams: int = 6
    num_beam_groups: int = 3
    repetition_penalty: float = 1.0

    @property
    def sampled(self) -> bool:
        return self.generation_type in SAMPLING

    def generate_kwargs(self) -> dict:
        """The keyword arguments of open_clip's CoCa `model.generate` (the same names)."""
        return {"generation_type": self.generation_type, "seq_len": self.seq_len, "min_seq_len": self.min_seq_len,
                "top_p": self.top_p, "top_k": self.top_k, "temperature": self.temperature,
                "num_beams": self.num_beams, "num_beam_groups": self.num_beam_groups,
                "repetition_penalty": self.repetition_penalty}

    def transformers_kwargs(self) -> dict:
        """The keyword arguments of transformers' `model.generate` for one caption per row.

        top_p samples with top-p alone and top_k with top-k alone (transformers would apply its
        default top_k=50 under top-p otherwise); sampling arguments are left unset (None) for
        greedy and beam search, so a checkpoint's sampling defaults neither apply nor warn.
        """
        sampling = {"temperature": None, "top_p": None, "top_k": None, "min_p": None, "typical_p": None}
        if self.generation_type == "top_p":
            sampling.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
        elif self.generation_type == "top_k":
            sampling.update(temperature=self.temperature, top_p=1.0, top_k=self.top_k)
        beams = self.num_beams if self.generation_type == "beam_search" else 1
        return {"do_sample": self.sampled, "num_beams": beams, "num_return_sequences": 1,
                "max_new_tokens": self.seq_len, "min_new_tokens": self.min_seq_len or None,
                "repetition_penalty": self.repetition_penalty, **sampling}


def sample_seed(uid: str, seed: int, index: int) -> int:
    """The generator seed of caption `index` of sample `uid` (63 bits of a keyed hash)."""
    digest = hashlib.blake2b(f"caption-sample\x00{seed}\x00{uid}\x00{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
