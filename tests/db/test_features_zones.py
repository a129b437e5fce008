"""features.zone_presence: hysteresis turns a jittery border crossing into one interval."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest

from tests.support.scene_loader import load_tracks, project, run_tick, set_setting

pytestmark = pytest.mark.db
FPS = 10.0
ZONE = [{"name": "hall", "kind": "zone", "polygon": [[10, -5], [20, -5], [20, 5], [10, 5]]}]


def _walker() -> pl.DataFrame:
    frames = np.arange(300)
    t = frames / FPS
    # 1 m/s along x through the zone, with ±0.3 m jitter: ~6 frames flicker at each border.
    x = t + 0.3 * np.where(frames % 2 == 0, 1.0, -1.0)
    return pl.DataFrame({"track_id": "w", "frame": frames, "t": t, "x": x, "y": np.zeros(300)})


def _intervals(db: psycopg.Connection[dict[str, Any]], source: int) -> list[dict[str, Any]]:
    return db.execute("SELECT zone_name, entered_frame, left_frame, entered_at, left_at"
                      " FROM features.zone_presence WHERE source_id = %s ORDER BY entered_frame",
                      (source,)).fetchall()


def test_jitter_at_the_border_gives_one_enter_and_one_exit(
        db: psycopg.Connection[dict[str, Any]]) -> None:
    set_setting(db, "smoothing_s", 0)
    source = load_tracks(db, project(db), _walker(), FPS, zones=ZONE)
    run_tick(db)
    rows = _intervals(db, source)
    assert len(rows) == 1
    # Entered at the first frame of the first run of ≥ 10 inside frames (x ≥ 10 from 10.3 s on).
    assert rows[0]["zone_name"] == "hall"
    assert 98 <= rows[0]["entered_frame"] <= 104
    assert 198 <= rows[0]["left_frame"] <= 204


def test_without_hysteresis_the_jitter_shows(db: psycopg.Connection[dict[str, Any]]) -> None:
    set_setting(db, "smoothing_s", 0)
    set_setting(db, "hysteresis_frames", 1)
    source = load_tracks(db, project(db), _walker(), FPS, zones=ZONE)
    run_tick(db)
    assert len(_intervals(db, source)) > 2


def test_still_inside_at_the_end_of_the_data_has_no_left_at(
        db: psycopg.Connection[dict[str, Any]]) -> None:
    set_setting(db, "smoothing_s", 0)
    source = load_tracks(db, project(db), _walker().filter(pl.col("frame") < 150), FPS,
                         zones=ZONE)
    run_tick(db)
    rows = _intervals(db, source)
    assert len(rows) == 1 and rows[0]["left_at"] is None and rows[0]["left_frame"] is None
