from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import bool_flag


class CaptionOptions(PipelineOptions):
    """Synthetic captions with an open_clip CoCa (syn_caption, syn_captions; <uid>.syn.txt in shards)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--caption_model", default=None,
                            help="open_clip CoCa that captions every kept image, e.g. coca_ViT-L-14; also "
                                 "hf-hub:org/repo, local-dir:/path or a model config .json; captions are off "
                                 "without it (the recap recipe defaults to coca_ViT-L-14)")
        parser.add_argument("--caption_pretrained", default=None,
                            help="weights for --caption_model: a pretrained tag (mscoco_finetuned_laion2B-s13B-b90k), "
                                 "hf-hub:org/repo, or a checkpoint file (local, gs://, s3://)")
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
        parser.add_argument("--caption_generation", default="beam_search",
                            help="beam_search (deterministic, open_clip's default) | top_p | top_k (sampling)")
        parser.add_argument("--caption_max_length", type=int, default=30,
                            help="most tokens per caption, start token included (open_clip's seq_len)")
        parser.add_argument("--caption_min_length", type=int, default=5,
                            help="fewest tokens before the end token may come (open_clip's min_seq_len)")
        parser.add_argument("--caption_top_p", type=float, default=0.9,
                            help="top_p: sample from the smallest token set holding this probability mass")
        parser.add_argument("--caption_top_k", type=int, default=50, help="top_k: sample from the k likeliest tokens")
        parser.add_argument("--caption_temperature", type=float, default=1.0,
                            help="sampling temperature (top_p, top_k): > 1 flatter, < 1 greedier")
        parser.add_argument("--caption_num_beams", type=int, default=6, help="beam_search: beams per image")
        parser.add_argument("--caption_num_beam_groups", type=int, default=3,
                            help="beam_search: diverse beam groups (divides --caption_num_beams)")
        parser.add_argument("--caption_repetition_penalty", type=float, default=1.0,
                            help="> 1 discourages repeated tokens (1 = off)")
        parser.add_argument("--caption_batch_size", type=int, default=64, help="images per generate call")
        parser.add_argument("--caption_precision", default="auto",
                            help="auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16 | fp16")
        bool_flag(parser, "--syn_clip_score", False,
                  "also score each synthetic caption with --clip_model (syn_clip_score beside clip_score)")
