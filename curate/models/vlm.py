"""A Hugging Face `transformers` vision-language model captioning on one device. No Beam here.

Two halves, as for the CLIP models: `VlmInputs` (CPU threads, every worker process) decodes image
bytes and runs the checkpoint's own processor on a chunk of images with the caption prompt (the
checkpoint's chat template around it, left padding: decoder-only models continue from the right
end); `VlmModel` loads the checkpoint with `AutoModelForImageTextToText` (bf16 weights on CUDA by
default, fp32 on CPU) and runs transformers' own `generate` on the batch.

Sampling: transformers' `generate` draws every row of a batch from torch's one global generator,
so a caption would depend on which images shared its batch. Here `generate` runs its greedy loop
with `RowSampler` as the last logits processor: it applies the warpers transformers' sampling
applies (temperature, top-k, top-p: the same classes, same order) and draws each row's next token
from that row's own `torch.Generator` (seed: keyed hash of uid, seed and caption index), leaving
only that token possible, so greedy's argmax takes it. A caption then equals
`torch.manual_seed(row_seed); model.generate(**processor(image, prompt), do_sample=True, ...)` on
that image alone, whatever the batch (tests/test_caption_vlm.py checks it). Several captions per
image are rows of their own (the image repeated), each with its own generator.

The caption is the generated continuation only: the prompt the output echoes is cut off by
tokens, special tokens are skipped in decoding, a leading role label ("Assistant:") and runs of
whitespace are removed.
"""
from __future__ import annotations

import io
import re
import threading

from curate.models.clip import autocast_dtype, model_device
from curate.models.generation import GenerationParams
from curate.models.hf_resolve import default_caption_prompt
from curate.models.spec import ModelSpec

_LOAD_LOCK = threading.Lock()  # from_pretrained is not safe to run twice at once in one process
ROLE_LABEL = re.compile(r"^\s*(?:assistant|Assistant|ASSISTANT)\s*:\s*")
# Image processors guess the channel axis of a batch from its first image: one 1 or 3 px high reads as
# channels-first, so whether such an image (or its batch) can be processed would depend on its
# batch. Images with a side under MIN_SIDE are refused alone, whatever their batch.
MIN_SIDE = 4


def _load_kwargs(spec: ModelSpec) -> dict:
    return {"revision": spec.pretrained} if spec.pretrained else {}


def load_processor(spec: ModelSpec):
    from transformers import AutoProcessor

    with _LOAD_LOCK:
        return AutoProcessor.from_pretrained(spec.name, **_load_kwargs(spec))


def prompt_text(processor, prompt: str | None) -> str | None:
    """The text the processor gets beside each image: the prompt inside the checkpoint's chat
    template (a user turn holding the image and the prompt, then the assistant's turn opened;
    the processor's template, else its tokenizer's), or the prompt itself for a checkpoint
    without one; None for no prompt."""
    if not prompt:
        return None
    tokenizer = getattr(processor, "tokenizer", None)
    template = getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)
    if not template:
        return prompt
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor.apply_chat_template(messages, chat_template=template, add_generation_prompt=True, tokenize=False)


def clean_caption(text: str) -> str:
    """One line of caption: no leading role label, single spaces."""
    return " ".join(ROLE_LABEL.sub("", text, count=1).split())


def new_tokens(out, prompt_ids):
    """The generated tokens of `generate`'s output, without the prompt it echoes.

    Decoder-only models return the (left-padded) prompt and then the new tokens; BLIP returns the
    prompt with its first token replaced by its start token and its last ([SEP]) dropped;
    encoder-decoder models return only new tokens (after a start token that decoding skips)."""
    if prompt_ids is None:
        return out
    length = prompt_ids.shape[1]
    for echoed in (length, length - 1):
        if out.shape[1] >= echoed and bool((out[:, 1:echoed] == prompt_ids[:, 1:echoed]).all()):
            return out[:, echoed:]
    return out


class RowSampler:
    """A logits processor that samples each row from its own generator (see the module docstring).

    Given to a greedy `generate` as its last processor: it gets the scores after the processors
    that the generation config makes (repetition penalty, min new tokens, ...), applies sampling's
    warpers, draws each row as `torch.multinomial` on that row alone, and returns scores where only
    the drawn token is possible."""

    def __init__(self, generators: list, params: GenerationParams):
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.generators = generators
        self.warpers = []  # transformers' order: temperature, top-k, top-p
        if params.temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(params.temperature))
        if params.generation_type == "top_k":
            self.warpers.append(TopKLogitsWarper(top_k=params.top_k))
        elif params.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p=params.top_p))

    def __call__(self, input_ids, scores):
        import torch

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.nn.functional.softmax(scores, dim=-1)
        if probs.shape[0] != len(self.generators):
            raise ValueError(f"{probs.shape[0]} rows for {len(self.generators)} generators")
        drawn = draw_rows(probs, self.generators)
        only = torch.full_like(scores, float("-inf"))
        return only.scatter_(1, drawn[:, None], 0.0)


def draw_rows(probs, generators: list):
    """One token per row, row j drawn from `generators[j]`: what `torch.multinomial(probs[j:j+1], 1,
    generator=generators[j])` returns, for all rows in one division and argmax.

    torch's multinomial draws one sample as argmax(p / q), q ~ Exp(1) of p's shape from the given
    generator (the exponential race); only the draws of q need a loop over rows. The per-row calls
    cost ~0.2 ms each on CPU (their validity checks synchronise), the loop here a few µs per row;
    tests/test_caption_vlm.py checks the captions against transformers' own sampling."""
    import torch

    if not bool((probs.max() < float("inf")) & (probs.min() >= 0)) or bool((probs.sum(-1) == 0).any()):
        raise ValueError("probability tensor contains either inf, nan or element < 0, or a row sums to 0")
    q = torch.empty_like(probs)
    for j, generator in enumerate(generators):
        q[j:j + 1].exponential_(1, generator=generator)
    return torch.argmax(probs / q, dim=-1)


