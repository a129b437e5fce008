"""Pair rows computed when read (sql/402_features_relations.sql, migration 0013).

features.pair_rows() (the grid join the candidates stage and the view use) must return
exactly the pairs a brute-force join of every same-frame pair returns; the per-pair function
the scoring worker reads must give the same bits; and the candidates stage's fill, which
keeps only the rows some active pair rule can use, must leave every rule's candidates as they
are with every pair row kept.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from tests.support.scene_loader import load_sim, project, run_tick
from workers.rules import store
from workers.rules.compile import compile_pair_rows, pair_predicates
from workers.rules.ontology import DEFAULT_PATH, load_ontology, parse_ontology
from workers.rules.pair_bounds import box_values, boxes
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db

Conn = psycopg.Connection[dict[str, Any]]
COLUMNS = ("track_id, other_id, frame, ts, distance, bearing, lon_offset, lat_offset, speed, "
           "other_speed, rel_speed, approach_speed, heading_diff")


@pytest.fixture
def scene(db: Conn) -> tuple[str, int]:
    """A plaza scene (groups, crossings, a crowd) ticked through the feature stages."""
    pid = project(db)
    source = load_sim(db, pid, simulate(preset_config("plaza", seed=3, duration=40)))
    run_tick(db)
    return pid, source


def _set(db: Conn, sql: str, params: tuple[Any, ...]) -> set[tuple[Any, ...]]:
    return {tuple(r.values()) for r in db.execute(sql, params).fetchall()}


def test_the_grid_join_finds_every_close_pair_in_both_orders_and_nothing_else(
        db: Conn, scene: tuple[str, int]) -> None:
    _, source = scene
    grid = _set(db, "SELECT track_id, other_id, frame FROM features.pair_rows(%s, "
                "'-infinity', 'infinity')", (source,))
    brute = _set(db, """
        SELECT a.track_id, b.track_id AS other_id, a.frame
        FROM features.kinematics a
        JOIN features.kinematics b ON b.source_id = a.source_id AND b.frame = a.frame
                                  AND b.track_id <> a.track_id
        WHERE a.source_id = %s
          AND (b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y)
              < features.relation_radius(a.source_id) ^ 2""", (source,))
    assert len(grid) > 1000
    assert grid == brute
    # Both orders of every pair.
    assert grid == {(o, t, f) for t, o, f in grid}
    n = db.execute("SELECT count(*) AS n FROM features.pair_rows(%s, '-infinity', 'infinity')",
                   (source,)).fetchone()
    assert n == {"n": len(grid)}  # each (track, other, frame) once


def test_pair_key_names_one_ordered_pair_within_a_call(db: Conn, scene: tuple[str, int]) -> None:
    _, source = scene
    row = db.execute("""
        SELECT count(DISTINCT pair_key) AS keys,
               count(DISTINCT (track_id, other_id)) AS pairs,
               count(DISTINCT (pair_key, track_id, other_id)) AS both,
               count(*) FILTER (WHERE pair_key IS NULL) AS missing
        FROM features.pair_rows(%s, '-infinity', 'infinity')""", (source,)).fetchone()
    assert row is not None and row["pairs"] >= 10
    # one key per ordered pair and one pair per key: the rules partition by the key alone
    assert row == {"keys": row["pairs"], "pairs": row["pairs"], "both": row["pairs"],
                   "missing": 0}


def test_a_time_range_bounds_the_rows_and_the_view_returns_the_same_rows(
        db: Conn, scene: tuple[str, int]) -> None:
    _, source = scene
    whole = _set(db, f"SELECT {COLUMNS} FROM features.pair_rows(%s, '-infinity', 'infinity')",
                 (source,))
    view = _set(db, f"SELECT {COLUMNS} FROM features.relations WHERE source_id = %s",
                (source,))
    assert view == whole
    lo, hi = db.execute("SELECT min(ts) + interval '10 s' AS lo, min(ts) + interval '20 s' AS hi "
                        "FROM features.kinematics WHERE source_id = %s",
                        (source,)).fetchone().values()  # type: ignore[union-attr]
    part = _set(db, f"SELECT {COLUMNS} FROM features.pair_rows(%s, %s, %s)", (source, lo, hi))
    assert part and part == {r for r in whole if lo <= r[3] <= hi}


def test_the_per_pair_rows_of_the_scoring_worker_are_the_same_bits(
        db: Conn, scene: tuple[str, int]) -> None:
    _, source = scene
    pairs = db.execute("SELECT track_id, other_id, count(*) AS n FROM features.pair_rows(%s, "
                       "'-infinity', 'infinity') GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 12",
                       (source,)).fetchall()
    assert len(pairs) == 12
    for p in pairs:
        grid = db.execute(f"SELECT {COLUMNS} FROM features.pair_rows(%s, '-infinity', "
                          "'infinity') WHERE track_id = %s AND other_id = %s ORDER BY frame",
                          (source, p["track_id"], p["other_id"])).fetchall()
        one = db.execute(f"SELECT {COLUMNS} FROM features.pair_track_rows(%s, %s, %s, "
                         "'-infinity', 'infinity') ORDER BY frame",
                         (source, p["track_id"], p["other_id"])).fetchall()
        assert one == grid and len(one) == p["n"]


def _candidates(db: Conn, source: int, fill: str) -> list[tuple[Any, ...]]:
    """Every candidate the active rules make over the whole source with fill statement
    `fill`, rolled back."""
    try:
        db.execute("UPDATE rules.ontologies SET pair_rows_sql = %s WHERE active", (fill,))
        db.execute("SELECT candidates.run_rules(%s, '-infinity', 'infinity')", (source,))
        rows = db.execute("SELECT type, actors::text, start_ts, end_ts, rule_score, "
                          "evidence::text, tier FROM candidates.candidates "
                          "WHERE source_id = %s ORDER BY 1, 2, 3, 4", (source,)).fetchall()
        return [tuple(r.values()) for r in rows]
    finally:
        db.rollback()


def test_the_fill_keeps_every_row_a_pair_rule_reads(db: Conn, scene: tuple[str, int]) -> None:
    pid, source = scene
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    fill = db.execute("SELECT pair_rows_sql FROM rules.ontologies WHERE project_id = %s "
                      "AND active", (pid,)).fetchone()
    assert fill is not None and fill["pair_rows_sql"].startswith("INSERT INTO pg_temp.pair_rows")
    db.rollback()
    kept = _candidates(db, source, fill["pair_rows_sql"])
    every = _candidates(db, source, "INSERT INTO pg_temp.pair_rows SELECT r.* FROM "
                        "features.pair_rows($2, '-infinity', $4) r")
    pair_types = {"follow", "accompany", "overtake", "meet", "handover"}
    assert {c[0] for c in kept} & pair_types >= {"follow", "accompany", "meet"}
    assert kept == every
    # The filter is what makes it cheap: fewer rows than all of them (on this sparse scene of
    # groups 50 %; on UCY students001 + 003, 13 %).
    db.execute("SELECT candidates.fill_pair_rows(%s, %s, %s, '-infinity', 'infinity')",
               (fill["pair_rows_sql"], pid, source))
    n_kept = db.execute("SELECT count(*) AS n FROM pg_temp.pair_rows").fetchone()
    # meet reads one order of a close pair (symmetric); the other order of a close row is
    # kept only where a one-order rule (follow, accompany, overtake) can use it.
    close = db.execute("""
        SELECT count(*) FILTER (WHERE (length(track_id), track_id)
                                      < (length(other_id), other_id)) AS one,
               count(*) FILTER (WHERE (length(track_id), track_id)
                                      > (length(other_id), other_id)) AS other
        FROM pg_temp.pair_rows WHERE distance < 2.0""").fetchone()
    n_all = db.execute("SELECT count(*) AS n FROM features.pair_rows(%s, '-infinity', "
                       "'infinity')", (source,)).fetchone()
    db.rollback()
    assert n_kept is not None and n_all is not None and close is not None
    assert 0 < n_kept["n"] < n_all["n"]
    assert 0 < close["other"] < close["one"]


def test_an_ontology_without_pair_rules_has_no_fill(db: Conn) -> None:
    onto = parse_ontology("""
