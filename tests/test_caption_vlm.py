"""transformers vision-language captioners (tiny random-init BLIP, Qwen2-VL, LLaVA written here with
their processors and tokenizers) against transformers' own `generate`, one image at a time."""
import io
import json

import pytest
import torch
import transformers
from PIL import Image

from curate.errors import UsageError
from curate.models.generation import GenerationParams, sample_seed
from curate.models.hf_resolve import CHAT_PROMPT, default_caption_prompt
from curate.models.resolve import TRANSFORMERS, resolve
from curate.models.spec import CAPTION
from curate.models.tiny_vlm import write_tiny_vlm
from curate.models.vlm import VlmInputs, VlmModel, clean_caption, new_tokens, prompt_text
from tests.test_models import sample_images

TOP_P = GenerationParams("top_p", seq_len=8, min_seq_len=2, top_p=0.9, temperature=1.3)
TOP_K = GenerationParams("top_k", seq_len=6, min_seq_len=0, top_k=5, repetition_penalty=1.3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> a checkpoint folder, written once per module."""
    root = tmp_path_factory.mktemp("tiny-vlm")
    return {family: write_tiny_vlm(str(root / family), family, seed=1) for family in ("qwen2_vl", "blip", "llava")}


def images_of_two_shapes() -> list[bytes]:
    """Three photos and a wide crop of one: a Qwen2-VL prompt gets fewer image tokens for the crop,
    so its batch is left-padded."""
    photos = sample_images(3)
    out = io.BytesIO()
    Image.open(io.BytesIO(photos[0])).crop((0, 0, 600, 150)).save(out, format="JPEG")
    return photos + [out.getvalue()]


def direct_captions(folder: str, images: list[bytes], prompt: str | None, params: GenerationParams, seeds=None):
    """transformers by hand: AutoProcessor, AutoModelForImageTextToText, generate on each image alone
    after torch.manual_seed(seed); the new tokens decoded without special tokens."""
    processor = transformers.AutoProcessor.from_pretrained(folder)
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder).eval()
    out = []
    for i, data in enumerate(images):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        x = processor(images=[image], text=None if prompt is None else [prompt], return_tensors="pt")
        x.pop("token_type_ids", None)
        length = x["input_ids"].shape[1] if "input_ids" in x else 0
        per_image = []
        for seed in (seeds[i] if seeds else [None]):
            if seed is not None:
                torch.manual_seed(seed)
            ids = model.generate(**x, **params.transformers_kwargs())[0]
            # decoder-only models echo the prompt; BLIP echoes it less its last token ([SEP])
            echoed = max(length - 1, 0) if model.config.model_type == "blip" else length
            per_image.append(clean_caption(processor.decode(ids[echoed:], skip_special_tokens=True)))
        out.append(per_image)
    return out


@pytest.mark.parametrize("family", ["qwen2_vl", "blip", "llava"])
def test_sampled_captions_equal_generate_on_each_image_alone_whatever_the_batch(tiny, family):
    spec = resolve("caption", tiny[family], None, task=CAPTION)
    assert spec.kind == TRANSFORMERS and spec.config["model_type"] == family
    model = VlmModel(spec, "cpu")
    inputs = VlmInputs(spec, model.input_config())
    data = images_of_two_shapes()
    images = [inputs.image(d) for d in data]
    seeds = [[sample_seed(f"{i:032x}", 7, k) for k in range(2)] for i in range(len(images))]
    batch = inputs.batch(images, copies=2)
    if family == "qwen2_vl":  # the wide image's prompt is shorter: left padding is exercised
        lengths = batch["attention_mask"].sum(1)
        assert lengths.min() < lengths.max() and (batch["attention_mask"][:, -1] == 1).all()
    whole = model.generate(batch, TOP_P, seeds)
    split = (model.generate(inputs.batch(images[:1], 2), TOP_P, seeds[:1])
             + model.generate(inputs.batch(images[1:], 2), TOP_P, seeds[1:]))
    assert whole == split
    texts = model.texts(whole)
    assert texts == direct_captions(tiny[family], data, inputs.text, TOP_P, seeds)
    assert any(a != b for a, b in texts) and all(t for per in texts for t in per)  # two seeds, two captions


@pytest.mark.parametrize("family, params", [
    ("qwen2_vl", GenerationParams("greedy", seq_len=6, min_seq_len=0)),
    ("qwen2_vl", GenerationParams("beam_search", seq_len=5, min_seq_len=0, num_beams=2, num_beam_groups=1)),
    ("blip", GenerationParams("beam_search", seq_len=6, min_seq_len=2, num_beams=3, num_beam_groups=1)),
    ("llava", TOP_K),
])
def test_greedy_beam_search_and_top_k_equal_generate(tiny, family, params):
    spec = resolve("caption", tiny[family], None, task=CAPTION)
    model = VlmModel(spec, "cpu")
    inputs = VlmInputs(spec, model.input_config())
    data = images_of_two_shapes()
    seeds = [[sample_seed(f"{i:032x}", 3, 0)] for i in range(len(data))] if params.sampled else None
    ours = model.texts(model.generate(inputs.batch([inputs.image(d) for d in data]), params, seeds))
    assert ours == direct_captions(tiny[family], data, inputs.text, params, seeds)


def test_prompts_follow_the_family_and_the_chat_template(tiny):
    assert default_caption_prompt("blip") is None and default_caption_prompt("blip-2") is None
    assert default_caption_prompt("paligemma") == "caption en"
    assert default_caption_prompt("qwen2_vl") == default_caption_prompt("llava") == CHAT_PROMPT
    qwen = VlmInputs(resolve("caption", tiny["qwen2_vl"], None, task=CAPTION), {"model_type": "qwen2_vl"})
    assert qwen.text.startswith("<|im_start|>system") and qwen.text.endswith(
        f"<|vision_start|><|image_pad|><|vision_end|>{CHAT_PROMPT}<|im_end|>\n<|im_start|>assistant\n")
    blip_spec = resolve("caption", tiny["blip"], None, task=CAPTION)
    assert VlmInputs(blip_spec, {"model_type": "blip"}).text is None  # unprompted captioning
    assert VlmInputs(blip_spec, {"model_type": "blip"}, "a picture of").text == "a picture of"  # no chat template
    llava = VlmInputs(resolve("caption", tiny["llava"], None, task=CAPTION), {"model_type": "llava"}, "Describe it.")
    assert llava.text == "USER: <image>\nDescribe it. ASSISTANT:"
    processor = transformers.AutoProcessor.from_pretrained(tiny["llava"])  # a template kept by the tokenizer only
    processor.tokenizer.chat_template, processor.chat_template = processor.chat_template, None
    assert prompt_text(processor, "Describe it.") == llava.text


def test_a_prompted_blip_caption_is_only_what_follows_the_prompt(tiny):
    spec = resolve("caption", tiny["blip"], None, task=CAPTION)
    model = VlmModel(spec, "cpu")
    inputs = VlmInputs(spec, model.input_config(), "a picture of")
    data = sample_images(2)
    params = GenerationParams("greedy", seq_len=5, min_seq_len=5)
    batch = inputs.batch([inputs.image(d) for d in data])
    ids = model.generate(batch, params)
    assert [len(per[0]) for per in ids] == [5, 5]  # five new tokens each: the prompt's are cut off
    assert model.texts(ids) == direct_captions(tiny["blip"], data, "a picture of", params)


def test_the_echo_is_cut_by_tokens_and_scaffolding_by_text():
    prompt = torch.tensor([[0, 0, 5, 6], [0, 7, 8, 9]])  # left-padded
    decoder_only = torch.cat([prompt, torch.tensor([[11, 12], [13, 2]])], dim=1)
    assert new_tokens(decoder_only, prompt).tolist() == [[11, 12], [13, 2]]
    blip = torch.tensor([[30, 5, 6, 11, 12]])  # start token, prompt less its [SEP], new tokens
    assert new_tokens(blip, torch.tensor([[101, 5, 6, 102]])).tolist() == [[11, 12]]
    encoder_decoder = torch.tensor([[1, 11, 12]])
    assert new_tokens(encoder_decoder, torch.tensor([[101, 5, 6, 102]])).tolist() == [[1, 11, 12]]
    assert new_tokens(encoder_decoder, None) is encoder_decoder
    assert clean_caption("  Assistant: A dog\n on the  grass. ") == "A dog on the grass."
    assert clean_caption("ASSISTANT:") == "" and clean_caption("Assistant professor at work") == \
        "Assistant professor at work"


def test_checkpoints_that_are_not_captioners_fail_in_one_line(tiny, tmp_path):
    from curate.models.hf_clip import write_tiny_hf_clip

    clip = write_tiny_hf_clip(str(tmp_path / "clip"), seed=0)
    with pytest.raises(UsageError, match="--caption_model: .* is a transformers clip model config, not an "
                                         "image-to-text model") as e:
        resolve("caption", clip, None, task=CAPTION)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="is a transformers qwen2_vl model config, not a CLIPModel"):
        resolve("clip", tiny["qwen2_vl"], None)  # and a captioner is no CLIP scorer
    broken = tmp_path / "no-processor"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llava"}))
    (broken / "model.safetensors").write_bytes(b"")
    (broken / "tokenizer.json").write_text("{}")
    with pytest.raises(UsageError, match="has no image processor file"):
        resolve("caption", str(broken), None, task=CAPTION)
