from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import bool_flag


class CaptionOptions(PipelineOptions):
    """Synthetic captions with an open_clip CoCa or a transformers VLM (syn_caption, syn_captions; <uid>.syn.txt)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--caption_model", default=None,
                            help="the model that captions every kept image: an open_clip CoCa (coca_ViT-L-14; also "
                                 "hf-hub:org/repo, local-dir:/path or a model config .json) or a transformers "
                                 "vision-language checkpoint, a hub id (Qwen/Qwen2-VL-2B-Instruct, "
                                 "llava-hf/llava-1.5-7b-hf, Salesforce/blip-image-captioning-large) or a local "
                                 "folder; captions are off without it (the recap recipe defaults to coca_ViT-L-14)")
        parser.add_argument("--caption_pretrained", default=None,
                            help="weights for an open_clip --caption_model: a pretrained tag "
                                 "(mscoco_finetuned_laion2B-s13B-b90k), hf-hub:org/repo, or a checkpoint file (local, "
                                 "gs://, s3://); for a transformers hub id, a git revision")
        parser.add_argument("--caption_prompt", default=None,
                            help="transformers models: what the model is asked, inside its chat template (default "
                                 "per family: BLIP, BLIP-2, GIT none, they caption unprompted; PaliGemma 'caption en'; "
                                 "every chat model 'Write one descriptive caption for this image, in a single "
                                 "sentence.'); '' for no prompt")
        parser.add_argument("--caption_engine", default="transformers",
                            help="transformers models: transformers (transformers' generate, in the worker) | vllm "
                                 "(vLLM on a GPU worker: pip install 'curate[vllm]'; sampling seeded per caption, "
                                 "no beam search)")
        parser.add_argument("--captions_per_image", type=int, default=1,
                            help="synthetic captions per image, all in syn_captions (DataCompDR kept 5); "
                                 "more than one needs --caption_generation top_p or top_k")
        parser.add_argument("--caption_mix", type=float, default=0.0,
                            help="share of captioned samples whose <uid>.txt holds the synthetic caption instead "
                                 "of the alt-text (MetaCLIP v1.2: 0.15), chosen per sample from (uid, "
                                 "--caption_seed); the other text stays in <uid>.json")
        parser.add_argument("--caption_seed", type=int, default=None,
                            help="seed of the sampling and of the mix (default: --seed); a caption depends on "
                                 "(uid, seed) only, not on batches or workers")
        parser.add_argument("--caption_generation", default=None,
                            help="beam_search (deterministic; CoCa's default) | greedy (deterministic; transformers "
                                 "models only, their default) | top_p | top_k (sampling)")
        parser.add_argument("--caption_max_length", type=int, default=None,
                            help="most tokens per caption; CoCa: start token included (open_clip's seq_len, default "
                                 "30); transformers models: new tokens, prompt not counted (max_new_tokens, default 64)")
        parser.add_argument("--caption_min_length", type=int, default=None,
                            help="fewest tokens before the end token may come, counted as --caption_max_length "
                                 "(CoCa's min_seq_len, default 5; transformers' min_new_tokens, default 0)")
        parser.add_argument("--caption_top_p", type=float, default=0.9,
                            help="top_p: sample from the smallest token set holding this probability mass")
        parser.add_argument("--caption_top_k", type=int, default=50, help="top_k: sample from the k likeliest tokens")
        parser.add_argument("--caption_temperature", type=float, default=1.0,
                            help="sampling temperature (top_p, top_k): > 1 flatter, < 1 greedier")
        parser.add_argument("--caption_num_beams", type=int, default=6, help="beam_search: beams per image")
        parser.add_argument("--caption_num_beam_groups", type=int, default=None,
                            help="beam_search: CoCa's diverse beam groups (divides --caption_num_beams; default 3); "
                                 "transformers models take 1")
        parser.add_argument("--caption_repetition_penalty", type=float, default=1.0,
                            help="> 1 discourages repeated tokens (1 = off)")
        parser.add_argument("--caption_batch_size", type=int, default=64, help="images per generate call")
        parser.add_argument("--caption_precision", default="auto",
                            help="auto (CUDA: bf16, CoCa by autocast, transformers models as bf16 weights; CPU: "
                                 "fp32) | fp32 | bf16 | fp16")
        bool_flag(parser, "--syn_clip_score", False,
                  "also score each synthetic caption with --clip_model (syn_clip_score beside clip_score)")