name: solo
version: 1
types:
  stop:
    family: movement
    kind: track_state
    roles: [actor]
    condition: speed < 0.2
    min_duration_s: 2.0
    max_gap_s: 0.3
""")
    assert compile_pair_rows(onto, 1) is None
    pid = project(db, "solo")
    store.load(db, pid, onto)
    row = db.execute("SELECT pair_rows_sql FROM rules.ontologies WHERE project_id = %s",
                     (pid,)).fetchone()
    assert row == {"pair_rows_sql": None}


ODD_PAIRS = """
name: odd-pairs
version: 1
types:
  behind_slower:
    family: interaction
    kind: pair_state
    roles: [a, b]
    condition: 0.3 < speed and other_speed > speed and heading_diff <= 60
    min_duration_s: 1.0
    max_gap_s: 0.5
  in_cone:
    family: interaction
    kind: pair_state
    roles: [a, b]
    condition: cone(4.0, 30) and not (rel_speed > 1.0)
    min_duration_s: 1.0
    max_gap_s: 0.5
  boxed:
    family: interaction
    kind: pair_state
    roles: [a, b]
    condition: lat_offset between -1.0 and 2.0 and lon_offset >= -3 and lon_offset <= 3
    hysteresis: abs(lat_offset) < 2.5 and abs(lon_offset) < 3.5 or distance < 1.0
    min_duration_s: 1.0
    max_gap_s: 0.5
