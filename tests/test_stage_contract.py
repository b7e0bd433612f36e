"""The one Stage type: a failure on one sample is that sample's drop, recipes are checked lists
of stages, and `--pipeline NAME --help` shows that recipe's stages and defaults."""
from __future__ import annotations

import types

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from curate.filters.image_facts import ImageFacts
from curate.recipes import RecipeError, load_recipe, recipes
from curate.run import main
from curate.sample import Sample, SampleBatch, make_uid
from curate.stage import DROPPED, Judge, SampleStage, Stage, apply_judge

RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"


def _batch(batch_id: str, captions: list[str]) -> SampleBatch:
    return SampleBatch(batch_id, [Sample(make_uid(c, c), caption=c) for c in captions])


class Picky(Judge):
    """Judges a whole batch at once and raises on a caption it cannot handle."""

    name = "picky"

    def judge_batch(self, samples):
        if any(s.caption == "boom" for s in samples):
            raise RuntimeError("cannot judge this batch")
        return [None if s.caption.startswith("keep") else "not_kept" for s in samples]


class Shouty(SampleStage):
    """A per-sample stage whose rule fails on one sample."""

    step = "Shouty"
    name = "shouty"

    def judge(self, sample):
        if sample.caption == "boom":
            raise KeyError(sample.caption)
        return None if sample.caption.isupper() else "quiet"


def assert_fates(transform_of, expected: list) -> None:
    """(caption, reason) of every sample of two batches after the transform (None: kept)."""
    batches = [_batch("00000-0000000000", ["keep a", "boom", "drop b"]), _batch("00000-0000000003", ["keep c"])]
    with beam.Pipeline(RUNNER, options=PipelineOptions()) as p:
        kept, dropped = transform_of(p | beam.Create(batches, reshuffle=False))
        fates = ((kept | "Kept" >> beam.FlatMap(lambda b: [(s.caption, None) for s in b.samples]),
                  dropped | "Dropped" >> beam.FlatMap(lambda part_rows: zip(
                      part_rows[1].column("caption").to_pylist(), part_rows[1].column("reason").to_pylist())))
                 | beam.Flatten())
        assert_that(fates, equal_to(expected))


def test_a_sample_that_breaks_a_batch_judgement_is_dropped_alone():
    """The batch is judged again one sample at a time: only the bad one is dropped, with its error."""
    def judged(batches):
        out = apply_judge(batches, Picky())
        return out.kept, out[DROPPED]

    assert_fates(judged, [("keep a", None), ("boom", "picky:error_RuntimeError"), ("drop b", "picky:not_kept"),
                          ("keep c", None)])


def test_a_per_sample_stage_drops_the_sample_its_rule_fails_on():
    def staged(batches):
        out = batches | Shouty()
        return out.kept, out.dropped[0]

    assert_fates(staged, [("keep a", "shouty:quiet"), ("boom", "shouty:error_KeyError"), ("drop b", "shouty:quiet"),
                          ("keep c", "shouty:quiet")])


def test_a_judge_cannot_override_process():
    with pytest.raises(TypeError, match="not process"):
        class Careless(Judge):  # noqa: F841
            def process(self, element):
                yield element


def _recipe_module(**attrs) -> types.ModuleType:
    module = types.ModuleType("pipelines.made_up")
    module.NAME, module.SUMMARY = "made_up", "a recipe written for this test"
    for name, value in attrs.items():
        setattr(module, name, value)
    return module


def test_a_misspelt_or_foreign_default_fails_when_the_recipe_loads():
    assert load_recipe(_recipe_module(STAGES=[ImageFacts], DEFAULTS={"batch_size": 10})).defaults == {"batch_size": 10}
    with pytest.raises(RecipeError, match="dfn_keep_fracton"):
        load_recipe(_recipe_module(STAGES=[ImageFacts], DEFAULTS={"dfn_keep_fracton": 0.1}))
    with pytest.raises(RecipeError, match="clip_model"):  # a real flag, but of no stage this recipe has
        load_recipe(_recipe_module(STAGES=[ImageFacts], DEFAULTS={"clip_model": "ViT-B-32"}))
    with pytest.raises(RecipeError, match="not a Stage"):
        load_recipe(_recipe_module(STAGES=[beam.Map(len)]))


