"""CocaModel against open_clip's own CoCa.generate, one image at a time (tiny random-init CoCa)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from open_clip.coca_model import CoCa

from curate.models.coca import (TINY_COCA_CONFIG, CocaModel, GenerationParams, decode_tokens, require_transformers,
                                sample_seed, write_tiny_coca)
from curate.models.resolve import resolve
from tests.test_models import open_clip_pixels, sample_images

TOP_P = GenerationParams("top_p", seq_len=12, min_seq_len=2, top_p=0.9, temperature=1.3)


@pytest.fixture(scope="module")
def tiny_coca(tmp_path_factory):
    config, checkpoint = write_tiny_coca(str(tmp_path_factory.mktemp("coca")), name="tiny-coca-model", seed=3)
    return config, checkpoint, resolve("caption", config, checkpoint)


def direct_captions(checkpoint: str, images: list[bytes], params: GenerationParams, seeds=None):
    """open_clip by hand: its CoCa class, the checkpoint, its transform, generate on each image alone."""
    model = CoCa(**{k: v for k, v in TINY_COCA_CONFIG.items() if k != "custom_text"})
    model.load_state_dict(torch.load(checkpoint)["state_dict"])
    model.eval()
    pixels = open_clip_pixels(TINY_COCA_CONFIG, images)
    out = []
    for i in range(len(images)):
        per_image = []
        for seed in (seeds[i] if seeds else [None]):
            if seed is not None:
                torch.manual_seed(seed)
            per_image.append(model.generate(pixels[i:i + 1], **params.generate_kwargs())[0].tolist())
        out.append(per_image)
    return out


def test_sampled_captions_equal_open_clip_generate_per_image_whatever_the_batch(tiny_coca):
    _, checkpoint, spec = tiny_coca
    images = sample_images(3)
    uids = [f"{i:032x}" for i in range(3)]
    seeds = [[sample_seed(uid, 7, k) for k in range(2)] for uid in uids]
    model = CocaModel(spec, "cpu")
    from curate.models.clip import ClipInputs

    inputs = ClipInputs(spec, model.input_config())
    pixels = np.stack([inputs.pixels(b) for b in images])
    whole = model.generate(pixels, TOP_P, seeds)
    split = model.generate(pixels[:1], TOP_P, seeds[:1]) + model.generate(pixels[1:], TOP_P, seeds[1:])
    assert whole == split
    assert whole == direct_captions(checkpoint, images, TOP_P, seeds)
    assert whole[0][0] != whole[0][1]  # two seeds, two captions
    texts = model.texts(whole)
    assert all(isinstance(t, str) for per in texts for t in per)


def test_beam_search_equals_open_clip_generate(tiny_coca):
    _, checkpoint, spec = tiny_coca
    params = GenerationParams("beam_search", seq_len=8, min_seq_len=2, num_beams=2, num_beam_groups=1)
    images = sample_images(2)
    model = CocaModel(spec, "cpu")
    from curate.models.clip import ClipInputs

    inputs = ClipInputs(spec, model.input_config())
    pixels = np.stack([inputs.pixels(b) for b in images])
    ours = model.generate(pixels, params)
    reference = direct_captions(checkpoint, images, params)
    assert [[decode_tokens(model.tokenizer, r) for r in per] for per in ours] == \
        [[decode_tokens(model.tokenizer, r) for r in per] for per in reference]


def test_missing_transformers_is_one_line_naming_the_extra():
    code = ("import sys; sys.modules['transformers'] = None\n"
            "from curate.models.coca import require_transformers\n"
            "try:\n    require_transformers()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    line = out.stdout.strip()
    assert line.startswith("UsageError") and "pip install 'curate[hf]'" in line and "\n" not in line, out
    require_transformers()  # installed here: no error


def test_a_clip_model_is_not_a_captioner(tmp_path):
    from curate.models.tiny import write_tiny_model

    config, checkpoint = write_tiny_model(str(tmp_path), name="tiny-not-coca")
    with pytest.raises(ValueError, match="not a CoCa"):
        CocaModel(resolve("caption", config, checkpoint), "cpu")
