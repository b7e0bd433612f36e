"""Row predicates over ledger columns: `--where` expressions and the named cuts, no eval.

`--where` is a small expression language parsed here (never Python's eval):

    expr    := term ("or" term)*            term := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | test
    test    := value OP value               OP: == = != < <= > >=
             | column "is" ["not"] "null"
             | column ["not"] "in" "(" literal ("," literal)* ")"
             | column ["not"] "like" 'pattern'   (SQL LIKE: % any run, _ one character)
    value   := column | number | 'string' | "string" | true | false

Keywords are case-insensitive; a column name that is a keyword or has odd characters is
written in backticks. Nulls follow SQL: a comparison with a null is unknown, `not unknown` is
unknown, and a row is selected only when its predicate is true. A number compared with a
float32 column (the score columns) is rounded to float32 first, as the scoring stage compares.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import UsageError

_TOKEN = re.compile(r"""\s*(?:
    (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.:]*)
  | (?P<op><=|>=|==|!=|<>|<|>|=|\(|\)|,|-)
)""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "is", "null", "in", "like", "true", "false"}
_COMPARE = {"==": pc.equal, "=": pc.equal, "!=": pc.not_equal, "<>": pc.not_equal, "<": pc.less,
            "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}


class Node:
    """A predicate: `mask(batch)` -> pyarrow BooleanArray (nulls = unknown); `text` for reports."""

    text = ""

    def columns(self) -> set[str]:
        return set()

    def check(self, schema: pa.Schema, flag: str) -> None:
        for name in sorted(self.columns()):
            if name not in schema.names:
                raise UsageError(f"{flag}: no column {name!r} in the ledger (columns: {', '.join(schema.names)})")

    def mask(self, batch: pa.RecordBatch) -> pa.Array:
        raise NotImplementedError


def column_values(batch: pa.RecordBatch, name: str) -> pa.Array:
    """A column with NaN read as null (unknown), so `not (x < 1)` never selects a NaN."""
    values = batch.column(name)
    if pa.types.is_floating(values.type) and values.null_count < len(values):
        nan = pc.is_nan(values)
        if pc.any(nan).as_py():
            values = pc.if_else(nan, pa.scalar(None, values.type), values)
    return values


class Column:
    def __init__(self, name: str):
        self.name = name

    def __str__(self):
        return self.name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name) and \
            self.name.lower() not in KEYWORDS else f"`{self.name}`"


class Literal:
    def __init__(self, value):
        self.value = value

    def __str__(self):
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        if isinstance(self.value, bool):
            return str(self.value).lower()
        return repr(self.value)


