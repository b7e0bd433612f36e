"""The Dedup stage: Signatures -> global decisions on small values -> Apply, as one transform.

Images are read once (Signatures) and judged once (Apply); between the two only keys travel:
exact and pHash duplicates are found by grouping keys (near_graph.py), SemDeDup runs per cluster
on the survivors (semantic_stage.py), and their drop records reach Apply joined with the batch
they name by batch id, so a worker fetches only its own batch's decisions.

What dedup borrows from other stages is declared (`needs`): a FETCHER downloads an eval set given
as URLs, the scoring stage's EMBEDDINGS are what SemDeDup and --eval_cosine compare.
"""
from __future__ import annotations

import apache_beam as beam

from curate.dedup.decisions import first_decisions
from curate.dedup.eval_stage import ReadEvalSet, eval_facts
from curate.dedup.near_graph import FindNearDuplicates
from curate.dedup.options import DedupSettings, DedupOptions, dedup_settings
from curate.dedup.reasons import NAME
from curate.dedup.semantic_stage import SemanticDedup
from curate.dedup.signatures import DISTANCE, EMBEDDING_ROWS, EVAL_MATCHES, FIELDS, KEEPER, KEYS, Signatures
from curate.errors import UsageError
from curate.io.source import Source
from curate.io.spill import fetch_batch
from curate.stage import DROPPED, EMBEDDINGS, FETCHER, Judge, Stage, StageOutput, apply_judge, park_batch_as

__all__ = ["ApplyDecisions", "Dedup", "FindNearDuplicates", "merge_facts"]


class ApplyDecisions(Judge):
    """Drops the samples the global steps decided against, naming keeper and distance.

    Input: a parked batch joined with its drop records by batch id (CoGroupByKey), so a worker
    fetches one batch and only that batch's decisions.
    """

    name = NAME
    counts_inputs = False  # Signatures counted these samples as dedup_in

    def batches(self, joined):
        _, parts = joined
        decided = first_decisions(parts["drops"])
        for ref in parts["batch"]:
            yield fetch_batch(ref), (decided,)  # records name rows by position

    def judge_batch(self, batch, decided) -> list[str | None]:
        details: list = [None] * len(batch)
        for i in range(len(batch)) if batch.origin is not None else decided:
            pos = batch.position(i)
            if pos in decided:
                detail, keeper, distance = decided[pos]
                details[i] = detail
                batch[i].values.update({KEEPER: keeper, DISTANCE: distance})
        return details


def merge_facts(named) -> dict:
    return dict(sorted(named))


class Dedup(Stage):
    """Batches -> StageOutput: deduplicated batches, dropped rows, facts for stats.json."""

    step = "Dedup"
    name = NAME
    options = (DedupOptions,)
    fields = FIELDS
    model_steps = ("EvalSet/EmbedEval",)  # the scoring model on the eval images (--eval_cosine)
    needs = {FETCHER: False, EMBEDDINGS: False}  # only for an eval URL list / SemDeDup and --eval_cosine

    def __init__(self, cfg: DedupSettings, output: str, eval_source: Source | None = None, batch_size: int = 1000,
                 eval_fetch: beam.PTransform | None = None, eval_embed: beam.PTransform | None = None):
        super().__init__()
        self.cfg = cfg
        self.output = output  # batches wait for decisions under <output>/_spill/
        self.eval_source = eval_source
        self.batch_size = batch_size
        self.eval_fetch = eval_fetch  # the download stage, when the eval set is a URL list
        self.eval_embed = eval_embed  # the scoring model, for --eval_cosine

    @classmethod
    def from_run(cls, run) -> "Dedup | None":
        """The stage the flags ask for (None with --dedup none and no eval set), checked once."""
        from curate.dedup.eval_set import open_eval_source

        cfg = dedup_settings(run.options, run.seed)
        if not cfg.active:
            return None
        embeddings = run.provided(EMBEDDINGS)
        if cfg.needs_embeddings and embeddings is None:
            flag = "--dedup semantic" if cfg.semantic else "--eval_cosine"
            raise UsageError(f"{flag}: needs image embeddings; give --clip_model (or --dfn_model) "
                             "and its --*_pretrained weights so the scoring stage computes them")
        eval_source = open_eval_source(cfg.eval_images) if cfg.eval_images else None
        eval_fetch = eval_embed = None
        if eval_source is not None and eval_source.needs_download:
            eval_fetch = run.provided(FETCHER)
            if eval_fetch is None:
                raise UsageError("--eval_images: a URL list needs a download stage, and this recipe has none")
        if cfg.eval_cosine is not None:
            eval_embed = embeddings.embedder(cfg.embeddings)
            if eval_embed is None:
                raise UsageError(f"--semdedup_embedding: no scoring model makes {', '.join(cfg.embeddings)}")
        return cls(cfg, run.output, eval_source, run.batch_size, eval_fetch, eval_embed)

    def local_files(self) -> dict[str, str]:
        return {"--eval_images": self.cfg.eval_images} if self.cfg.eval_images else {}

    def expand(self, batches):
        cfg = self.cfg
        eval_side = []
        if self.eval_source is not None:
            eval_set = batches.pipeline | "EvalSet" >> ReadEvalSet(
                self.eval_source, self.batch_size, self.eval_fetch, self.eval_embed, cfg.embeddings)
            eval_side = [beam.pvalue.AsSingleton(eval_set)]
            # the batches wait for the eval set on storage, not in the runner (Signatures fetches them)
            batches = batches | "ParkForEval" >> beam.Map(park_batch_as, self.output, "dedup_eval")
        signed = apply_judge(batches, Signatures(cfg), *eval_side, tags=(KEYS, EMBEDDING_ROWS, EVAL_MATCHES),
                             label="Signatures")
        dropped, facts, decisions = [signed[DROPPED]], [], []
        if cfg.grouping:
            near_drops, near_facts = signed[KEYS] | "Near" >> FindNearDuplicates(cfg)
            decisions.append(near_drops)
            facts.append(near_facts)
        if cfg.semantic:
            earlier = decisions[0] if decisions else None
            semantic_drops, semantic_facts = signed[EMBEDDING_ROWS] | "SemDeDup" >> SemanticDedup(cfg, self.output, earlier)
            decisions.append(semantic_drops)
            facts.append(semantic_facts)
        if self.eval_source is not None:
            facts.append(signed[EVAL_MATCHES] | "EvalMatches" >> beam.combiners.ToList()
                         | "EvalFacts" >> beam.Map(eval_facts, eval_side[0], cfg.eval_radius,
                                                   self.eval_source.describe(), cfg.eval_cosine))
        kept = signed.kept
        if decisions:
            all_drops = tuple(decisions) | "AllDecisions" >> beam.Flatten()
            parked = kept | "Park" >> beam.Map(lambda b, out: (b.id, park_batch_as(b, out, "dedup")), self.output)
            joined = {"batch": parked, "drops": all_drops} | "JoinDecisions" >> beam.CoGroupByKey()
            applied = apply_judge(joined, ApplyDecisions(), label="Apply")
            kept = applied.kept
            dropped.append(applied[DROPPED])
        merged = None
        if facts:
            merged = (tuple(facts) | "AllFacts" >> beam.Flatten()
                      | "MergeFacts" >> beam.combiners.ToList() | "FactsDict" >> beam.Map(merge_facts))
        return StageOutput(kept, dropped, merged)
