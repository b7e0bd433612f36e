"""A true/false SQL test of one row: `curate.subset cut --where` and the pipeline's `--keep`.

One dialect, DuckDB's, for both: `dfn_score >= 0.3 AND (width >= 256 OR language IN ('en', 'de'))`.
What is accepted is decided by DuckDB's own parser, never by hand:

- `duckdb.SQLExpression` parses exactly one expression: `1=1; DROP TABLE t`, `true ORDER BY 1`
  and anything else that is not one expression fail there.
- Its syntax tree (`json_serialize_sql`) names the columns the test reads and must hold no
  subquery (a subquery reads tables or files: `(SELECT ... FROM read_csv('/etc/passwd'))`), no
  window and no volatile function (`random()`: another selection on every run; `hash(uid)` is
  the keyed way to sample).
- Bound on an empty table of the real columns, it must be a BOOLEAN: an unknown column, a
  comparison of a string with a number, an aggregate, are one line before any row is read.

The evaluators add what the syntax cannot guarantee: they run the test on a DuckDB connection
that reads nothing but the rows it is given (`curate.ledger.connection`: external access off,
configuration locked).

Numbers: a number compared with a float32 column (the model scores) is rounded to float32
first, as the scoring stage compares them. DuckDB binds a decimal literal (`0.3`) to the
column's FLOAT type, which is that rule; a number in exponent form (`3e-1`), a DOUBLE in
DuckDB, is rewritten here as the same decimal so it compares alike. A NaN in a float column
reads as NULL (unknown), so no comparison selects it. A row is selected only when the test is
true: NULL (unknown) is not selected, as in SQL's WHERE.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import duckdb

from curate.errors import UsageError

MAX_DECIMAL_DIGITS = 38  # DuckDB's widest DECIMAL: a longer literal stays a DOUBLE


@dataclass(frozen=True)
class RowTest:
    """A parsed test: `text` as given, `sql` as DuckDB evaluates it, `names` the columns it reads
    as written (resolved against a table's columns by `check`)."""

    text: str
    sql: str
    names: tuple[str, ...]
    functions: tuple[str, ...]


def first_line(error: BaseException) -> str:
    """DuckDB's message without its position marker lines."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def parse(text: str, flag: str) -> RowTest:
    """The test as DuckDB parses it; UsageError (one line) when it is not one row test."""
    if not text or not text.strip():
        raise UsageError(f"{flag}: an empty expression")
    try:
        sql = str(duckdb.SQLExpression(text))
    except duckdb.Error as e:
        raise UsageError(f"{flag}: {first_line(e)} in {text!r}") from None
    sql = _decimal_numbers(sql)
    tree = _syntax_tree(sql, text, flag)
    names: list[str] = []
    functions: list[str] = []
    _walk(tree, frozenset(), names, functions, text, flag)
    return RowTest(text, sql, tuple(dict.fromkeys(names)), tuple(dict.fromkeys(functions)))


def _decimal_numbers(sql: str) -> str:
    """Numbers in exponent form (`3e-1`) written as decimals (`0.3`), which DuckDB binds to a
    float32 column's type like any decimal; numbers too long for a DECIMAL stay as they are."""
    tokens = duckdb.tokenize(sql)
    ends = [start for start, _ in tokens[1:]] + [len(sql)]
    out, at = [], 0
    for (start, kind), end in zip(tokens, ends):
        raw = sql[start:end].rstrip()
        if kind == duckdb.token_type.numeric_const and raw[:2].lower() != "0x" and "e" in raw.lower():
            try:
                plain = format(Decimal(raw), "f")
            except InvalidOperation:
                continue
            if len(plain.replace(".", "").lstrip("0")) <= MAX_DECIMAL_DIGITS:
                out.append(sql[at:start] + plain)
                at = start + len(raw)
    return "".join(out) + sql[at:]


_TREE_CONNECTION: duckdb.DuckDBPyConnection | None = None


def _syntax_tree(sql: str, text: str, flag: str) -> dict:
    """DuckDB's parse tree of `SELECT 1 WHERE <sql>` (sql is one expression already, so it cannot
    close the statement early); only parsed, never run."""
    global _TREE_CONNECTION
    if _TREE_CONNECTION is None:
        _TREE_CONNECTION = duckdb.connect(config={"enable_external_access": False, "threads": 1})
    statement = f"SELECT 1 WHERE ({sql}\n)"
    serialized = _TREE_CONNECTION.execute("SELECT json_serialize_sql($1)", [statement]).fetchall()[0][0]
    tree = json.loads(serialized)
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        raise UsageError(f"{flag}: {tree.get('error_message', 'not one expression')} in {text!r}")
    return tree["statements"][0]["node"]["where_clause"]


def _walk(node, bound: frozenset, names: list, functions: list, text: str, flag: str) -> None:
    """Collect column and function names; refuse what is not a test of one row."""
    if isinstance(node, list):
        for item in node:
            _walk(item, bound, names, functions, text, flag)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("class")
    if kind == "SUBQUERY":
        raise UsageError(f"{flag}: a subquery is not a test of one row (it reads other tables or files) in {text!r}")
    if kind == "WINDOW":
        raise UsageError(f"{flag}: a window function is not a test of one row in {text!r}")
    if kind == "COLUMN_REF":
        column = node["column_names"][0]  # `s.field` is a struct column's field
        if column not in bound:
            names.append(column)
        return
    if kind == "LAMBDA":  # `list_filter(entry_ids, x -> x > 5)`: x is the lambda's, not a column
        params: list[str] = []
        _walk(node.get("lhs"), frozenset(), params, [], text, flag)
        _walk(node.get("expr"), bound | frozenset(params), names, functions, text, flag)
        return
    if kind == "FUNCTION":
        functions.append(node["function_name"])
    for value in node.values():
        _walk(value, bound, names, functions, text, flag)


def check(test: RowTest, con: duckdb.DuckDBPyConnection, table: str, flag: str, missing: str) -> tuple[str, ...]:
    """The columns of `table` the test reads (as the table spells them), after checking it binds
    there as a BOOLEAN; UsageError (one line) otherwise. `missing` says where columns come from,
    for the message about an unknown one."""
    columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
    by_lower = {c.lower(): c for c in columns}  # SQL names are case-insensitive
    unknown = [n for n in test.names if n.lower() not in by_lower]
    if unknown:
        raise UsageError(f"{flag}: no column {unknown[0]!r} {missing} (columns: {', '.join(columns)})")
    volatile = _volatile(con, test.functions)
    if volatile:
        raise UsageError(f"{flag}: {volatile[0]}() gives another answer on every run; a test must be a function "
                         f"of the row (for a keyed sample: hash(uid) % 100 < 10)")
    try:
        kinds = con.sql(f"SELECT ({test.sql}\n) AS test FROM {table} WHERE ({test.sql}\n) LIMIT 0").types
    except duckdb.Error as e:
        raise UsageError(f"{flag}: {first_line(e)} in {test.text!r}") from None
    if str(kinds[0]) != "BOOLEAN":
        raise UsageError(f"{flag}: {test.text!r} is a {kinds[0]}, not a true/false test")
    return tuple(by_lower[n.lower()] for n in test.names)


def _volatile(con: duckdb.DuckDBPyConnection, functions: tuple[str, ...]) -> list[str]:
    if not functions:
        return []
    rows = con.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE stability = 'VOLATILE' "
                       "AND list_contains($1, lower(function_name))", [[f.lower() for f in functions]]).fetchall()
    found = {r[0].lower() for r in rows}
    return [f for f in functions if f.lower() in found]


def quote_name(name: str) -> str:
    """A column name as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_text(value: str) -> str:
    """A string as a SQL literal."""
    return "'" + value.replace("'", "''") + "'"


ROW = "__curate_row"  # the row number a batch table carries through the test


def rows_passing(con: duckdb.DuckDBPyConnection, test: RowTest, table) -> list[int]:
    """The rows of an Arrow table (named columns, no row column yet) for which the test is true:
    NULL and false are not. `con` should be locked (curate.ledger.connection.lock_to_ledger)."""
    import pyarrow as pa

    numbered = table.append_column(ROW, pa.array(range(table.num_rows), pa.int64()))
    con.register("rows", numbered)
    try:
        return [row[0] for row in con.execute(f"SELECT {ROW} FROM rows WHERE ({test.sql}\n)").fetchall()]
    finally:
        con.unregister("rows")
