"""The Dedup stage: Signatures -> global decisions on small values -> Apply, as one transform.

Images are read once (Signatures) and judged once (Apply); between the two only keys travel:
exact and pHash duplicates are found by grouping keys (near_graph.py), SemDeDup runs per cluster
on the survivors (semantic_stage.py), and their drop records reach Apply as a multimap side
input keyed by batch id, so a worker fetches only its own batch's decisions.
"""
from __future__ import annotations

import apache_beam as beam

from curate.dedup.decisions import first_drops
from curate.dedup.eval_stage import ReadEvalSet, eval_facts
from curate.dedup.near_graph import FindNearDuplicates
from curate.dedup.options import DedupConfig
from curate.dedup.semantic_stage import SemanticDedup
from curate.dedup.signatures import DISTANCE, EMBEDDINGS, EVAL_MATCHES, FIELDS, KEEPER, KEYS, Signatures
from curate.errors import UsageError
from curate.io.source import Source
from curate.sample import SampleBatch
from curate.io.spill import fetch_batch
from curate.stage import DROPPED, SampleStage, StageOutput, Unparked, park_batch_as, split_batch

FACTS = "facts"


class ApplyDecisions(SampleStage):
    """Drops the samples the global steps decided against, naming keeper and distance.

    Input: a parked batch joined with its drop records by batch id (CoGroupByKey), so a worker
    fetches one batch and only that batch's decisions.
    """

    name = "dedup"
    fields = FIELDS

    def process(self, joined):
        _, parts = joined
        for ref in parts["batch"]:
            batch = fetch_batch(ref)
            reasons: list[str | None] = [None] * len(batch.samples)
            for pos, keeper, distance in first_drops(parts["drops"], reasons):
                batch.samples[pos].values[KEEPER] = keeper
                batch.samples[pos].values[DISTANCE] = distance
            yield from split_batch(batch, reasons, self.counters)


def merge_facts(named) -> dict:
    return dict(sorted(named))


class Dedup(beam.PTransform):
    """Batches -> StageOutput: deduplicated batches, dropped rows, facts for stats.json."""

    def __init__(self, cfg: DedupConfig, output: str, eval_source: Source | None = None, batch_size: int = 1000,
                 eval_fetch: beam.PTransform | None = None, eval_embed: beam.PTransform | None = None):
        super().__init__()
        self.cfg = cfg
        self.output = output  # batches wait for decisions under <output>/_spill/
        self.eval_source = eval_source
        self.batch_size = batch_size
        self.eval_fetch = eval_fetch  # the download stage, when the eval set is a URL list
        self.eval_embed = eval_embed  # the scoring model, for --eval_cosine
        self.fields = dict(FIELDS)

    def expand(self, batches):
        cfg = self.cfg
        eval_side = []
        if self.eval_source is not None:
            eval_set = batches.pipeline | "EvalSet" >> ReadEvalSet(
                self.eval_source, self.batch_size, self.eval_fetch, self.eval_embed, cfg.embeddings)
            eval_side = [beam.pvalue.AsSingleton(eval_set)]
        signatures = Signatures(cfg)
        if eval_side:  # the batches wait for the eval set: on storage, not in the runner
            batches = batches | "ParkForEval" >> beam.Map(park_batch_as, self.output, "dedup_eval")
            signatures = Unparked(signatures)
        signed = batches | "Signatures" >> beam.ParDo(signatures, *eval_side).with_output_types(
            SampleBatch).with_outputs(DROPPED, KEYS, EMBEDDINGS, EVAL_MATCHES, main="kept")
        dropped, facts, decisions = [signed[DROPPED]], [], []
        if cfg.grouping:
            near_drops, near_facts = signed[KEYS] | "Near" >> FindNearDuplicates(cfg)
            decisions.append(near_drops)
            facts.append(near_facts)
        if cfg.semantic:
            earlier = decisions[0] if decisions else None
            semantic_drops, semantic_facts = signed[EMBEDDINGS] | "SemDeDup" >> SemanticDedup(cfg, self.output, earlier)
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
            applied = ({"batch": parked, "drops": all_drops} | "JoinDecisions" >> beam.CoGroupByKey()
                       | "Apply" >> beam.ParDo(ApplyDecisions()).with_output_types(
                           SampleBatch).with_outputs(DROPPED, main="kept"))
            kept = applied.kept
            dropped.append(applied[DROPPED])
        merged = None
        if facts:
            merged = (tuple(facts) | "AllFacts" >> beam.Flatten()
                      | "MergeFacts" >> beam.combiners.ToList() | "FactsDict" >> beam.Map(merge_facts))
        return StageOutput(kept, dropped, merged)


def dedup_from_options(options, output: str = "") -> Dedup | None:
    """The Dedup stage the flags ask for (None with --dedup none and no eval set); checks them."""
    from curate.dedup.eval_set import open_eval_source
    from curate.dedup.options import dedup_config
    from curate.options import CurateOptions

    run = options.view_as(CurateOptions)
    cfg = dedup_config(options, run.seed)
    if not cfg.active:
        return None
    scoring = _scoring(options) if cfg.needs_embeddings else None
    if cfg.needs_embeddings and scoring is None:
        flag = "--dedup semantic" if cfg.semantic else "--eval_cosine"
        raise UsageError(f"{flag}: needs image embeddings; give --clip_model (or --dfn_model) "
                         "and its --*_pretrained weights so the scoring stage computes them")
    eval_source = open_eval_source(cfg.eval_images) if cfg.eval_images else None
    fetch = embed = None
    if eval_source is not None and eval_source.needs_download:
        from curate.download.options import config_from_options
        from curate.download.stage import Download

        fetch = Download(config_from_options(options), None)
    if cfg.eval_cosine is not None:
        embed = _embedder(scoring, cfg.embeddings)
    return Dedup(cfg, output, eval_source, run.batch_size, fetch, embed)


def _embedder(scoring, vector_names: tuple[str, ...]):
    """The scoring stage's model whose embedding dedup reads (the first of vector_names it makes)."""
    from curate.score.embeddings import vector_name
    from curate.score.stages import ScoreWith

    for name in vector_names:
        for role, spec in scoring.models.items():
            if vector_name(role) == name:
                return ScoreWith(spec, scoring.run)
    raise UsageError(f"--semdedup_embedding: no scoring model makes {', '.join(vector_names)}")


def _scoring(options):
    from curate.score.settings import score_settings  # the scoring stage computes the embeddings

    return score_settings(options)


def apply_dedup(flow, batches, label: str = "Dedup"):
    """Recipes' one line: dedup the batches as the flags say (unchanged with --dedup none)."""
    stage = dedup_from_options(flow.options, flow.output)
    return batches if stage is None else flow.apply(label, stage, batches)
