"""pipeline.tick(): result invariance over pieces, no-op re-runs, the lock, status and errors."""

from __future__ import annotations

import itertools
from typing import Any

import polars as pl
import psycopg
import pytest

from tests.support.scene_loader import load_sim, project, run_tick
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db

TABLES = {
    "kinematics": ("track_id, frame", "segment, dt, x, y, vx, vy, speed, accel, jerk, heading, "
                   "turn_rate, curvature"),
    "relations": ("track_id, other_id, frame", "distance, bearing, lon_offset, lat_offset, speed, "
                  "other_speed, rel_speed, approach_speed, heading_diff"),
    "zone_presence": ("track_id, zone_name, entered_frame", "left_frame, entered_at, left_at"),
    "change_points": ("track_id, signal, frame", "direction, magnitude, score"),
}


def _table(db: psycopg.Connection[dict[str, Any]], table: str, source: int) -> pl.DataFrame:
    key, cols = TABLES[table]
    rows = db.execute(f"SELECT {key}, {cols} FROM features.{table} WHERE source_id = %s "
                      f"ORDER BY {key}", (source,)).fetchall()
    return pl.DataFrame(rows, infer_schema_length=None)


def _assert_same(db: psycopg.Connection[dict[str, Any]], a: int, b: int) -> None:
    for table in TABLES:
        x, y = _table(db, table, a), _table(db, table, b)
        assert x.height == y.height and x.height > 0, table
        for col in x.columns:
            if x[col].dtype.is_float():
                diff = (x[col] - y[col]).abs().max()
                assert diff is None or diff <= 1e-9, (table, col, diff)
                assert x[col].is_null().to_list() == y[col].is_null().to_list(), (table, col)
            else:
                assert x[col].to_list() == y[col].to_list(), (table, col)


@pytest.mark.slow
def test_one_big_tick_equals_many_small_ones_in_any_order(
        db: psycopg.Connection[dict[str, Any]]) -> None:
    result = simulate(preset_config("plaza", seed=5, duration=60))
    pid = project(db)
    whole = load_sim(db, pid, result, name="whole")
    run_tick(db)
    bounds = [0, 9.0, 21.5, 30.0, 44.0, 61.0]
    pieces = [result.tracks.filter((pl.col("t") >= lo) & (pl.col("t") < hi))
              for lo, hi in itertools.pairwise(bounds)]
    order = [0, 2, 1, 4, 3]          # piece 1 and 3 arrive late, below the high-water mark
    source = load_sim(db, pid, result, pieces=[], name="pieces")
    from workers.pipeline.scene_copy import _origin, copy_points
    dirty = 0
    for i in order:
        copy_points(db, pid, source, pieces[i], _origin(result.scene), f"piece-{i}")
        out = run_tick(db)
        dirty += sum(s["dirty"] for s in out["sources"])
    assert dirty >= 2
    _assert_same(db, whole, source)


def test_rerun_is_a_noop_and_status_reports(db: psycopg.Connection[dict[str, Any]]) -> None:
    result = simulate(preset_config("corridor", seed=1, duration=30))
    source = load_sim(db, project(db), result)
    first = run_tick(db)
    assert first["sources"][0]["points"] == result.tracks.height
    again = run_tick(db)
    assert again == {"busy": False, "sources": [], "more": False}
    status = db.execute("SELECT * FROM pipeline.status WHERE source_id = %s", (source,)).fetchone()
    assert status is not None
    assert status["watermark"] == status["newest"] and status["dirty_pending"] == 0
    assert status["last_status"] == "ok" and status["last_error"] is None


def test_scheduled_tick_leaves_the_settle_margin(db: psycopg.Connection[dict[str, Any]]) -> None:
    result = simulate(preset_config("corridor", seed=1, duration=30))
    source = load_sim(db, project(db), result)
    run_tick(db, until_idle=False)
    row = db.execute("SELECT newest - watermark AS lag FROM pipeline.status WHERE source_id = %s",
                     (source,)).fetchone()
    assert row is not None and row["lag"].total_seconds() == pytest.approx(2.0)


def test_a_second_tick_returns_at_once_while_one_runs(
        db: psycopg.Connection[dict[str, Any]], dsn: str) -> None:
    with psycopg.connect(dsn) as other:
        other.execute("SELECT pg_advisory_xact_lock(388127, 1)")
        assert run_tick(db)["busy"] is True


def test_a_failing_stage_is_logged_and_rolled_back(db: psycopg.Connection[dict[str, Any]]) -> None:
    result = simulate(preset_config("corridor", seed=1, duration=20))
    pid = project(db)
    source = load_sim(db, pid, result)
    # A zero pair radius divides by zero in the pair rows the candidates stage computes,
    # after the feature stages have written their rows.
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    db.execute("UPDATE pipeline.settings SET value = '0' WHERE key = 'relation_radius_m'")
    db.commit()
    out = run_tick(db)
    assert out["sources"][0]["status"] == "error"
    assert "division by zero" in out["sources"][0]["error"]
    counts = db.execute("SELECT (SELECT count(*) FROM features.kinematics) AS k,"
                        " (SELECT count(*) FROM features.watermarks) AS w").fetchone()
    assert counts == {"k": 0, "w": 0}
    status = db.execute("SELECT last_status, last_error FROM pipeline.status WHERE source_id = %s",
                        (source,)).fetchone()
    assert status is not None and status["last_status"] == "error"
    assert "division by zero" in status["last_error"]
