"""Order-free bounds of pair predicates: which unordered pairs some pair rule can use.

The candidates stage keeps the pair rows where at least one active pair rule's predicate
holds (`compile_pair_rows`). Most of a dense scene's pairs fail every predicate, but that
is only known after the grid join has emitted both orders of the pair and computed their
order-dependent columns (offsets in each one's heading frame). A *box* is a necessary
condition on the values both orders share, so it can drop a pair before that work:

    distance <= max_distance AND heading_diff <= max_heading_diff
    AND least(speed, other_speed) >= min_least_speed
    AND greatest(speed, other_speed) >= min_greatest_speed

A predicate's bounds are a list of boxes (one per disjunct, "any of"). Every atom that
gives no order-free bound (bearing, rel_speed, `other_speed > speed`, a NOT, arithmetic)
is dropped, which only loosens a box: a box never refuses a row its predicate accepts
(tests/db/test_pair_rows.py checks that on scenes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import reduce

from sqlglot import exp

from .predicates import Predicate

INF = math.inf
MAX_BOXES = 4
"""Slots of features.pair_rows_of's p_boxes: more boxes are merged into one."""


@dataclass(frozen=True)
class Box:
    """A necessary condition on a pair's order-free values (see the module text)."""

    max_distance: float = INF
    max_heading_diff: float = INF
    min_least_speed: float = -INF
    min_greatest_speed: float = -INF

    def within(self, other: Box) -> bool:
        """Every pair this box admits, `other` admits too."""
        return (self.max_distance <= other.max_distance
                and self.max_heading_diff <= other.max_heading_diff
                and self.min_least_speed >= other.min_least_speed
                and self.min_greatest_speed >= other.min_greatest_speed)

    def both(self, other: Box) -> Box:
        """The pairs both boxes admit (AND)."""
        return Box(min(self.max_distance, other.max_distance),
                   min(self.max_heading_diff, other.max_heading_diff),
                   max(self.min_least_speed, other.min_least_speed),
                   max(self.min_greatest_speed, other.min_greatest_speed))

    def hull(self, other: Box) -> Box:
        """The smallest box that admits what either admits (a looser OR)."""
        return Box(max(self.max_distance, other.max_distance),
                   max(self.max_heading_diff, other.max_heading_diff),
                   min(self.min_least_speed, other.min_least_speed),
                   min(self.min_greatest_speed, other.min_greatest_speed))

    def values(self) -> tuple[float, float, float, float]:
        return (self.max_distance, self.max_heading_diff, self.min_least_speed,
                self.min_greatest_speed)


EVERY_PAIR = Box()


@dataclass(frozen=True)
class _Atoms:
    """What one conjunction says about the columns a box is made of."""

    box: Box = EVERY_PAIR
    lon: tuple[float, float] = (-INF, INF)   # lon_offset within [lo, hi]
    lat: tuple[float, float] = (-INF, INF)   # lat_offset within [lo, hi]
    speed: float = -INF                      # speed >= speed
    other: float = -INF                      # other_speed >= other

    def both(self, o: _Atoms) -> _Atoms:
        return _Atoms(self.box.both(o.box),
                      (max(self.lon[0], o.lon[0]), min(self.lon[1], o.lon[1])),
                      (max(self.lat[0], o.lat[0]), min(self.lat[1], o.lat[1])),
                      max(self.speed, o.speed), max(self.other, o.other))

    def hull(self, o: _Atoms) -> _Atoms:
        return _Atoms(self.box.hull(o.box),
                      (min(self.lon[0], o.lon[0]), max(self.lon[1], o.lon[1])),
                      (min(self.lat[0], o.lat[0]), max(self.lat[1], o.lat[1])),
                      min(self.speed, o.speed), min(self.other, o.other))

    def to_box(self) -> Box:
        b = self.box
        lon, lat = max(map(abs, self.lon)), max(map(abs, self.lat))
        if lon < INF and lat < INF:
            b = replace(b, max_distance=min(b.max_distance, math.hypot(lon, lat)))
        least = min(self.speed, self.other)
        greatest = max(self.speed, self.other)
        return b.both(Box(min_least_speed=least, min_greatest_speed=greatest))


_UPPER = (exp.LT, exp.LTE)
_LOWER = (exp.GT, exp.GTE)
_FLIP: dict[type[exp.Expression], type[exp.Expression]] = {
    exp.LT: exp.GT, exp.LTE: exp.GTE, exp.GT: exp.LT, exp.GTE: exp.LTE}


