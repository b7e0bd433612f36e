"""Keep the samples a SQL test accepts: `--keep "nsfw_score < 0.45 AND aesthetic_score >= 5"`.

The test is written in the dialect of `curate.subset cut --where` and checked by the same code
(curate.ledger.expression: DuckDB's parser, one test of one row, no subquery, no volatile
function). It reads the sample's ledger columns as the ledger will hold them: the core
attributes (uid, url, caption, width, ...), what earlier stages computed (`sample.values`) and
the input's columns (`sample.extras`, under their ledger names). `from_run` checks it against
the columns the stages before it declare (`Stage.fields`) and the source's columns, so a
column nothing provides is one line and exit 2 before the run.

On the workers each Judge holds one DuckDB connection, made in `setup` and locked (it reads
nothing but the batches it is given). A batch's named columns become an Arrow table of their
ledger types (a float32 score stays float32, so `clip_score >= 0.3` compares as the ledger and
the scoring stage do; a NaN is NULL), and a row the test does not accept (false or NULL) is
dropped as `keep:expression`. Facts in stats.json: the expression, rows in, rows dropped.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from curate.io.ledger_batch import ledger_columns
from curate.io.run_schema import EXTRA_JSON, build_schema
from curate.ledger.connection import connect, lock_to_ledger
from curate.ledger.expression import RowTest, check, parse, rows_passing
from curate.keep.options import KeepOptions
from curate.stage import DROPPED, Judge, Stage, StageOutput, apply_judge

NAME = "keep"
REJECTED = "expression"  # the drop's detail: keep:expression
FLAG = "--keep"
WORKER_MEMORY = "256MB"  # a batch's few columns; the worker's memory is for its images and models
NOT_ROW_COLUMNS = ("status", "reason", EXTRA_JSON)  # a fate is decided after the stages; extra_json is the writer's


def available_columns(run) -> dict[str, pa.DataType]:
    """The ledger columns a sample can have when it reaches Keep: the core attributes, what the
    stages configured before it declare (`run.configured`) and the input's own columns."""
    before = {}
    for stage in run.configured:
        for name, kind in stage.fields.items():
            before.setdefault(name, kind)
    schema = build_schema(before, run.source.extra_columns())
    return {f.name: f.type for f in schema if f.name not in NOT_ROW_COLUMNS}


def checked(text: str, columns: dict[str, pa.DataType]) -> tuple[RowTest, dict[str, pa.DataType]]:
    """The test and the columns it reads (with their types), checked against `columns`."""
    test = parse(text, FLAG)
    con = connect(threads=1, memory_limit=WORKER_MEMORY)
    try:
        con.register("rows", pa.schema(list(columns.items())).empty_table())
        lock_to_ledger(con, [])
        names = check(test, con, "rows", FLAG,
                      "reaches Keep: no stage before it computes it and the input does not carry it")
    finally:
        con.close()
    return test, {name: columns[name] for name in names}


class ApplyTest(Judge):
    """Drops the samples of a batch the test does not accept; one locked DuckDB per worker."""

    name = NAME

    def __init__(self, test: RowTest, columns: dict[str, pa.DataType]):
        self.test = test
        self.columns = dict(columns)

    def setup(self):
        super().setup()
        self.con = connect(threads=1, memory_limit=WORKER_MEMORY)
        lock_to_ledger(self.con, [])

    def teardown(self):
        self.con.close()

    def judge_batch(self, batch, *side):
        n = len(batch)
        columns = ledger_columns(batch, [None] * n) if self.columns else {}
        table = pa.table({name: _typed(columns.get(name), kind, n) for name, kind in self.columns.items()}
                         ) if self.columns else pa.table({"_": pa.nulls(n, pa.bool_())})
        passing = set(rows_passing(self.con, self.test, table))
        return [None if i in passing else REJECTED for i in range(n)]


def _typed(column, kind: pa.DataType, n: int) -> pa.Array:
    """A batch's column in its ledger type (NaN as NULL); absent: all NULL."""
    if column is None:
        return pa.nulls(n, kind)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        column = column.to_pylist()
    return pa.array(column, kind, from_pandas=True)


def _sum_pairs(pairs) -> tuple[int, int]:
    return tuple(map(sum, zip(*pairs))) or (0, 0)


class Keep(Stage):
    """Keep the samples the --keep SQL test accepts."""

    step = "Keep"
    name = NAME
    options = (KeepOptions,)

    def __init__(self, test: RowTest, columns: dict[str, pa.DataType]):
        super().__init__()
        self.test = test
        self.columns = dict(columns)

    @classmethod
    def from_run(cls, run) -> "Keep | None":
        text = run.view(KeepOptions).keep
        if text is None:
            return None
        return cls(*checked(text, available_columns(run)))

    def expand(self, batches):
        out = apply_judge(batches, ApplyTest(self.test, self.columns), label="Test")
        kept = out.kept | "CountKept" >> beam.Map(lambda batch: (len(batch), 0))
        dropped = out[DROPPED] | "CountDropped" >> beam.Map(lambda part_rows: (part_rows[1].num_rows,) * 2)
        facts = ((kept, dropped) | "Rows" >> beam.Flatten() | "Sum" >> beam.CombineGlobally(_sum_pairs)
                 | "Facts" >> beam.Map(lambda n, text: {"expression": text, "rows_in": n[0], "rows_dropped": n[1]},
                                       self.test.text))
        return StageOutput(out.kept, [out[DROPPED]], facts)