def _scalar(value, like: pa.DataType) -> pa.Scalar:
    """A literal as a scalar of the column's type where that keeps the comparison exact."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return pa.scalar(value)
    if pa.types.is_floating(like):
        return pa.scalar(float(np.array(value, dtype=like.to_pandas_dtype())), like)
    return pa.scalar(float(value) if isinstance(value, float) else value)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return str(t)


def _literal_kind(value) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"


class Compare(Node):
    def __init__(self, left, op: str, right):
        self.left, self.op, self.right = left, op, right
        self.text = f"{left} {op} {right}"

    def columns(self):
        return {v.name for v in (self.left, self.right) if isinstance(v, Column)}

    def check(self, schema, flag):
        super().check(schema, flag)
        kinds = [_kind(schema.field(v.name).type) if isinstance(v, Column) else _literal_kind(v.value)
                 for v in (self.left, self.right)]
        if kinds[0] != kinds[1]:
            raise UsageError(f"{flag}: {self.text!r} compares a {kinds[0]} with a {kinds[1]}")
        if self.op not in ("==", "=", "!=", "<>") and kinds[0] == "bool":
            raise UsageError(f"{flag}: {self.text!r}: booleans compare only with = or !=")

    def mask(self, batch):
        columns = {v.name: column_values(batch, v.name) for v in (self.left, self.right) if isinstance(v, Column)}
        like = next(iter(columns.values())).type
        args = [columns[v.name] if isinstance(v, Column) else _scalar(v.value, like)
                for v in (self.left, self.right)]
        return _COMPARE[self.op](*args)


class IsNull(Node):
    def __init__(self, column: Column, negate: bool):
        self.column, self.negate = column, negate
        self.text = f"{column} is {'not ' if negate else ''}null"

    def columns(self):
        return {self.column.name}

    def mask(self, batch):
        values = batch.column(self.column.name)
        nan = pc.is_nan(values).fill_null(False) if pa.types.is_floating(values.type) else None
        missing = pc.is_null(values) if nan is None else pc.or_(pc.is_null(values), nan)
        return pc.invert(missing) if self.negate else missing


class In(Node):
    def __init__(self, column: Column, values: list, negate: bool = False):
        self.column, self.values, self.negate = column, list(values), negate
        self.text = f"{column} {'not ' if negate else ''}in ({', '.join(str(Literal(v)) for v in values)})"

    def columns(self):
        return {self.column.name}

    def check(self, schema, flag):
        super().check(schema, flag)
        kind = _kind(schema.field(self.column.name).type)
        for v in self.values:
            if _literal_kind(v) != kind:
                raise UsageError(f"{flag}: {self.text!r} lists a {_literal_kind(v)} for a {kind} column")

    def mask(self, batch):
        values = column_values(batch, self.column.name)
        found = pc.is_in(values, value_set=pa.array([_scalar(v, values.type).as_py() for v in self.values],
                                                     type=values.type))
        found = pc.if_else(pc.is_null(values), pa.scalar(None, pa.bool_()), found)  # SQL: null in (...) is unknown
        return pc.invert(found) if self.negate else found


class Like(Node):
    def __init__(self, column: Column, pattern: str, negate: bool = False):
        self.column, self.pattern, self.negate = column, pattern, negate
        self.text = f"{column} {'not ' if negate else ''}like {Literal(pattern)}"

    def columns(self):
        return {self.column.name}

    def check(self, schema, flag):
        super().check(schema, flag)
        if _kind(schema.field(self.column.name).type) != "string":
            raise UsageError(f"{flag}: {self.text!r}: like needs a string column")

    def mask(self, batch):
        found = pc.match_like(batch.column(self.column.name), self.pattern)
        return pc.invert(found) if self.negate else found


class BoolOp(Node):
    def __init__(self, op: str, parts: list[Node]):
        self.op, self.parts = op, parts
        self.text = f" {op} ".join(f"({p.text})" if isinstance(p, BoolOp) else p.text for p in parts)

    def columns(self):
        return set().union(*(p.columns() for p in self.parts))

    def check(self, schema, flag):
        for p in self.parts:
            p.check(schema, flag)

    def mask(self, batch):
        combine = pc.and_kleene if self.op == "and" else pc.or_kleene
        out = self.parts[0].mask(batch)
        for part in self.parts[1:]:
            out = combine(out, part.mask(batch))
        return out


class Not(Node):
    def __init__(self, part: Node):
        self.part = part
        self.text = f"not ({part.text})"

    def columns(self):
        return self.part.columns()

    def check(self, schema, flag):
        self.part.check(schema, flag)

    def mask(self, batch):
        return pc.invert(self.part.mask(batch))


class _Parser:
    def __init__(self, text: str, flag: str):
        self.text, self.flag = text, flag
        self.tokens = self._tokenize(text)
        self.at = 0

    def _tokenize(self, text):
        tokens, pos = [], 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise UsageError(f"{self.flag}: cannot read {text[pos:].strip()[:20]!r} in {text!r}")
            kind = m.lastgroup
            raw = m.group(kind)
            if kind == "string":
                tokens.append(("literal", raw[1:-1].replace(raw[0] * 2, raw[0])))
            elif kind == "number":
                tokens.append(("literal", float(raw) if any(c in raw for c in ".eE") else int(raw)))
            elif kind == "quoted":
                tokens.append(("name", raw[1:-1]))
            elif kind == "name" and raw.lower() in KEYWORDS:
                word = raw.lower()
                tokens.append(("literal", word == "true") if word in ("true", "false") else ("kw", word))
            else:
                tokens.append((kind, raw))
            pos = m.end()
        return tokens

    def fail(self, what: str):
        raise UsageError(f"{self.flag}: {what} in {self.text!r}")

    def peek(self, kind=None, value=None):
        if self.at >= len(self.tokens):
            return None
        token = self.tokens[self.at]
        if (kind and token[0] != kind) or (value is not None and token[1] != value):
            return None
        return token

    def take(self, kind=None, value=None, what="a value"):
        token = self.peek(kind, value)
        if token is None:
            found = self.tokens[self.at][1] if self.at < len(self.tokens) else "the end"
            self.fail(f"expected {what}, found {found!r}")
        self.at += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            self.fail("empty expression")
        node = self.expr()
        if self.at != len(self.tokens):
            self.fail(f"unexpected {self.tokens[self.at][1]!r}")
        return node

    def _chain(self, word: str, operand):
        parts = [operand()]
        while self.peek("kw", word):
            self.at += 1
            parts.append(operand())
        return parts[0] if len(parts) == 1 else BoolOp(word, parts)

    def expr(self):
        return self._chain("or", self.term)

    def term(self):
        return self._chain("and", self.factor)

    def factor(self):
        if self.peek("kw", "not"):
            self.at += 1
            return Not(self.factor())
        if self.peek("op", "("):
            self.at += 1
            node = self.expr()
            self.take("op", ")", "')'")
            return node
        return self.test()

    def value(self):
        if self.peek("op", "-"):
            self.at += 1
            token = self.take("literal", what="a number after '-'")
            if not isinstance(token[1], (int, float)) or isinstance(token[1], bool):
                self.fail("'-' before a non-number")
            return Literal(-token[1])
        token = self.peek("name") or self.peek("literal")
        if token is None:
            self.take("name", what="a column or a value")
        self.at += 1
        return Column(token[1]) if token[0] == "name" else Literal(token[1])

    def test(self):
        left = self.value()
        if self.peek("kw", "is"):
            self.at += 1
            negate = bool(self.peek("kw", "not"))
            self.at += negate
            self.take("kw", "null", "null")
            return IsNull(self._column(left, "is null"), negate)
        negate = bool(self.peek("kw", "not"))
        self.at += negate
        if self.peek("kw", "in"):
            self.at += 1
            self.take("op", "(", "'('")
            values = [self.value()]
            while self.peek("op", ","):
                self.at += 1
                values.append(self.value())
            self.take("op", ")", "')'")
            if not all(isinstance(v, Literal) for v in values):
                self.fail("'in' lists values, not columns")
            return In(self._column(left, "in"), [v.value for v in values], negate)
        if self.peek("kw", "like"):
            self.at += 1
            pattern = self.take("literal", what="a 'pattern'")[1]
            if not isinstance(pattern, str):
                self.fail("'like' needs a quoted pattern")
            return Like(self._column(left, "like"), pattern, negate)
        if negate:
            self.fail("'not' must be followed by 'in' or 'like' here")
        op = self.take("op", what="a comparison (== != < <= > >=)")[1]
        if op not in _COMPARE:
            self.fail(f"{op!r} is not a comparison")
        right = self.value()
        if not isinstance(left, Column) and not isinstance(right, Column):
            self.fail("a comparison needs a column on one side")
        return Compare(left, op, right)

    def _column(self, value, what):
        if not isinstance(value, Column):
            self.fail(f"'{what}' needs a column on its left")
        return value


def parse_where(text: str, flag: str = "--where") -> Node:
    """Parse one `--where` expression; UsageError (one line) on a syntax error."""
    return _Parser(text, flag).parse()


def glob_to_like(pattern: str) -> str:
    """A shell-style pattern (`dedup:*`) as SQL LIKE (`dedup:%`), LIKE's own marks escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
