"""The CPU side of a model on a worker, shared by every model handler of the process.

One decode thread pool per size (decoding and preprocessing images beside the model: PIL and the
processors release the GIL for most of their work) and one inputs object per model (what turns
image bytes, captions or prompts into model input; built once, from the loaded model's settings).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Hashable

_POOLS: dict[int, ThreadPoolExecutor] = {}
_INPUTS: dict = {}
_LOCK = threading.Lock()


def decode_pool(threads: int) -> ThreadPoolExecutor:
    """This process's decode pool of `threads` threads (0: one per CPU)."""
    threads = threads or os.cpu_count() or 1
    with _LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="curate-decode")
        return _POOLS[threads]


def model_inputs(key: Hashable, build: Callable[[], object]):
    """This process's inputs object under `key`, built by `build()` the first time (outside the lock:
    building may load a tokenizer or processor; a racing second build is dropped)."""
    with _LOCK:
        inputs = _INPUTS.get(key)
    if inputs is None:
        inputs = build()
        with _LOCK:
            inputs = _INPUTS.setdefault(key, inputs)
    return inputs
