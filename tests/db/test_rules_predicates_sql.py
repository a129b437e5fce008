"""Rendered predicates evaluate in Postgres as written (incl. the cone test and margins)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from workers.rules.predicates import parse_predicate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

# (distance, lon_offset, lat_offset, speed, other_speed, heading_diff)
ROWS = [
    (3.0, 3.0, 0.0, 1.2, 1.1, 5.0),     # straight ahead
    (4.0, 2.0, 3.46, 1.2, 1.1, 5.0),    # ahead-left at 60°
    (3.0, -3.0, 0.0, 0.1, 1.1, 170.0),  # behind
    (9.0, 9.0, 0.0, 1.2, 0.2, 5.0),     # ahead but far
]


def _eval(db: Conn, text: str) -> list[tuple[bool, float]]:
    p = parse_predicate(text, "relations")
    values = ", ".join(["(%s::float8, %s::float8, %s::float8, %s::float8, %s::float8, "
                        "%s::float8, %s::int)"] * len(ROWS))
    params = [v for i, row in enumerate(ROWS) for v in (*row, i)]
    rows = db.execute(
        f"SELECT {p.sql('r')} AS ok, {p.margin_sql('r')} AS m FROM (VALUES {values}) "
        "AS r (distance, lon_offset, lat_offset, speed, other_speed, heading_diff, i) "
        "ORDER BY i", params).fetchall()
    return [(r["ok"], float(r["m"])) for r in rows]


def test_cone(db: Conn) -> None:
    assert [ok for ok, _ in _eval(db, "cone(5, 30)")] == [True, False, False, False]
    assert [ok for ok, _ in _eval(db, "cone(5, 65)")] == [True, True, False, False]
    assert [ok for ok, _ in _eval(db, "cone(10, 65)")] == [True, True, False, True]


def test_conditions_and_margins(db: Conn) -> None:
    out = _eval(db, "speed > 0.5 and other_speed > 0.5 and heading_diff < 20")
    assert [ok for ok, _ in out] == [True, True, False, False]
    assert out[0][1] == pytest.approx(min((1.2 - 0.5) / 0.5, (1.1 - 0.5) / 0.5, 15 / 20))
    assert out[2][1] == 0.0
    out = _eval(db, "abs(lat_offset) between 0.4 and 2.0 or distance / 2 >= 4")
    assert [ok for ok, _ in out] == [False, False, False, True]