"""


def _kept_rows(db: Conn, pid: str, source: int, fill: str) -> set[tuple[Any, ...]]:
    """The rows the fill statement keeps over the whole source, rolled back."""
    try:
        db.execute("SELECT candidates.fill_pair_rows(%s, %s, %s, '-infinity', 'infinity')",
                   (fill, pid, source))
        return _set(db, f"SELECT {COLUMNS} FROM pg_temp.pair_rows", ())
    finally:
        db.rollback()


@pytest.mark.parametrize("ontology", ["default", "odd"])
def test_the_pair_boxes_drop_no_row_a_predicate_keeps(db: Conn, scene: tuple[str, int],
                                                       ontology: str) -> None:
    """The boxes the fill passes to features.pair_rows_of (workers/rules/pair_bounds.py) are
    a necessary condition: the fill keeps the same rows without them."""
    pid, source = scene
    onto = load_ontology(DEFAULT_PATH) if ontology == "default" else parse_ontology(ODD_PAIRS)
    fill = compile_pair_rows(onto, 1)
    assert fill is not None and "ARRAY[" in fill
    unboxed = re.sub(r"ARRAY\[[^\]]*\]::float8\[\]", "NULL::float8[]", fill)
    assert unboxed != fill
    boxed_rows = _kept_rows(db, pid, source, fill)
    assert len(boxed_rows) > 100
    assert boxed_rows == _kept_rows(db, pid, source, unboxed)
    # and the boxes do drop pairs before both orders are made
    n_boxed = db.execute("SELECT count(*) AS n FROM features.pair_rows_of(%s, '-infinity', "
                         "'infinity', NULL, %s)",
                         (source, box_values(boxes(pair_predicates(onto))))).fetchone()
    n_all = db.execute("SELECT count(*) AS n FROM features.pair_rows(%s, '-infinity', "
                       "'infinity')", (source,)).fetchone()
    db.rollback()
    assert n_boxed is not None and n_all is not None and n_boxed["n"] < n_all["n"]
