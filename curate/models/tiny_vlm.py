"""Tiny random-init transformers vision-language checkpoints: how a user tries VLM captions offline.

`python -m curate.models.tiny_vlm FOLDER [--family qwen2_vl|llava|blip]` writes one (config,
weights, image processor, tokenizer, chat template: what a hub checkpoint's folder holds) and
prints the flag that loads it. Nothing is downloaded: the tokenizer is a word-level `tokenizers`
model over a small English word list with the family's special and image tokens, wrapped in the
family's fast tokenizer class. The tests and the benchmarks' CPU runs use the same folders, so they
exercise the loading path a real checkpoint takes (AutoProcessor, AutoModelForImageTextToText).
The weights are random: captions are strings of words, not descriptions.
"""
from __future__ import annotations

import argparse
import os

FAMILIES = ("qwen2_vl", "llava", "blip")

# words the random models emit (and the prompts and chat templates use); anything else is the unknown token
WORDS = """a an the and of in on at with to is are this that it its one two three some many
image photo picture caption describe write descriptive single sentence for be as you helpful assistant
user system dog dogs cat cats man woman men women person people child children boy girl bird horse cow sheep
car bus train truck bike bicycle motorcycle boat plane street road city building house room kitchen table
chair sofa bed window door wall floor tree trees grass field park beach sea water sky cloud snow mountain
food pizza cake plate bowl cup banana apple orange sandwich red blue green yellow white black brown small
large big old young standing sitting walking riding holding eating playing looking lying next near front
behind top under over group couple view close up inside outside wooden open there . , : ? !""".split()


