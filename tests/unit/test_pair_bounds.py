"""Order-free boxes of pair predicates (workers/rules/pair_bounds.py); that they never drop
a row a predicate keeps is checked on scenes in tests/db/test_pair_rows.py."""

from __future__ import annotations

import math

import pytest

from workers.rules.compile import pair_predicates
from workers.rules.ontology import DEFAULT_PATH, load_ontology
from workers.rules.pair_bounds import EVERY_PAIR, INF, MAX_BOXES, Box, boxes, boxes_sql
from workers.rules.predicates import parse_predicate


def _boxes(*texts: str) -> list[Box]:
    return boxes([parse_predicate(t, "relations") for t in texts])


@pytest.mark.parametrize(("text", "box"), [
    ("distance < 2.0", Box(max_distance=2.0)),
    ("distance between 1 and 3", Box(max_distance=3.0)),
    ("heading_diff <= 30 and distance < 9", Box(max_distance=9.0, max_heading_diff=30.0)),
    ("abs(lon_offset) < 1.3 and abs(lat_offset) <= 2.0",
     Box(max_distance=math.hypot(1.3, 2.0))),
    ("lon_offset between -8.5 and -1.2 and abs(lat_offset) < 1.3",
     Box(max_distance=math.hypot(8.5, 1.3))),
    ("lat_offset between -1 and 2 and lon_offset >= -3 and lon_offset <= 3",
     Box(max_distance=math.hypot(3.0, 2.0))),
    ("speed > 0.5 and other_speed > 0.4",
     Box(min_least_speed=0.4, min_greatest_speed=0.5)),
    ("0.5 < speed", Box(min_greatest_speed=0.5)),
    ("cone(4.0, 30)", Box(max_distance=4.0)),
])
def test_one_conjunction_gives_one_box(text: str, box: Box) -> None:
    assert _boxes(text) == [box]


@pytest.mark.parametrize("text", [
    "lon_offset <= -2.0",                    # one side only: no bound on the distance
    "distance > 3.0",
    "not (distance > 3.0)",                  # NOT is not analysed: no bound, never wrong
    "other_speed > speed",
    "rel_speed < 0.5 and approach_speed < 0",
    "abs(lat_offset) < 1.0",                 # |lat| alone leaves lon free
    "distance < 2.0 or lon_offset > 1.0",    # one free disjunct frees the OR
])
def test_what_bounds_nothing_keeps_every_pair(text: str) -> None:
    assert _boxes(text) == [EVERY_PAIR]
    assert boxes_sql(_boxes(text)) == "NULL::float8[]"


def test_an_or_gives_a_box_per_disjunct_and_drops_boxes_inside_others() -> None:
    found = _boxes("distance < 2.0 or (heading_diff < 45 and speed > 0.5 and other_speed > 0.5)",
                   "distance < 1.0")
    assert found == [Box(max_distance=2.0),
                     Box(max_heading_diff=45.0, min_least_speed=0.5, min_greatest_speed=0.5)]


def test_an_and_over_ors_takes_the_hull_of_each_side() -> None:
    found = _boxes("(distance < 2.0 or distance < 3.0) and (heading_diff < 10 or "
                   "heading_diff < 20)")
    assert found == [Box(max_distance=3.0, max_heading_diff=20.0)]


def test_more_boxes_than_slots_merge_into_one() -> None:
    texts = [f"distance < {d} and heading_diff < {60 - 10 * d}" for d in range(1, MAX_BOXES + 2)]
    found = _boxes(*texts)
    assert found == [Box(max_distance=float(MAX_BOXES + 1), max_heading_diff=50.0)]


def test_the_default_ontology_has_three_boxes() -> None:
    found = boxes(pair_predicates(load_ontology(DEFAULT_PATH)))
    assert found == [
        Box(math.hypot(8.5, 1.3), 40.0, 0.4, 0.4),   # follow (its hysteresis)
        Box(2.5, INF, -INF, -INF),                    # accompany's bridge, meet's hysteresis
        Box(INF, 45.0, 0.5, 0.5),                     # overtake's during
    ]
    sql = boxes_sql(found)
    assert sql.startswith("ARRAY[") and sql.count(",") == 11
    assert "'Infinity'::float8" in sql and "'-Infinity'::float8" in sql