class VlmInputs:
    """CPU side: image bytes -> RGB image; a chunk of images -> the processor's batch (CPU tensors).

    Each thread gets its own processor: a fast tokenizer's padding settings are state that two
    concurrent calls would share (decode threads of several bundles, a retry on the main thread)."""

    def __init__(self, spec: ModelSpec, config: dict, prompt: str | None = None):
        self.spec = spec
        self._local = threading.local()
        self.prompt = default_caption_prompt(config.get("model_type")) if prompt is None else prompt
        self.text = prompt_text(self.processor, self.prompt)

    @property
    def processor(self):
        processor = getattr(self._local, "processor", None)
        if processor is None:
            processor = self._local.processor = load_processor(self.spec)
            tokenizer = getattr(processor, "tokenizer", None)
            if tokenizer is not None:
                tokenizer.padding_side = "left"  # decoder-only models continue every row from its right end
        return processor

    def image(self, data: bytes):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            if min(image.size) < MIN_SIDE:
                raise ValueError(f"image of {image.size[0]}x{image.size[1]} px: a side under {MIN_SIDE} px")
            return image.convert("RGB")  # decodes the whole image (an undecodable one raises here)

    def requests(self, images: list, copies: int = 1) -> list[dict]:
        """vLLM's prompts for `images`, each repeated `copies` times (a request per caption)."""
        return [{"prompt": self.text or "", "multi_modal_data": {"image": image}}
                for image in images for _ in range(copies)]

    def batch(self, images: list, copies: int = 1):
        """The processor's output for `images`, each repeated `copies` times (a row per caption)."""
        images = [image for image in images for _ in range(copies)]
        if self.text is None:
            return self.processor(images=images, return_tensors="pt")
        return self.processor(images=images, text=[self.text] * len(images), padding=True, return_tensors="pt")


class VlmModel:
    """A transformers image-text-to-text model on one device: processor batches -> caption token ids."""

    def __init__(self, spec: ModelSpec, device: str = "auto", precision: str = "auto", threads: int = 0):
        import inspect

        import torch
        from transformers import AutoModelForImageTextToText

        self.spec = spec
        self.device = model_device(device, threads)
        self.dtype = autocast_dtype(self.device, precision) or torch.float32  # the weights' dtype, not autocast
        with _LOAD_LOCK:
            self.model = AutoModelForImageTextToText.from_pretrained(spec.name, torch_dtype=self.dtype,
                                                                     **_load_kwargs(spec))
        self.model.to(self.device).eval()
        self.processor = load_processor(spec)
        generation = self.model.generation_config
        if generation.pad_token_id is None:  # else generate warns on every call, and pads with the end token
            tokenizer = getattr(self.processor, "tokenizer", None)
            pad = None if tokenizer is None else tokenizer.pad_token_id
            eos = generation.eos_token_id
            generation.pad_token_id = pad if pad is not None else eos[0] if isinstance(eos, list) else eos
        self.model_type = self.model.config.model_type
        self._forward_args = set(inspect.signature(self.model.forward).parameters)
        self._lock = threading.Lock()  # one generate at a time: RunInference may share the model across threads

    def input_config(self) -> dict:
        """What a worker needs to build matching VlmInputs (picklable, small)."""
        return {"model_type": self.model_type}

    def generate(self, batch, params: GenerationParams, seeds: list[list[int]] | None = None) -> list[list[list[int]]]:
        """Caption ids per image from a processor batch holding `len(seeds[i])` rows of image i (one
        row per image without sampling): one list per image, one id list per caption."""
        import torch

        batch = batch.to(device=self.device, dtype=self.dtype)
        # a tokenizer may add token_type_ids that the model does not take (generate refuses unknown inputs)
        inputs = {k: v for k, v in batch.items() if k != "token_type_ids" or k in self._forward_args}
        kwargs = params.transformers_kwargs()
        processors = None
        if params.sampled:
            generators = [torch.Generator(device=self.device).manual_seed(s) for row in seeds for s in row]
            processors = [RowSampler(generators, params)]
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        prompt = inputs.get("input_ids")
        prompt = None if prompt is None else prompt.clone()  # BLIP's generate writes into its input_ids
        with self._lock, torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs, logits_processor=processors)
        rows = self._cut(new_tokens(out, prompt).cpu().tolist())
        return group(rows, [len(s) for s in seeds] if params.sampled else [1] * len(rows))

    def _cut(self, rows: list[list[int]]) -> list[list[int]]:
        """Each row up to its first end-of-sequence token (what follows is padding)."""
        eos = self.model.generation_config.eos_token_id
        stop = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        out = []
        for row in rows:
            end = next((i for i, t in enumerate(row) if t in stop), len(row))
            out.append(row[:end])
        return out

    def texts(self, ids: list[list[list[int]]]) -> list[list[str]]:
        return decode_captions(self.processor, ids)


def decode_captions(processor, ids: list[list[list[int]]]) -> list[list[str]]:
    """Caption ids per image -> caption texts per image (special tokens skipped, cleaned)."""
    return [[clean_caption(t) for t in processor.batch_decode(per_image, skip_special_tokens=True)]
            for per_image in ids]


def group(rows: list, per_image: list[int]) -> list[list]:
    """Rows in image order -> one list per image of `per_image[i]` rows."""
    grouped, start = [], 0
    for n in per_image:
        grouped.append(rows[start:start + n])
        start += n
    return grouped
