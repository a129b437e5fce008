"""features.kinematics on analytic trajectories and against the Polars reference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pytest

from tests.support.scene_loader import load_sim, load_tracks, project, run_tick, set_setting
from workers.pipeline.reference import kinematics as reference_kinematics
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
FPS = 10.0


def _track(track_id: str, xy: np.ndarray, frames: np.ndarray | None = None) -> pl.DataFrame:
    frames = np.arange(len(xy)) if frames is None else frames
    return pl.DataFrame({"track_id": track_id, "frame": frames.astype(np.int64),
                         "t": frames / FPS, "x": xy[:, 0], "y": xy[:, 1]})


def _rows(db: psycopg.Connection[dict[str, Any]], source: int, track: str) -> list[dict[str, Any]]:
    return db.execute("SELECT * FROM features.kinematics WHERE source_id = %s AND track_id = %s "
                      "ORDER BY frame", (source, track)).fetchall()


def test_circle_line_stop_and_gap(db: psycopg.Connection[dict[str, Any]]) -> None:
    set_setting(db, "smoothing_s", 0)
    t = np.arange(300) / FPS
    r, v, a = 10.0, 2.0, 0.5
    circle = np.c_[r * np.cos(v / r * t), r * np.sin(v / r * t)]
    line = np.c_[0.5 * a * t**2, np.zeros_like(t)]
    stop = np.c_[np.full(50, 3.0), np.full(50, 4.0)]
    frames = np.r_[np.arange(0, 100), np.arange(120, 200)]
    gapped = np.c_[frames * 0.1, np.zeros(len(frames))]
    tracks = pl.concat([_track("circle", circle), _track("line", line), _track("stop", stop),
                        _track("gap", gapped, frames)])
    source = load_tracks(db, project(db), tracks, FPS)
    run_tick(db)

    rows = _rows(db, source, "circle")[3:]
    assert all(x["speed"] == pytest.approx(v, rel=1e-3) for x in rows)
    assert all(x["curvature"] == pytest.approx(1 / r, rel=1e-3) for x in rows)
    assert all(x["turn_rate"] == pytest.approx(math.degrees(v / r), rel=1e-3) for x in rows)
    assert all(abs(x["accel"]) < 1e-6 and abs(x["jerk"]) < 1e-4 for x in rows)
    # Heading is the direction of travel: tangent, 90° ahead of the radius (counter-clockwise).
    for x in rows:
        want = math.degrees(math.atan2(x["y"], x["x"])) + 90 - math.degrees(v / r / FPS / 2)
        assert ((x["heading"] - want + 180) % 360) - 180 == pytest.approx(0, abs=1e-6)

    rows = _rows(db, source, "line")
    assert rows[0]["vx"] is None and rows[1]["accel"] is None and rows[2]["jerk"] is None
    assert all(x["accel"] == pytest.approx(a, abs=1e-9) for x in rows[2:])
    assert all(abs(x["jerk"]) < 1e-6 for x in rows[3:])
    assert all(x["heading"] == 0.0 and x["turn_rate"] == 0.0 for x in rows[2:])

    rows = _rows(db, source, "stop")
    assert all(x["speed"] == 0.0 and x["heading"] is None and x["curvature"] is None
               for x in rows[1:])

    rows = _rows(db, source, "gap")
    assert [x["segment"] for x in rows] == [0] * 100 + [1] * 80
    assert rows[100]["dt"] is None and rows[100]["vx"] is None
    assert rows[101]["dt"] == pytest.approx(0.1)


def test_every_column_matches_the_polars_reference(db: psycopg.Connection[dict[str, Any]]) -> None:
    result = simulate(preset_config("plaza", seed=3, duration=60))
    source = load_sim(db, project(db), result)
    run_tick(db)
    got = pl.DataFrame(db.execute(
        "SELECT track_id, frame, extract(epoch FROM ts - '2026-01-01Z')::float8 AS t, segment, dt,"
        " x, y, vx, vy, speed, accel, jerk, heading, turn_rate, curvature"
        " FROM features.kinematics WHERE source_id = %s", (source,)).fetchall(),
        infer_schema_length=None).sort("track_id", "frame")
    points = pl.DataFrame(db.execute(
        "SELECT track_id, frame, extract(epoch FROM ts - '2026-01-01Z')::float8 AS t, x, y"
        " FROM ingest.track_points WHERE source_id = %s", (source,)).fetchall())
    want = reference_kinematics(points, smoothing_s=1.0, gap_s=1.0).sort("track_id", "frame")
    assert got.height == want.height == result.tracks.height
    assert got["segment"].to_list() == want["segment"].to_list()
    tolerance = {"dt": 1e-9, "x": 1e-9, "y": 1e-9, "vx": 1e-7, "vy": 1e-7, "speed": 1e-7,
                 "accel": 1e-5, "jerk": 1e-3, "heading": 1e-6, "turn_rate": 1e-4,
                 "curvature": 1e-4}
    for column, tol in tolerance.items():
        a, b = got[column].to_numpy().astype(float), want[column].to_numpy().astype(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        ok = ~np.isnan(a)
        assert np.allclose(a[ok], b[ok], rtol=tol, atol=tol), column
