"""Rule conditions: SQL-like predicates over feature columns, parsed with sqlglot.

A predicate such as ``speed < 0.3 and heading_diff < 20`` is parsed into a sqlglot tree,
checked node by node against an allow-list (columns of one feature table, comparison,
boolean and arithmetic operators, a few functions, numeric literals) and rendered back to
SQL *from the tree*: column names come from the allow-list, numbers are re-printed from
Python floats, so no user text ever reaches the generated SQL.

Besides the boolean SQL, every predicate renders a *margin* expression in [0, 1]: how far a
row is inside the condition, relative to each threshold (used by the rule score).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from workers.errors import UserError

# Columns a predicate may name, per feature table (docs/pipeline.md has their meaning).
COLUMNS: dict[str, frozenset[str]] = {
    "kinematics": frozenset({
        "x", "y", "dt", "vx", "vy", "speed", "accel", "jerk", "heading", "turn_rate",
        "curvature",
    }),
    "relations": frozenset({
        "distance", "bearing", "lon_offset", "lat_offset", "speed", "other_speed",
        "rel_speed", "approach_speed", "heading_diff",
    }),
}
# name -> (min args, max args); cone() is only meaningful on relations.
FUNCTIONS: dict[str, tuple[int, int]] = {
    "abs": (1, 1), "least": (2, 8), "greatest": (2, 8), "sqrt": (1, 1), "cone": (2, 2),
}
_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">=", exp.EQ: "=", exp.NEQ: "<>",
}
_ARITHMETIC: dict[type[exp.Expression], str] = {
    exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/",
}
MAX_LENGTH = 2000
MAX_NODES = 400


class PredicateError(UserError):
    """The rule condition is not an allowed predicate."""


@dataclass(frozen=True)
class Predicate:
    """A checked predicate: its source text, the columns it reads and its rendered SQL."""

    text: str
    table: str
    columns: frozenset[str]
    tree: exp.Expression

    def sql(self, alias: str) -> str:
        """Boolean SQL over `alias`'s columns."""
        return _Renderer(self.table, alias).boolean(self.tree)

    def margin_sql(self, alias: str) -> str:
        """SQL for the margin in [0, 1] of a row inside the condition (0 where false)."""
        r = _Renderer(self.table, alias)
        return f"LEAST(1.0, GREATEST(0.0, {r.margin(self.tree)}))"