def _number(node: exp.Expression) -> float | None:
    if isinstance(node, exp.Paren):
        return _number(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this)
    if isinstance(node, exp.Neg):
        inner = _number(node.this)
        return None if inner is None else -inner
    return None


def _column(node: exp.Expression) -> tuple[str, bool] | None:
    """(column, under abs()) for `col` or `abs(col)`, else None."""
    if isinstance(node, exp.Paren):
        return _column(node.this)
    if isinstance(node, exp.Column):
        return node.name.lower(), False
    if isinstance(node, exp.Abs) and isinstance(node.this, exp.Column):
        return node.this.name.lower(), True
    return None


def _bound(col: str, is_abs: bool, lo: float, hi: float) -> _Atoms:
    """Atoms of `lo <= col <= hi` (or of abs(col))."""
    if col == "distance":
        return _Atoms(box=Box(max_distance=hi))
    if col == "heading_diff":
        return _Atoms(box=Box(max_heading_diff=hi))
    if col in ("lon_offset", "lat_offset"):
        # abs(x) <= hi is -hi <= x <= hi; abs(x) >= lo bounds nothing
        span = (-hi, hi) if is_abs else (lo, hi)
        return _Atoms(lon=span) if col == "lon_offset" else _Atoms(lat=span)
    if col == "speed":
        return _Atoms(speed=lo)
    if col == "other_speed":
        return _Atoms(other=lo)
    return _Atoms()


def _atoms(node: exp.Expression) -> list[_Atoms]:
    """Disjuncts of `node`, each as the atoms of a conjunction (loosened where needed)."""
    if isinstance(node, exp.Paren):
        return _atoms(node.this)
    if isinstance(node, exp.Or):
        return _atoms(node.this) + _atoms(node.expression)
    if isinstance(node, exp.And):
        left = reduce(_Atoms.hull, _atoms(node.this))
        right = reduce(_Atoms.hull, _atoms(node.expression))
        return [left.both(right)]
    if isinstance(node, exp.Between):
        col, lo, hi = _column(node.this), _number(node.args["low"]), _number(node.args["high"])
        if col is None or lo is None or hi is None:
            return [_Atoms()]
        return [_bound(col[0], col[1], lo, hi)]
    if isinstance(node, exp.Anonymous) and node.name.lower() == "cone":
        dist = _number(node.expressions[0])
        return [_Atoms(box=Box(max_distance=INF if dist is None else dist))]
    if type(node) in (*_UPPER, *_LOWER):
        op: type[exp.Expression] = type(node)
        left, right = node.this, node.expression
        if _column(left) is None:
            left, right, op = right, left, _FLIP[op]
        col, value = _column(left), _number(right)
        if col is None or value is None:
            return [_Atoms()]
        if op in _UPPER:
            return [_bound(col[0], col[1], -INF, value)]
        if col[1]:  # abs(x) >= v says nothing about an upper bound
            return [_Atoms()]
        return [_bound(col[0], False, value, INF)]
    return [_Atoms()]


def boxes(predicates: list[Predicate]) -> list[Box]:
    """The boxes of a pair row some predicate accepts (an OR over the predicates), without
    boxes inside another; [EVERY_PAIR] when some predicate bounds nothing."""
    found: list[Box] = []
    for pred in predicates:
        found += [a.to_box() for a in _atoms(pred.tree)]
    kept = [b for i, b in enumerate(found)
            if not any(b.within(o) and (b != o or j < i) for j, o in enumerate(found) if j != i)]
    if len(kept) > MAX_BOXES:
        kept = [reduce(Box.hull, kept)]
    return kept


def box_values(found: list[Box]) -> list[float]:
    """The boxes as features.pair_rows_of's p_boxes: four values per box."""
    return [v for b in found for v in b.values()]


def boxes_sql(found: list[Box]) -> str:
    """The p_boxes argument of features.pair_rows_of as SQL: NULL (every pair) or a float8
    array (`box_values`)."""
    if not found or any(b == EVERY_PAIR for b in found):
        return "NULL::float8[]"
    return "ARRAY[" + ", ".join(_float(v) for v in box_values(found)) + "]::float8[]"


def _float(v: float) -> str:
    if math.isinf(v):
        return "'Infinity'::float8" if v > 0 else "'-Infinity'::float8"
    return repr(float(v))