def _word_tokenizer(specials: list[str], lowercase: bool = True, size: int = 0):
    """A `tokenizers` word-level model: the special tokens first (ids 0..), then WORDS, then filler
    words `w<i>` up to `size` entries (a real checkpoint's vocabulary size, for speed figures)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    words = list(dict.fromkeys(specials + WORDS))
    words += [f"w{i}" for i in range(max(0, size - len(words)))]
    vocab = {token: i for i, token in enumerate(words)}
    unk = specials[0]
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, clean_text=True,
                                                      handle_chinese_chars=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # words joined by spaces
    tokenizer.add_special_tokens(specials)
    return tokenizer


# Qwen2-VL's chat layout (system turn, <|vision_start|><|image_pad|><|vision_end|> for an image)
QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# LLaVA-1.5's (llava-hf) layout: "USER: <image>\nPROMPT ASSISTANT:"
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


# Sizes: "tiny" for tests and offline tours (milliseconds per token on a CPU core); "full" has the
# dimensions of the released checkpoint it is named after (Qwen2-VL-2B-Instruct, llava-1.5-7b-hf,
# blip-image-captioning-base), random weights: what a GPU speed figure needs without a download.
SIZES = ("tiny", "full")
QWEN2_VL_2B = {
    "text": {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
             "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 32768,
             "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "tie_word_embeddings": True},
    "vision": {"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16, "mlp_ratio": 4,
               "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    "pixels": (56 * 56, 28 * 28 * 1280),  # the released processor's min_pixels, max_pixels
}
LLAVA_7B = {
    "text": {"vocab_size": 32064, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096},
    "vision": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
               "image_size": 336, "patch_size": 14, "projection_dim": 768},
}
BLIP_BASE = {
    "text": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768, "intermediate_size": 3072,
             "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 512},
    "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
               "image_size": 384, "patch_size": 16},
}


def _build(model_class, config, full: bool):
    """The random-init model; a full-size one in bf16 (half the memory and disk; CUDA runs bf16)."""
    import torch

    if not full:
        return model_class(config)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        return model_class(config)
    finally:
        torch.set_default_dtype(default)


def _save(model, processor, folder: str) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _text(vocab_size: int, **extra) -> dict:
    return {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512, **extra}


def _qwen2_vl(folder: str, size: str) -> None:
    import transformers as tf

    full = size == "full"
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    backend = _word_tokenizer(specials, size=QWEN2_VL_2B["text"]["vocab_size"] if full else 0)
    tokenizer = tf.Qwen2TokenizerFast(tokenizer_object=backend, unk_token="<|endoftext|>", bos_token=None,
                                      eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: backend.token_to_id(t) for t in specials}
    text = QWEN2_VL_2B["text"] if full else _text(backend.get_vocab_size(),
                                                 rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
    vision = QWEN2_VL_2B["vision"] if full else {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2,
                                                 "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2,
                                                 "temporal_patch_size": 2}
    config = tf.Qwen2VLConfig(
        text_config={**text, "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    model = _build(tf.Qwen2VLForConditionalGeneration, config, full)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    # tiny: a small pixel budget, 56x56 to 112x112 pixels, so images of other shapes get other token counts
    low, high = QWEN2_VL_2B["pixels"] if full else (56 * 56, 112 * 112)
    image_processor = tf.Qwen2VLImageProcessor(min_pixels=low, max_pixels=high)
    processor = tf.Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=tf.Qwen2VLVideoProcessor(), chat_template=QWEN2_VL_TEMPLATE)
    _save(model, processor, folder)


def _llava(folder: str, size: str) -> None:
    import transformers as tf

    full = size == "full"
    specials = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
    backend = _word_tokenizer(specials, size=LLAVA_7B["text"]["vocab_size"] if full else 0)
    tokenizer = tf.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                           eos_token="</s>", pad_token="<pad>",
                                           model_input_names=["input_ids", "attention_mask"])
    ids = {t: backend.token_to_id(t) for t in specials}
    vision = LLAVA_7B["vision"] if full else {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                              "num_attention_heads": 2, "image_size": 32, "patch_size": 16,
                                              "projection_dim": 32}
    text = LLAVA_7B["text"] if full else _text(backend.get_vocab_size())
    config = tf.LlavaConfig(
        vision_config={"model_type": "clip_vision_model", **vision},
        text_config={"model_type": "llama", **text, "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"],
                     "pad_token_id": ids["<pad>"]},
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2,
        pad_token_id=ids["<pad>"])
    model = _build(tf.LlavaForConditionalGeneration, config, full)
    side, patch = vision["image_size"], vision["patch_size"]
    image_processor = tf.CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = tf.LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                                  vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE,
                                  num_additional_image_tokens=1)
    _save(model, processor, folder)


def _blip(folder: str, size: str) -> None:
    import transformers as tf
    from tokenizers import processors

    full = size == "full"
    specials = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    backend = _word_tokenizer(specials, size=BLIP_BASE["text"]["vocab_size"] if full else 0)
    ids = {t: backend.token_to_id(t) for t in specials}
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tokenizer = tf.BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                     cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", bos_token="[DEC]")
    text = BLIP_BASE["text"] if full else {"vocab_size": backend.get_vocab_size(), "hidden_size": 32,
                                           "encoder_hidden_size": 32, "intermediate_size": 64,
                                           "num_hidden_layers": 1, "num_attention_heads": 2,
                                           "max_position_embeddings": 64}
    vision = BLIP_BASE["vision"] if full else {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                               "num_attention_heads": 2, "image_size": 32, "patch_size": 16}
    config = tf.BlipConfig(
        text_config={**text, "bos_token_id": ids["[DEC]"], "eos_token_id": ids["[SEP]"],
                     "sep_token_id": ids["[SEP]"], "pad_token_id": ids["[PAD]"]},
        vision_config=vision, projection_dim=text["hidden_size"], image_text_hidden_size=text["hidden_size"])
    model = _build(tf.BlipForConditionalGeneration, config, full)
    side = vision["image_size"]
    image_processor = tf.BlipImageProcessor(size={"height": side, "width": side})
    processor = tf.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    _save(model, processor, folder)


def write_tiny_vlm(folder: str, family: str = "qwen2_vl", seed: int = 0, size: str = "tiny") -> str:
    """A seeded random-init checkpoint of `family` saved in `folder` (what --caption_model takes);
    `size` "full" gives the released checkpoint's dimensions (see SIZES)."""
    import torch

    writers = {"qwen2_vl": _qwen2_vl, "llava": _llava, "blip": _blip}
    if family not in writers or size not in SIZES:
        raise ValueError(f"unknown tiny VLM {family!r}/{size!r}; families {', '.join(FAMILIES)}, sizes {SIZES}")
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    writers[family](folder, size)
    return folder


def main(argv: list[str] | None = None) -> int:
    """`python -m curate.models.tiny_vlm FOLDER [--family F]`: write a tiny random-init transformers
    captioner there (once) and print the flag that captions with it, for an offline run."""
    parser = argparse.ArgumentParser(prog="python -m curate.models.tiny_vlm", description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("--family", choices=FAMILIES, default="qwen2_vl",
                        help="qwen2_vl (a chat model, the default), llava (a chat model) or blip (image-to-text)")
    parser.add_argument("--size", choices=SIZES, default="tiny",
                        help="tiny, or full: the released checkpoint's dimensions (Qwen2-VL-2B, LLaVA-1.5-7B, "
                             "BLIP base), random weights, for GPU speed figures")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.folder, "config.json")):
        write_tiny_vlm(args.folder, args.family, size=args.size)
    print(f"--caption_model {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
