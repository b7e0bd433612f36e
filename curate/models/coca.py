"""open_clip CoCa captioning on one device: uint8 pixels -> caption token ids -> text. No Beam here.

Beam search is deterministic and runs as open_clip's own `model.generate` on the whole batch.
Top-p / top-k sampling would draw every row of a batch from torch's one global generator, so a
caption would depend on which other images shared its batch; here the sampling loop is
open_clip's (same logits processors, warper, temperature, stopping) with one draw per row from
that row's own generator, seeded from (uid, seed, caption index). A row's caption then equals
`torch.manual_seed(row_seed); model.generate(image[None], ...)` whatever the batch split
(tests/test_caption_model.py checks it).

Run `python -m curate.models.coca FOLDER` to write a tiny random-init CoCa for offline runs.
"""
from __future__ import annotations

import json
import os
import sys
import threading

from curate.errors import UsageError
from curate.models.clip import ClipModel
from curate.models.generation import SAMPLING, GenerationParams, sample_seed  # noqa: F401  (re-exported)

GENERATION_TYPES = ("beam_search", "top_p", "top_k")  # open_clip's; greedy is transformers' only
SOT, EOT = 49406, 49407  # open_clip's SimpleTokenizer: what every released CoCa generates with
MAX_SEQ_LEN = 77  # generate's window over the tokens so far (its max_seq_len default)
INSTALL = "pip install 'curate[hf]'"

# A tiny CoCa for tests and offline smoke runs (~3M parameters, almost all the token embedding
# and logit tables of the 49,408-token vocabulary): milliseconds per caption on one CPU core.
TINY_COCA_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16,
                   "attentional_pool": True, "attn_pooler_heads": 2, "attn_pooler_queries": 8,
                   "output_tokens": True},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                       "attn_pooler_heads": 2, "n_queries": 8, "dim_head": 16},
    "custom_text": True,
}

_GENERATE_LOCK = threading.Lock()


def require_transformers() -> None:
    """open_clip's generate asserts on transformers at call time: say so now, in one line."""
    try:
        from open_clip import coca_model
    except ImportError as e:
        raise UsageError(f"captions need open_clip: pip install 'curate[score]' ({e})") from None
    if not coca_model._has_transformers:
        raise UsageError(f"--caption_model: CoCa captions need transformers<4.56 (open_clip's generate uses "
                         f"its BeamSearchScorer and logits warpers): {INSTALL}")


def is_coca_config(config: dict | None) -> bool | None:
    """Whether a model config is a CoCa (has a text decoder); None when unknown."""
    return None if config is None else "multimodal_cfg" in config


def decode_tokens(tokenizer, ids) -> str:
    """Generated ids (start token first) -> text, cut at the end token."""
    ids = [int(i) for i in ids]
    if ids and ids[0] == SOT:
        ids = ids[1:]
    if EOT in ids:
        ids = ids[:ids.index(EOT)]
    return tokenizer.decode(ids).strip()


