"""Stages several recipes list with the same wiring (which other stage fetches or embeds for them)."""
from __future__ import annotations

from curate.balance.stage import SemanticBalance
from curate.caption.stage import Caption
from curate.dedup.stage import Dedup
from curate.download.stage import Download
from curate.score.stages import Score
from curate.signals.stage import Signals

# an eval set given as a URL list is fetched by Download; --eval_cosine / SemDeDup use Score's embeddings
DEDUP = Dedup.using(fetch=Download, embed=Score)
BALANCE = SemanticBalance.using(embed=Score)  # clusters the embeddings of the run's scoring model
CAPTION = Caption.using(score=Score)  # --syn_clip_score scores the synthetic caption with --clip_model
SIGNALS = Signals.using(score=Score)  # the heads reuse the scoring stage's embedding of their CLIP model
