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


def _word_tokenizer(specials: list[str], lowercase: bool = True):
    """A `tokenizers` word-level model: the special tokens first (ids 0..), then WORDS."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = {token: i for i, token in enumerate(dict.fromkeys(specials + WORDS))}
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


def _text(vocab_size: int, **extra) -> dict:
    return {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512, **extra}


def _qwen2_vl(folder: str) -> None:
    import transformers as tf

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    backend = _word_tokenizer(specials)
    tokenizer = tf.Qwen2TokenizerFast(tokenizer_object=backend, unk_token="<|endoftext|>", bos_token=None,
                                      eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: backend.token_to_id(t) for t in specials}
    config = tf.Qwen2VLConfig(
        text_config=_text(backend.get_vocab_size(), rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                          bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                          pad_token_id=ids["<|endoftext|>"]),
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    model = tf.Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    # a small pixel budget: 56x56 to 112x112 pixels, so images of other shapes get other token counts
    image_processor = tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    processor = tf.Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=tf.Qwen2VLVideoProcessor(), chat_template=QWEN2_VL_TEMPLATE)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _llava(folder: str) -> None:
    import transformers as tf

    specials = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
    backend = _word_tokenizer(specials)
    tokenizer = tf.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                           eos_token="</s>", pad_token="<pad>",
                                           model_input_names=["input_ids", "attention_mask"])
    ids = {t: backend.token_to_id(t) for t in specials}
    config = tf.LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 16,
                       "projection_dim": 32},
        text_config={"model_type": "llama", **_text(backend.get_vocab_size(), bos_token_id=ids["<s>"],
                                                   eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])},
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2,
        pad_token_id=ids["<pad>"])
    model = tf.LlavaForConditionalGeneration(config)
    image_processor = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = tf.LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=16,
                                  vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE,
                                  num_additional_image_tokens=1)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _blip(folder: str) -> None:
    import transformers as tf
    from tokenizers import processors

    specials = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    backend = _word_tokenizer(specials)
    ids = {t: backend.token_to_id(t) for t in specials}
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tokenizer = tf.BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                     cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", bos_token="[DEC]")
    config = tf.BlipConfig(
        text_config={"vocab_size": backend.get_vocab_size(), "hidden_size": 32, "encoder_hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 64, "bos_token_id": ids["[DEC]"], "eos_token_id": ids["[SEP]"],
                     "sep_token_id": ids["[SEP]"], "pad_token_id": ids["[PAD]"]},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 16},
        projection_dim=32, image_text_hidden_size=32)
    model = tf.BlipForConditionalGeneration(config)
    image_processor = tf.BlipImageProcessor(size={"height": 32, "width": 32})
    processor = tf.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def write_tiny_vlm(folder: str, family: str = "qwen2_vl", seed: int = 0) -> str:
    """A seeded random-init checkpoint of `family` saved in `folder` (what --caption_model takes)."""
    import torch

    writers = {"qwen2_vl": _qwen2_vl, "llava": _llava, "blip": _blip}
    if family not in writers:
        raise ValueError(f"unknown tiny VLM family {family!r}; one of {', '.join(FAMILIES)}")
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    writers[family](folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    """`python -m curate.models.tiny_vlm FOLDER [--family F]`: write a tiny random-init transformers
    captioner there (once) and print the flag that captions with it, for an offline run."""
    parser = argparse.ArgumentParser(prog="python -m curate.models.tiny_vlm", description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("--family", choices=FAMILIES, default="qwen2_vl",
                        help="qwen2_vl (a chat model, the default), llava (a chat model) or blip (image-to-text)")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.folder, "config.json")):
        write_tiny_vlm(args.folder, args.family)
    print(f"--caption_model {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
