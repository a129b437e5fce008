"""plpython/change_points.py outside Postgres: CUSUM on known series."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[2] / "plpython" / "change_points.py"
_spec = importlib.util.spec_from_file_location("change_points", _PATH)
assert _spec is not None and _spec.loader is not None
cp = importlib.util.module_from_spec(_spec)
sys.modules["change_points"] = cp
_spec.loader.exec_module(cp)

PARAMS = cp.CusumParams(k=0.15, h=2.0, warmup=10)


def test_step_up_is_found_where_it_starts() -> None:
    rng = np.random.default_rng(1)
    x = np.r_[np.full(60, 1.0), np.full(60, 2.0)] + rng.normal(0, 0.05, 120)
    found = cp.cusum(x, PARAMS)
    assert len(found) == 1
    assert abs(found[0].index - 60) <= 1
    assert found[0].direction == 1
    assert 0.7 < found[0].magnitude < 1.3
    assert found[0].score > 1.0


def test_step_down_then_up_gives_two_opposite_changes() -> None:
    x = np.r_[np.full(40, 1.4), np.full(40, 0.0), np.full(40, 1.4)]
    found = cp.cusum(x, PARAMS)
    assert [(c.index, c.direction) for c in found] == [(40, -1), (80, 1)]


def test_constant_and_noise_below_drift_give_nothing() -> None:
    rng = np.random.default_rng(2)
    assert cp.cusum(np.full(200, 1.3), PARAMS) == []
    assert cp.cusum(1.3 + rng.normal(0, 0.03, 500), PARAMS) == []


def test_short_series_give_nothing() -> None:
    assert cp.cusum(np.r_[np.zeros(5), np.ones(5)], PARAMS) == []


def test_heading_is_unwrapped_across_the_dateline() -> None:
    heading = np.array([170.0, 175.0, -180.0, -175.0, -170.0])
    assert np.allclose(cp.unwrap_degrees(heading), [170, 175, 180, 185, 190])


def test_detect_maps_indices_per_track_and_skips_slow_headings() -> None:
    tracks = ["a"] * 60 + ["b"] * 60
    segments = [0] * 120
    speed: list[float | None] = [None] + [1.0] * 29 + [2.5] * 30 + [None] + [1.0] * 59
    # b turns by 90 degrees at its 30th sample; a's heading jumps only while it is slow.
    heading: list[float | None] = ([None] + [0.0] * 59 + [None] + [0.0] * 29 + [90.0] * 30)
    rows = cp.detect(tracks, segments, speed, heading, PARAMS,
                     cp.CusumParams(k=8.0, h=150.0, warmup=10), 0.3)
    assert (31, "speed", 1) in [(r[0], r[1], r[2]) for r in rows]
    assert (91, "heading", 1) in [(r[0], r[1], r[2]) for r in rows]
    assert len(rows) == 2


def test_group_bounds_split_on_track_and_segment() -> None:
    assert cp.group_bounds(["a", "a", "a", "b"], [0, 0, 1, 0]) == [(0, 2), (2, 3), (3, 4)]