class CocaModel(ClipModel):
    """A CoCa on one device: uint8 pixels -> captions (ids), `captions` per image."""

    def __init__(self, spec, device: str = "auto", precision: str = "auto", threads: int = 0):
        super().__init__(spec, device, precision, threads)
        if not hasattr(self.model, "generate"):
            raise ValueError(f"{spec.describe()} is not a CoCa model (it has no text decoder)")
        import open_clip

        self.tokenizer = open_clip.get_tokenizer(spec.name)

    def generate(self, pixels, params: GenerationParams, seeds: list[list[int]] | None = None) -> list[list[list[int]]]:
        """Caption ids per image: one list per image, `len(seeds[i])` captions each (one for beam search)."""
        import torch

        images = self.normalize(pixels)
        # one generation at a time per model: RunInference may hand one loaded model to DoFn
        # instances on several bundle threads, and open_clip's CoCa is not known to be re-entrant
        with _GENERATE_LOCK, torch.inference_mode(), torch.autocast(
                self.device.split(":")[0], dtype=self.dtype, enabled=self.dtype is not None):
            if params.sampled:
                return self._sampled(images, params, seeds)
            out = self.model.generate(images, **params.generate_kwargs())
        return [[row.tolist()] for row in out.cpu()]

    def texts(self, ids: list[list[list[int]]]) -> list[list[str]]:
        return [[decode_tokens(self.tokenizer, one) for one in per_image] for per_image in ids]

    def _sampled(self, images, params: GenerationParams, seeds: list[list[int]]):
        """open_clip's top-p/top-k loop (CoCa.generate), one generator per output row."""
        import torch
        import torch.nn.functional as F
        from open_clip.coca_model import GENERATION_TYPES as WARPERS
        from transformers import LogitsProcessorList, MinLengthLogitsProcessor, RepetitionPenaltyLogitsProcessor

        model, device = self.model, images.device
        per_image = [len(s) for s in seeds]
        rows = torch.repeat_interleave(torch.arange(len(seeds), device=device),
                                       torch.tensor(per_image, device=device))
        generators = [torch.Generator(device=device).manual_seed(s) for row in seeds for s in row]
        eot = torch.tensor(EOT, device=device)
        processors = LogitsProcessorList([MinLengthLogitsProcessor(params.min_seq_len, eot),
                                          RepetitionPenaltyLogitsProcessor(params.repetition_penalty)])
        warper = WARPERS[params.generation_type](params.top_p if params.generation_type == "top_p" else params.top_k)
        latent, embs = model._encode_image(images)  # once per image, shared by its captions
        latent, embs, images = latent[rows], embs[rows], images[rows]
        out = torch.full((len(generators), 1), SOT, device=device, dtype=torch.long)
        while out.shape[1] < params.seq_len:
            x = out[:, -MAX_SEQ_LEN:]
            logits = model(images, x, image_latent=latent, image_embs=embs, output_labels=False)["logits"][:, -1]
            done = (out[:, -1] == EOT) | (out[:, -1] == model.pad_id)
            if done.all():
                break
            step = torch.full((len(generators), 1), model.pad_id, device=device, dtype=torch.long)
            live = (~done).nonzero().flatten()
            if x.shape[1] + 1 == params.seq_len:
                step[live] = EOT
            else:
                scores = warper(x[live], processors(x[live], logits[live]))
                probs = F.softmax(scores / params.temperature, dim=-1)
                for j, row in enumerate(live.tolist()):  # what multinomial on this row alone draws
                    step[row] = torch.multinomial(probs[j:j + 1], 1, generator=generators[row])[0]
            out = torch.cat((out, step), dim=-1)
        ids = out.cpu().tolist()
        grouped, start = [], 0
        for n in per_image:
            grouped.append(ids[start:start + n])
            start += n
        return grouped


def write_tiny_coca(folder: str, name: str = "tiny-coca", seed: int = 0,
                    config: dict | None = None) -> tuple[str, str]:
    """(config .json, checkpoint) of a seeded random-init CoCa: what --caption_model/_pretrained take."""
    import torch
    from open_clip.coca_model import CoCa

    config = dict(config or TINY_COCA_CONFIG)
    os.makedirs(folder, exist_ok=True)
    config_path = os.path.join(folder, f"{name}.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    torch.manual_seed(seed)
    model = CoCa(**{k: v for k, v in config.items() if k != "custom_text"})
    # open_clip never initialises the text decoder's text_projection (its init_parameters is
    # never called, and fails if called): it is left as torch.empty, whatever memory held (NaN or
    # huge values now and then: captions that depended on test order). Real checkpoints carry
    # trained values; a random one must initialise it, as open_clip's text tower does.
    projection = model.text_decoder.text_projection
    torch.nn.init.normal_(projection, std=projection.shape[0] ** -0.5)
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()
           and not n.endswith("attn_mask")]  # the causal masks hold -inf by design
    assert not bad, f"uninitialised parameters in a random CoCa: {bad}"
    checkpoint = os.path.join(folder, f"{name}.pt")
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return config_path, checkpoint


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m curate.models.coca FOLDER  (writes a tiny random-init CoCa there)")
    paths = write_tiny_coca(sys.argv[1])
    print(f"--caption_model {paths[0]} --caption_pretrained {paths[1]}")