def parse_predicate(text: str, table: str) -> Predicate:
    """Parse and check `text` against the allow-list of `table`; raise PredicateError."""
    if table not in COLUMNS:
        raise PredicateError(f"unknown feature table {table!r}; use one of {sorted(COLUMNS)}")
    if not isinstance(text, str) or not text.strip():
        raise PredicateError("a condition must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise PredicateError(f"condition is longer than {MAX_LENGTH} characters")
    try:
        trees = sqlglot.parse(text, read="postgres")
    # sqlglot raises ValueError on some statements it half parses (`GRANT` alone)
    except (SqlglotError, ValueError) as exc:
        raise PredicateError(f"cannot parse condition {text!r}: {_first_line(exc)}") from exc
    found = [t for t in trees if t is not None]
    if len(found) != 1:
        raise PredicateError(f"condition {text!r} must be one expression, not {len(found)}")
    tree: exp.Expression = found[0]
    nodes = list(tree.walk())
    if len(nodes) > MAX_NODES:
        raise PredicateError(f"condition {text!r} is too complex (> {MAX_NODES} nodes)")
    columns = frozenset(_check(tree, table, text))
    if not _is_boolean(tree):
        raise PredicateError(f"condition {text!r} is not a boolean expression "
                             "(use a comparison such as `speed < 0.3`)")
    return Predicate(text=text, table=table, columns=columns, tree=tree)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _is_boolean(node: exp.Expression) -> bool:
    if isinstance(node, exp.Paren):
        return _is_boolean(node.this)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "cone":
        return True
    if isinstance(node, exp.Boolean):
        return True
    # the operands of AND, OR and NOT must be boolean too (`NOT 0` is refused here, not
    # when the rule is compiled)
    if isinstance(node, (exp.And, exp.Or)):
        return _is_boolean(node.this) and _is_boolean(node.expression)
    if isinstance(node, exp.Not):
        return _is_boolean(node.this)
    return isinstance(node, (exp.Between, *_COMPARISONS))


def _check(node: exp.Expression, table: str, text: str) -> list[str]:
    """Walk the tree; refuse any node that is not allow-listed; return the columns."""
    cols: list[str] = []
    if isinstance(node, exp.Column):
        if node.table or not isinstance(node.this, exp.Identifier) or node.this.quoted:
            raise PredicateError(f"condition {text!r}: column {node.sql()!r} must be a "
                                 "plain, unqualified feature name")
        name = node.name.lower()
        if name not in COLUMNS[table]:
            raise PredicateError(
                f"condition {text!r}: column {name!r} is not a {table} feature; "
                f"allowed: {', '.join(sorted(COLUMNS[table]))}")
        return [name]
    if isinstance(node, exp.Literal):
        if node.is_string:
            raise PredicateError(f"condition {text!r}: string literals are not allowed")
        _number(node, text)
        return cols
    if isinstance(node, exp.Boolean):
        return cols
    if isinstance(node, (exp.And, exp.Or, exp.Paren, exp.Not, exp.Neg, exp.Between,
                         *_COMPARISONS, *_ARITHMETIC)):
        for child in _children(node):
            cols += _check(child, table, text)
        return cols
    if isinstance(node, (exp.Abs, exp.Sqrt, exp.Anonymous, exp.Greatest, exp.Least)):
        name = _func_name(node)
        args = _children(node)
        lo, hi = FUNCTIONS[name]
        if not lo <= len(args) <= hi:
            raise PredicateError(f"condition {text!r}: {name}() takes {lo}..{hi} arguments")
        if name == "cone":
            if table != "relations":
                raise PredicateError(f"condition {text!r}: cone() needs relations features")
            if not all(isinstance(a, exp.Literal) and not a.is_string for a in args):
                raise PredicateError(f"condition {text!r}: cone(distance, degrees) takes "
                                     "numbers")
        for child in args:
            cols += _check(child, table, text)
        return cols
    raise PredicateError(f"condition {text!r}: {_describe(node)} is not allowed; use "
                         "feature columns, numbers, comparisons, and/or/not, between, "
                         f"+ - * / and the functions {', '.join(sorted(FUNCTIONS))}")


def _describe(node: exp.Expression) -> str:
    if isinstance(node, (exp.Func, exp.Anonymous)):
        return f"function {node.sql()[:40]!r}"
    return f"{type(node).__name__.lower()} {node.sql()[:40]!r}"


def _func_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        if name not in FUNCTIONS:
            raise PredicateError(f"function {name!r} is not allowed; allowed: "
                                 f"{', '.join(sorted(FUNCTIONS))}")
        return name
    names: dict[type[exp.Expression], str] = {
        exp.Abs: "abs", exp.Sqrt: "sqrt", exp.Greatest: "greatest", exp.Least: "least"}
    return names[type(node)]


def _children(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Between):
        return [node.this, node.args["low"], node.args["high"]]
    if isinstance(node, (exp.Greatest, exp.Least)):
        return [node.this, *node.expressions]
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    out = [node.this] if isinstance(node.this, exp.Expression) else []
    if isinstance(node.args.get("expression"), exp.Expression):
        out.append(node.args["expression"])
    return out


def _number(node: exp.Literal, text: str) -> float:
    try:
        value = float(node.this)
    except ValueError as exc:
        raise PredicateError(f"condition {text!r}: {node.this!r} is not a number") from exc
    if not math.isfinite(value):
        raise PredicateError(f"condition {text!r}: {node.this!r} is not a finite number")
    return value


def _fmt(value: float) -> str:
    return f"({value!r}::float8)"


class _Renderer:
    """Renders a checked tree to SQL; only allow-listed spellings are ever emitted."""

    def __init__(self, table: str, alias: str) -> None:
        if not alias.isidentifier() or not alias.islower():
            raise ValueError(f"bad alias {alias!r}")
        self.table = table
        self.alias = alias

    def value(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Column):
            name = node.name.lower()
            canonical = next(c for c in COLUMNS[self.table] if c == name)
            return f"{self.alias}.{canonical}"
        if isinstance(node, exp.Literal):
            return _fmt(float(node.this))
        if isinstance(node, exp.Paren):
            return f"({self.value(node.this)})"
        if isinstance(node, exp.Neg):
            return f"(-{self.value(node.this)})"
        if type(node) in _ARITHMETIC:
            op = _ARITHMETIC[type(node)]
            right = self.value(node.expression)
            if op == "/":
                right = f"NULLIF({right}, 0)"
            return f"({self.value(node.this)} {op} {right})"
        if isinstance(node, (exp.Abs, exp.Sqrt, exp.Greatest, exp.Least)):
            fn = _func_name(node).upper()
            args = ", ".join(self.value(a) for a in _children(node))
            return f"{fn}({args})"
        return f"(CASE WHEN {self.boolean(node)} THEN 1.0 ELSE 0.0 END)"

    def boolean(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Paren):
            return f"({self.boolean(node.this)})"
        if isinstance(node, exp.And):
            return f"({self.boolean(node.this)} AND {self.boolean(node.expression)})"
        if isinstance(node, exp.Or):
            return f"({self.boolean(node.this)} OR {self.boolean(node.expression)})"
        if isinstance(node, exp.Not):
            return f"(NOT {self.boolean(node.this)})"
        if isinstance(node, exp.Boolean):
            return "TRUE" if node.this else "FALSE"
        if isinstance(node, exp.Between):
            x, lo, hi = (self.value(c) for c in _children(node))
            return f"({x} BETWEEN {lo} AND {hi})"
        if type(node) in _COMPARISONS:
            op = _COMPARISONS[type(node)]
            return f"({self.value(node.this)} {op} {self.value(node.expression)})"
        if isinstance(node, exp.Anonymous) and node.name.lower() == "cone":
            dist, theta = (float(a.this) for a in node.expressions)
            a = self.alias
            return (f"({a}.distance <= {_fmt(dist)} AND {a}.lon_offset > 0 AND "
                    f"degrees(atan2(abs({a}.lat_offset), {a}.lon_offset)) <= {_fmt(theta)})")
        raise PredicateError(f"{node.sql()[:40]!r} is not a boolean expression")

    def margin(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Paren):
            return self.margin(node.this)
        if isinstance(node, exp.And):
            return f"LEAST({self.margin(node.this)}, {self.margin(node.expression)})"
        if isinstance(node, exp.Or):
            return f"GREATEST({self.margin(node.this)}, {self.margin(node.expression)})"
        if isinstance(node, exp.Between):
            x, lo, hi = (self.value(c) for c in _children(node))
            return (f"(LEAST({x} - {lo}, {hi} - {x}) / "
                    f"GREATEST(abs({hi} - {lo}) / 2.0, 1e-9))")
        if type(node) in (exp.LT, exp.LTE, exp.GT, exp.GTE):
            left, right = self.value(node.this), self.value(node.expression)
            diff = f"({right} - {left})" if type(node) in (exp.LT, exp.LTE) \
                else f"({left} - {right})"
            scale = next((abs(_number(n, "")) for n in (node.this, node.expression)
                          if isinstance(n, exp.Literal)), 1.0)
            return f"({diff} / {_fmt(max(scale, 1e-3))})"
        return f"(CASE WHEN {self.boolean(node)} THEN 1.0 ELSE 0.0 END)"
