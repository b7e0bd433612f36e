"""The MetaCLIP stage alone on FnApiRunner: its judges' reasons, a failing caption as one drop,
named top entries in its facts, and its flags checked once in from_run."""
import json
import sys

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.options.pipeline_options import PipelineOptions

from curate.errors import UsageError
from curate.metaclip.names import ENTRY_IDS
from curate.metaclip.stage import MetaclipCuration
from curate.run_context import RunContext
from curate.sample import Sample, SampleBatch, make_uid
from curate.ledger_layout import batch_id

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import tests/

ENTRIES = ["dog", "cat", "hot dog"]
CAPTIONS = ["a dog"] * 6 + ["a cat", "a hot dog", "nothing here", None]


def _samples() -> list[Sample]:
    return [Sample(make_uid(f"http://x/{i}", str(c)), f"http://x/{i}", c, extras={"row": i})
            for i, c in enumerate(CAPTIONS)]


def _batch_at(start: int, size: int) -> SampleBatch:
    return SampleBatch(batch_id(0, start), _samples()[start:start + size])


def _rows(tmp_path, t, size=3):
    """{row: reason} of every sample, and the stage's facts."""
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps(ENTRIES))
    rows_path, facts_path = str(tmp_path / "rows.json"), str(tmp_path / "facts.json")
    stage = MetaclipCuration(str(metadata), t, 0, str(tmp_path / "out"))
    with beam.Pipeline(options=PipelineOptions(["--runner", "FnApiRunner"])) as p:
        batches = (p | beam.Create(range(0, len(CAPTIONS), size))
                   | beam.Map(_batch_at, size).with_output_types(SampleBatch))
        out = batches | stage
        kept = out.kept | "Kept" >> beam.FlatMap(
            lambda b: [(s.extras["row"], None, s.values[ENTRY_IDS]) for s in b.samples])
        dropped = (tuple(out.dropped) | "AllDropped" >> beam.Flatten() | "Dropped" >> beam.FlatMap(
            lambda part: [(r["row"], r["reason"], r.get(ENTRY_IDS)) for r in part[1].to_pylist()]))
        ((kept, dropped) | beam.Flatten() | beam.combiners.ToList()
         | beam.Map(lambda rows: json.dump(sorted(rows, key=lambda r: r[0]), open(rows_path, "w"))))
        out.facts | "WriteFacts" >> beam.Map(lambda f: json.dump(f, open(facts_path, "w")))
    return {r[0]: (r[1], r[2]) for r in json.load(open(rows_path))}, json.load(open(facts_path))


def test_reasons_a_failing_caption_and_named_top_entries(tmp_path):
    rows, facts = _rows(tmp_path, t=100)
    assert rows[8] == ("metaclip:no_match", [])
    assert rows[9][0] == "metaclip:error_TypeError"  # one bad caption, not its batch
    assert all(rows[i][0] is None for i in range(8)) and rows[7][1] == [0, 2]
    assert facts["pool"] == len(CAPTIONS)
    assert facts["top_entries"][0] == {"id": 0, "entry": "dog", "count": 7}
    assert {r["entry"] for r in facts["top_entries"]} == set(ENTRIES)


def test_balancing_drops_as_balanced_out(tmp_path):
    rows, facts = _rows(tmp_path, t=1)
    reasons = [rows[i][0] for i in range(6)]  # "dog" captions: each kept with p = 1/7
    assert set(reasons) <= {None, "metaclip:balanced_out"} and "metaclip:balanced_out" in reasons
    assert rows[6][0] is None  # "cat" matched once: p = 1
    assert facts["t"] == 1 and facts["entries_over_t"] == 1


def _run(*flags) -> RunContext:
    return RunContext(PipelineOptions(list(flags)), None, "out")


def test_from_run_checks_flags_once_and_names_local_files():
    with pytest.raises(UsageError, match="--t: must be > 0"):
        MetaclipCuration.from_run(_run("--t", "0"))
    with pytest.raises(UsageError, match="--language_map"):
        MetaclipCuration.from_run(_run("--metaclip_version", "2", "--language_map", "nonsense"))
    stage = MetaclipCuration.from_run(_run("--t", "5", "--seed", "3"))
    assert (stage.label, stage.t, stage.seed, stage.worldwide, stage.local_files()) == ("MetaCLIP", 5, 3, None, {})
    assert MetaclipCuration.from_run(_run("--metadata", "m.json")).local_files() == {"--metadata": "m.json"}
    assert MetaclipCuration.from_run(_run("--metaclip_version", "2")).worldwide is not None
    bad = MetaclipCuration.from_run(_run("--metadata", "/nonexistent/m.json"))
    with pytest.raises(UsageError, match="--metadata: cannot read"):
        bad.prepare()
