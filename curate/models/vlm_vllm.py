"""`--caption_engine vllm`: vLLM serving a transformers vision-language checkpoint on a GPU worker.

No Beam here, and vLLM is imported only when the model loads (`pip install 'curate[vllm]'`, a GPU
worker's extra: vLLM brings the torch and transformers it was built for). The prompt is the one
the transformers engine builds (`VlmInputs.text`: the checkpoint's chat template around
--caption_prompt); each caption is one request, and its text is decoded as the transformers
engine decodes it.

The seeding contract, where it holds and where not:
- holds: each sampled caption is its own request with `SamplingParams(seed=...)` set to the
  caption's seed (keyed hash of uid, --caption_seed, caption index), and vLLM draws a seeded
  request's tokens from a generator of its own. The random numbers a caption uses do not depend
  on its batch, worker or runner.
- does not hold by default: the probabilities drawn from. vLLM batches requests (continuous
  batching, chunked prefill, CUDA graphs per batch size) with kernels whose float results change
  with the batch, so a token near a sampling boundary (or an argmax near a tie, greedy included)
  can differ between two runs whose batches differ. `VLLM_BATCH_INVARIANT=1` (vLLM's
  batch-invariant kernels, beta, recent NVIDIA GPUs) removes that; even then vLLM promises
  reproducibility only on the same hardware and vLLM version.
- never: a vLLM caption equals the transformers engine's caption for the same seed (another
  sampler, other kernels). Beam search is not offered (vLLM's generate samples or decodes greedily).
"""
from __future__ import annotations

from curate.errors import UsageError
from curate.models.generation import GenerationParams
from curate.models.spec import ModelSpec
from curate.models.vlm import decode_captions, group, load_processor

INSTALL = "pip install 'curate[vllm]'"
DTYPES = {"auto": "bfloat16", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def require_vllm() -> None:
    """vLLM is installed (without importing it: it starts CUDA); one line naming the extra if not."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise UsageError(f"--caption_engine vllm: vLLM is not installed: {INSTALL} (on the GPU workers)")


def sampling_params(params: GenerationParams, seeds: list[list[int]] | None, images: int) -> list:
    """One vLLM SamplingParams per request (per caption), in request order."""
    from vllm import SamplingParams

    base = {"max_tokens": params.seq_len, "min_tokens": params.min_seq_len,
            "repetition_penalty": params.repetition_penalty}
    if not params.sampled:
        return [SamplingParams(temperature=0.0, **base) for _ in range(images)]
    top_p = params.top_p if params.generation_type == "top_p" else 1.0
    top_k = params.top_k if params.generation_type == "top_k" else -1
    return [SamplingParams(temperature=params.temperature, top_p=top_p, top_k=top_k, seed=seed, **base)
            for row in seeds for seed in row]


class VllmModel:
    """vLLM's offline engine on this worker's GPU: (prompt, image) requests -> caption token ids."""

    def __init__(self, spec: ModelSpec, device: str = "auto", precision: str = "auto"):
        require_vllm()
        from transformers import AutoConfig
        from vllm import LLM

        revision = {"revision": spec.pretrained} if spec.pretrained else {}
        self.model_type = AutoConfig.from_pretrained(spec.name, **revision).model_type
        self.llm = LLM(model=spec.name, dtype=DTYPES.get(precision, "bfloat16"), limit_mm_per_prompt={"image": 1},
                       **revision)
        self.processor = load_processor(spec)

    def input_config(self) -> dict:
        return {"model_type": self.model_type}

    def generate(self, requests: list[dict], params: GenerationParams,
                 seeds: list[list[int]] | None = None) -> list[list[list[int]]]:
        outputs = self.llm.generate(requests, sampling_params(params, seeds, len(requests)), use_tqdm=False)
        rows = [list(o.outputs[0].token_ids) for o in outputs]
        return group(rows, [len(s) for s in seeds] if params.sampled else [1] * len(rows))

    def texts(self, ids: list[list[list[int]]]) -> list[list[str]]:
        return decode_captions(self.processor, ids)
