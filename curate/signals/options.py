from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class SignalOptions(PipelineOptions):
    """Image signals beyond CLIP similarity: NSFW, aesthetics, watermarks (text in images: --text_detector)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--nsfw_model", default=None,
                            help="nsfw_score (0-1, 1 = NSFW): laion-l14 (LAION's CLIP-based detector on OpenAI "
                                 "ViT-L/14 embeddings; Re-LAION-5B removed > 0.45), laion-b32, laion-h14, or a "
                                 "transformers image-classification checkpoint (hub id such as "
                                 "Falconsai/nsfw_image_detection, or a folder) with --nsfw_label; off without it")
        parser.add_argument("--nsfw_label", default="nsfw",
                            help="the class of a transformers --nsfw_model whose probability is nsfw_score")
        parser.add_argument("--nsfw_weights", default=None,
                            help="the laion-* detector's PyTorch weight file as published (.pth, or its .zip); "
                                 "default: the published file, fetched once (laion-b32 has none: pass it)")
        parser.add_argument("--aesthetic_model", default=None,
                            help="aesthetic_score (LAION's 1-10 rating; Stable Diffusion trained on > 5): "
                                 "laion-v2 (improved aesthetic predictor, ViT-L/14), laion-v1-l14, laion-v1-b32")
        parser.add_argument("--aesthetic_weights", default=None,
                            help="the aesthetic predictor's .pth as published (default: fetched once)")
        parser.add_argument("--watermark_model", default=None,
                            help="watermark_score (probability; LAION counted > 0.8, Stable Diffusion kept < 0.5): "
                                 "laion (LAION-5B-WatermarkDetection, timm efficientnet_b3a) or a transformers "
                                 "image-classification checkpoint with --watermark_label")
        parser.add_argument("--watermark_label", default="watermark",
                            help="the class of a transformers --watermark_model whose probability is "
                                 "watermark_score")
        parser.add_argument("--watermark_weights", default=None,
                            help="LAION's watermark_model_v1.pt as published (default: fetched once)")
        parser.add_argument("--signal_clip_model", default=None,
                            help="the CLIP model whose normalized image embedding the laion-* heads read "
                                 "(default: the one they were trained on: ViT-L-14 / openai for laion-l14, "
                                 "laion-v2, laion-v1-l14); a run scoring with the same model reuses its "
                                 "embedding instead of computing it again")
        parser.add_argument("--signal_clip_pretrained", default=None,
                            help="weights of --signal_clip_model (as --clip_pretrained)")