def test_a_required_need_without_a_provider_fails_when_the_recipe_loads():
    from curate.balance.stage import SemanticBalance
    from curate.score.stage import Score

    with pytest.raises(RecipeError, match="SemanticBalance needs 'embeddings'"):
        load_recipe(_recipe_module(STAGES=[ImageFacts, SemanticBalance]))
    recipe = load_recipe(_recipe_module(STAGES=[ImageFacts, Score, SemanticBalance]))
    assert recipe.providers == {"embeddings": Score, "scoring": Score}

    class OtherScore(Score):
        step = "OtherScore"

    with pytest.raises(RecipeError, match="both provide"):
        load_recipe(_recipe_module(STAGES=[Score, OtherScore, SemanticBalance]))


def test_an_optional_need_without_a_provider_fails_with_one_line_when_the_flags_ask_for_it(tmp_path):
    """Dedup needs embeddings only for SemDeDup: a recipe without a scoring stage loads, and a
    run asking for --dedup semantic stops before the pipeline starts."""
    from curate.dedup.stage import Dedup
    from curate.errors import UsageError
    from curate.inputs import open_source
    from curate.run_context import RunContext
    from tests.conftest import SAMPLE

    recipe = load_recipe(_recipe_module(STAGES=[ImageFacts, Dedup]))
    assert recipe.providers == {}
    run = RunContext(PipelineOptions(["--dedup", "semantic"]), open_source(SAMPLE), str(tmp_path))
    with pytest.raises(UsageError, match="^--dedup semantic: needs image embeddings"):
        recipe.configure(run)
    run = RunContext(PipelineOptions(["--dedup", "exact"]), open_source(SAMPLE), str(tmp_path))
    assert [s.step for s in recipe.configure(run)] == ["ImageFacts", "Dedup"]


def test_every_shipped_recipe_is_a_checked_list_of_stages():
    found = recipes()
    assert {"metaclip", "metaclip2", "dfn", "datacomp", "laion", "dedup", "recap", "download", "reshard"} <= set(found)
    for recipe in found.values():
        assert recipe.stage_classes and all(issubclass(c, Stage) for c in recipe.stage_classes)
        assert len({c.step for c in recipe.stage_classes}) == len(recipe.stage_classes), recipe.name


def _help(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_shows_the_recipes_own_stages_and_defaults(capsys):
    dfn = _help(capsys, "--pipeline", "dfn")
    metaclip = _help(capsys, "--pipeline", "metaclip")
    assert ("stages: BlockLists -> BasicFilter -> Download -> ImageFacts -> ImageSizeFilter -> Score -> Signals -> Keep "
            "-> Dedup") in dfn
    assert "defaults: --dfn_model ViT-L-14-quickgelu, --dfn_pretrained dfn2b, --dfn_keep_fraction 0.15" in dfn
    assert "stages: BlockLists -> MetaCLIP -> Download -> ImageFacts -> Score -> Signals -> Keep -> Dedup" in metaclip
    assert "(default: 0.15)" in _flag_help(dfn, "--dfn_keep_fraction")  # the flag's help shows the recipe's default
    assert "(default: None)" in _flag_help(metaclip, "--dfn_keep_fraction")


def _flag_help(text: str, flag: str) -> str:
    """The help entry of one flag (from its line to the next flag's)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(flag + " "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("--")), len(lines))
    return " ".join(lines[start:end])



def test_no_stage_declares_what_nothing_reads():
    """`columnwise`, `global_decision` and `text_graph` went with the column-wise text graph: a
    stage that still set one would be declaring what nothing reads (or expecting a graph that
    no longer exists)."""
    retired = {"columnwise", "global_decision", "text_graph"}
    assert not retired & set(vars(Stage))
    for recipe in recipes().values():
        for cls in recipe.stage_classes:
            assert not retired & {n for c in cls.__mro__ for n in vars(c)}, cls.__name__
