"""The scoring cascade: a cheap model scores the pool, only its survivors meet the expensive ones.

prefilter_score on every sample -> the prefilter cut (`--prefilter_keep_fraction` with the same
exact pool-fraction machinery as every score cut, and/or `--prefilter_min`) -> the expensive
models score the survivors -> their own cuts, whose keep fractions stay fractions of the pool
that reached the prefilter (the cascade keeps as many samples as the run without it would).
A sample below the prefilter cut is dropped with `score:prefilter` and never reaches an
expensive model, except for the audit: a keyed-hash sample of the pool (`--prefilter_audit_fraction`,
the same uids on any runner) is scored by both whatever the prefilter says, then the audited
samples below the cut are dropped. On the audit the run reports:

- recall: of the audited samples the expensive cuts would keep without a prefilter (each
  `--<role>_min`, and the top `--<role>_keep_fraction` of the audit sample by that score, the
  same exact cut), the share that passed the prefilter;
- spearman: the rank correlation of prefilter_score and each expensive score (average ranks for
  ties), on at most CORRELATION_CAP audited samples (the smallest keyed hashes).

Audit records are small keyed values (uid, scores), never images.
"""
from __future__ import annotations

import dataclasses
import hashlib

import apache_beam as beam
import numpy as np
import pyarrow as pa

from curate.sample import SampleBatch
from curate.score import embeddings
from curate.score.cuts import ApplyCut, ScoreCut, merge_facts
from curate.score.names import AUDIT, NAME, PREFILTER, score_column, threshold_column
from curate.score.pool_cut import PoolCut
from curate.score.score_with import ScoreWith
from curate.score.settings import ScoreSettings
from curate.stage import DROPPED, Judge, apply_judge

DETAIL = PREFILTER  # the drop reason is score:prefilter
AUDITED = "audited"
CORRELATION_CAP = 200_000


