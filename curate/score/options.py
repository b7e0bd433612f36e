from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import bool_flag, optional_float
from curate.score.names import ROLES  # noqa: F401  (re-exported: settings.py reads it here)


class ScoreOptions(PipelineOptions):
    """Scoring with open_clip models (clip_score, dfn_score) and score thresholds."""

    @classmethod
    def _add_argparse_args(cls, parser):
        for role, what, example in (
                ("clip", "CLIP score (image-text alignment), e.g. ViT-L-14-quickgelu + openai", "openai"),
                ("dfn", "data-filtering-network score, e.g. ViT-L-14-quickgelu + dfn2b "
                        "(Apple's DFN CLIP) or your own filtering network's checkpoint", "dfn2b")):
            parser.add_argument(f"--{role}_model", default=None,
                                help=f"open_clip model for the {what}; also hf-hub:org/repo, "
                                     f"local-dir:/path or a model config .json; scoring is off without it")
            parser.add_argument(f"--{role}_pretrained", default=None,
                                help=f"weights for --{role}_model: a pretrained tag ({example}), "
                                     f"hf-hub:org/repo, or a checkpoint file (local, gs://, s3://)")
            parser.add_argument(f"--{role}_min", type=optional_float, default=None,
                                help=f"keep samples with {role}_score >= this (absolute threshold; 'none' = off)")
            parser.add_argument(f"--{role}_keep_fraction", type=optional_float, default=None,
                                help=f"keep the top fraction of the scored pool by {role}_score (0-1], "
                                     f"the cut computed exactly over the whole pool ('none' = off)")
        parser.add_argument("--prefilter_model", default=None,
                            help="cascade: a cheap model (an open_clip name, a transformers CLIPModel hub id such "
                                 "as wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M, or a local folder) scores every "
                                 "sample first; only samples passing its cut reach the expensive models")
        parser.add_argument("--prefilter_pretrained", default=None,
                            help="weights for an open_clip --prefilter_model (as --clip_pretrained); a git "
                                 "revision for a transformers hub id")
        parser.add_argument("--prefilter_keep_fraction", type=optional_float, default=None,
                            help="cascade: keep the top fraction of the pool by prefilter_score for the expensive "
                                 "models (exact pool cut; >= their own keep fractions)")
        parser.add_argument("--prefilter_min", type=optional_float, default=None,
                            help="cascade: keep samples with prefilter_score >= this for the expensive models")
        parser.add_argument("--prefilter_audit_fraction", type=float, default=0.01,
                            help="cascade audit: this share of the pool (a keyed hash of the uid) is scored by "
                                 "the expensive models too, dropped or not: stats.json reports the recall the "
                                 "prefilter kept and the Spearman correlation of the scores (0 = no audit)")
        parser.add_argument("--device", default="auto",
                            help="torch device of the scoring models: auto (cuda when the worker has one), "
                                 "cpu, cuda, cuda:1; --accelerator puts GPUs on the scoring steps' workers")
        parser.add_argument("--score_precision", default="auto",
                            help="auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16 | fp16")
        parser.add_argument("--score_batch_size", type=int, default=256, help="images per model forward pass")
        parser.add_argument("--score_decode", default="cpu",
                            help="cpu: PIL decode+resize on CPU threads (bit-identical to open_clip's "
                                 "preprocessing) | gpu: JPEG decode+resize on the model's device "
                                 "(torchvision nvJPEG; scores differ ~1e-3)")
        parser.add_argument("--score_decode_threads", type=int, default=0,
                            help="CPU decode threads per worker process (0: one per core)")
        parser.add_argument("--torch_threads", type=int, default=0,
                            help="torch intra-op threads per worker process on CPU (0: torch's default, all "
                                 "cores); use 1 where every core runs its own SDK process (Dataflow)")
        parser.add_argument("--model_copies", type=int, default=1,
                            help="on CUDA the model is shared by the worker's SDK processes: copies per "
                                 "machine; 0 = no sharing, one model per process (saves the inter-process "
                                 "copy of each batch where GPU memory allows)")
        parser.add_argument("--text_detector", default=None,
                            help="text detector for text_area (share of the image inside text boxes) and T-MARS: "
                                 "default (PaddleOCR's PP-OCRv4 detector shipped in rapidocr-onnxruntime, offline; "
                                 "the signals extra) | none")
        bool_flag(parser, "--tmars", False,
                  "T-MARS: also score each image with its detected text masked (masked_<role>_score, and "
                  "text_area), a second pass of the scoring model on the masked images")
        parser.add_argument("--score_field", default="score",
                            help="what the score cuts (--*_keep_fraction, --*_min) read: score (<role>_score) | "
                                 "masked (T-MARS: masked_<role>_score; needs --tmars)")
        bool_flag(parser, "--save_embeddings", False,
                  "write fp16 image embeddings of every scored sample to embeddings/<clip|dfn>/ (Parquet, by uid)")
        parser.add_argument("--image_filter_targets", default=None,
                            help="DataComp image-based filter: .npy of target image embeddings (e.g. ImageNet "
                                 "train, same model as --clip_model); keeps samples whose k-means cluster is "
                                 "nearest to some target (intersected with the score cuts)")
        parser.add_argument("--image_filter_clusters", type=int, default=100_000,
                            help="k-means clusters of the image-based filter (DataComp: 100k)")
        parser.add_argument("--image_filter_train_size", type=int, default=1_000_000,
                            help="pool embeddings (a uid-hash sample) the k-means is trained on")