def audit_key(uid: str, seed: int) -> float:
    """A keyed hash of the uid in [0, 1): the audit holds the samples below the audit fraction."""
    digest = hashlib.blake2b(f"{seed}\x00prefilter_audit\x00{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


class _PrefilterJudge(ApplyCut):
    """ApplyCut on prefilter_score; an audited sample below the cut flows on (it is dropped later)."""

    def __init__(self, fractions: dict, minimums: dict, audit_fraction: float, seed: int):
        super().__init__(fractions, minimums, False)
        self.audit_fraction = audit_fraction
        self.seed = seed
        self.fields[AUDIT] = pa.bool_()

    def judge_batch(self, samples, pool_cuts=None, clusters=None):
        details = super().judge_batch(samples, pool_cuts)
        out = []
        for sample, detail in zip(samples, details):
            audited = audit_key(sample.uid, self.seed) < self.audit_fraction
            sample.values[AUDIT] = audited
            out.append(None if detail is None or audited else DETAIL)
        return out


class PrefilterCut(ScoreCut):
    """The run's score cut on the prefilter's score alone (same pool cut, same parked apply)."""

    park_label = "ApplyPrefilter"  # parked apart from the expensive cut's copies of the same batch ids

    def __init__(self, settings: ScoreSettings, output: str = ""):
        pre = settings.prefilter
        super().__init__(dataclasses.replace(settings, cuts={PREFILTER: pre.cut}, image_filter=None), output)
        self.judge = _PrefilterJudge(self.fractions, self.minimums, pre.audit_fraction, pre.seed)
        self.fields = dict(self.judge.fields)


def _below(sample) -> bool:
    return not np.float32(sample.values[score_column(PREFILTER)]) >= np.float32(
        sample.values[threshold_column(PREFILTER)])


class _SplitAudit(Judge):
    """After the expensive models: audit records out; audited samples below the prefilter dropped."""

    name = NAME

    def __init__(self, roles: tuple[str, ...], seed: int):
        self.roles = roles
        self.seed = seed

    def judge(self, sample) -> str | None:
        return DETAIL if _below(sample) else None

    def outputs(self, batch: SampleBatch, reasons):
        records = [(audit_key(s.uid, self.seed), s.uid, s.values[score_column(PREFILTER)],
                    tuple(s.values[score_column(r)] for r in self.roles), not _below(s))
                   for s in batch.samples if s.values.get(AUDIT)]
        if records:
            yield beam.pvalue.TaggedOutput(AUDITED, records)


def _expert_cuts(settings: ScoreSettings) -> tuple[dict, dict]:
    fractions = {settings.cut_name(r): c.keep_fraction for r, c in settings.cuts.items()
                 if c.keep_fraction is not None}
    minimums = {settings.cut_name(r): c.minimum for r, c in settings.cuts.items() if c.minimum is not None}
    return fractions, minimums


def _audit_scores(records: list, roles: tuple[str, ...], fractions: dict) -> dict:
    return {r: np.array([rec[3][roles.index(r)] for rec in records], dtype=np.float32) for r in fractions}


def _reference_kept(record, roles, minimums: dict, thresholds: dict) -> bool:
    for j, role in enumerate(roles):
        score = np.float32(record[3][j])
        if role in minimums and not score >= np.float32(minimums[role]):
            return False
        if role in thresholds and not score >= np.float32(thresholds[role]):
            return False
    return True


def _count(records: list, roles, minimums: dict, ref_cuts: dict | None) -> np.ndarray:
    """[audited, passed the prefilter, reference kept, reference kept and passed]."""
    thresholds = {r: c["threshold"] for r, c in (ref_cuts or {}).items()}
    out = np.zeros(4, dtype=np.int64)
    for rec in records:
        kept = _reference_kept(rec, roles, minimums, thresholds)
        out += (1, rec[4], kept, kept and rec[4])
    return out


def _sum_counts(counts) -> np.ndarray:
    return sum(counts, np.zeros(4, dtype=np.int64))


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho: Pearson's correlation of the average ranks (None when undefined)."""
    import pandas as pd

    if len(a) < 2:
        return None
    ra = pd.Series(a, dtype="float64").rank().to_numpy()
    rb = pd.Series(b, dtype="float64").rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _correlations(sampled: list, roles: tuple[str, ...]) -> dict:
    pre = np.array([rec[2] for rec in sampled], dtype=np.float64)
    return {"spearman": {r: spearman(pre, np.array([rec[3][j] for rec in sampled], dtype=np.float64))
                         for j, r in enumerate(roles)},
            "correlated_on": len(sampled)}


def _summarize(_, counts, correlations, ref_cuts, fraction: float, has_cut: bool) -> dict:
    audited, passed, reference, preserved = (int(x) for x in counts)
    return {"fraction": fraction, "audited": audited, "passed_prefilter": passed,
            "reference_kept": reference, "reference_kept_passed": preserved,
            "recall": (preserved / reference) if has_cut and reference else None,
            "reference_thresholds": {r: c["threshold"] for r, c in (ref_cuts or {}).items()},
            **correlations}


def _rank(record) -> tuple:
    return record[0], record[1]


class Cascade:
    """The cascade's steps inside Score.expand: `before` the expensive models, `after` them."""

    def __init__(self, settings: ScoreSettings, output: str):
        self.settings = settings
        self.output = output
        self.cut = PrefilterCut(settings, output)
        self.fields = {score_column(PREFILTER): pa.float32(), **self.cut.fields}
        self.dropped: list = []
        self.files: dict[str, beam.PCollection] = {}
        self.facts: dict[str, beam.PCollection] = {}
        self.pool = None  # how many samples reached the prefilter cut: the expensive cuts' pool

    def before(self, batches):
        s = self.settings
        scored = batches | "Score_prefilter" >> ScoreWith(s.prefilter.spec, s.inference)
        self.dropped.extend(scored.dropped)
        self.facts["usage"] = scored.facts
        if s.save_embeddings:
            self.files[embeddings.folder(PREFILTER)] = scored.kept | "SaveEmbeddings_prefilter" >> (
                embeddings.WriteEmbeddings(PREFILTER, self.output))
        self.pool = (scored.kept | "CountReached" >> beam.Map(len)
                     | "SumReached" >> beam.CombineGlobally(sum))
        cut = scored.kept | "PrefilterCut" >> self.cut
        self.dropped.extend(cut.dropped)
        self.facts["cut"] = cut.facts
        return cut.kept

    def after(self, batches) -> beam.PCollection:
        s = self.settings
        roles = tuple(s.cut_name(r) for r in s.models)  # the scores the expensive cuts read
        out = apply_judge(batches, _SplitAudit(roles, s.prefilter.seed), tags=(AUDITED,), label="SplitAudit")
        self.dropped.append(out[DROPPED])
        self._audit(out[AUDITED], roles)
        return out.kept

    def _audit(self, records, roles):
        s = self.settings
        fractions, minimums = _expert_cuts(s)
        p = records.pipeline
        if fractions:
            ref_cuts = (records | "AuditScores" >> beam.Map(_audit_scores, roles, fractions)
                        | "AuditPoolCut" >> PoolCut(fractions))
        else:
            ref_cuts = p | "NoAuditCut" >> beam.Create([None])
        counts = (records | "AuditCount" >> beam.Map(_count, roles, minimums, beam.pvalue.AsSingleton(ref_cuts))
                  | "AuditSum" >> beam.CombineGlobally(_sum_counts))
        correlations = (records | "AuditRecords" >> beam.FlatMap(lambda batch: batch)
                        | "AuditSample" >> beam.combiners.Top.Smallest(CORRELATION_CAP, key=_rank)
                        | "Correlate" >> beam.Map(_correlations, roles))
        self.facts["audit"] = p | "AuditTrigger" >> beam.Create([None]) | "AuditSummary" >> beam.Map(
            _summarize, beam.pvalue.AsSingleton(counts), beam.pvalue.AsSingleton(correlations),
            beam.pvalue.AsSingleton(ref_cuts), s.prefilter.audit_fraction, bool(fractions or minimums))

    def summary(self, p, usage: dict[str, beam.PCollection]) -> beam.PCollection:
        """The cascade's facts for stats.json: its model and cut, each model's work, the audit."""
        spec = self.settings.prefilter.spec
        static = {"model": {"model": spec.name, "pretrained": spec.pretrained, "kind": spec.kind}}
        facts = {**self.facts, "reached": self.pool, **{f"usage:{r}": pc for r, pc in usage.items()}}
        return merge_facts(p, "CascadeFacts", static, facts) | "CascadeUsage" >> beam.Map(_nest_usage)


def _nest_usage(facts: dict) -> dict:
    usage = {"prefilter": facts.pop("usage")}
    usage.update({k.split(":", 1)[1]: facts.pop(k) for k in sorted(facts) if k.startswith("usage:")})
    facts["scored"] = {role: u["samples"] for role, u in usage.items()}
    facts["model_seconds"] = {role: u["model_seconds"] for role, u in usage.items()}
    experts = [u["samples"] for role, u in usage.items() if role != "prefilter"]
    facts["expensive_calls_saved"] = max(0, facts["reached"] - max(experts, default=0))
    return facts

