"""New kinematics chunks before the stages (pipeline.prepare_chunks, sql/450_pipeline.sql):
a lane's range gets its days' chunks in its plan step (committed at once), so a second
lane writing the same new day does not wait for the first lane's whole kinematics stage
(TimescaleDB holds the hypertable's lock from a chunk's creation to the creating
transaction's end)."""

from __future__ import annotations

from typing import Any

import polars as pl
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support.scene_loader import load_sim, load_tracks, project
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
DAY_S = 86_400.0


def _kinematics_days(db: Conn, table: str = "kinematics") -> list[str]:
    rows = db.execute("SELECT to_char(range_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day "
                      "FROM timescaledb_information.chunks WHERE hypertable_name = %s "
                      "ORDER BY 1", (table,)).fetchall()
    db.commit()
    return [r["day"] for r in rows]


def _plan(c: Conn, source: int) -> dict[str, Any]:
    row = c.execute("SELECT pipeline.tick_plan(%s, true) AS p", (source,)).fetchone()
    assert row is not None and row["p"] is not None
    return dict(row["p"])


def _walk(t0: float, seconds: float, track: str) -> pl.DataFrame:
    t = [t0 + i / 10 for i in range(int(seconds * 10))]
    return pl.DataFrame({"track_id": [track] * len(t),
                         "frame": [round(v * 10) for v in t], "t": t,
                         "x": [0.8 * (v - t0) for v in t], "y": [0.0] * len(t)})


def test_chunks_are_made_for_the_days_with_points_and_leave_no_row(db: Conn) -> None:
    pid = project(db)
    # points on 2026-01-01 and 2026-01-03, none on the day between
    tracks = pl.concat([_walk(0.0, 20.0, "a"), _walk(2 * DAY_S, 20.0, "b")])
    source = load_tracks(db, pid, tracks, fps=10.0)
    assert _kinematics_days(db) == []
    db.execute("SET ROLE pipeline")
    plan = _plan(db, source)
    made = db.execute("SELECT pipeline.prepare_chunks(%s) AS n", (Jsonb(plan),)).fetchone()
    again = db.execute("SELECT pipeline.prepare_chunks(%s) AS n", (Jsonb(plan),)).fetchone()
    db.execute("RESET ROLE")
    db.commit()
    # the first range ends tick_max_span_s after the first point: its one day
    assert made == {"n": 1} and again == {"n": 0}
    assert _kinematics_days(db) == ["2026-01-01"]
    assert db.execute("SELECT count(*) AS n FROM features.kinematics").fetchone() == {"n": 0}
    # the lane's run then writes into it and makes the third day's (not the empty second
    # day's) for its next range, and no probe row is left
    with psycopg.connect(db.info.dsn, autocommit=True, row_factory=dict_row) as lane:
        lane.execute("SET ROLE pipeline")
        row = lane.execute("CALL pipeline.run_source(%s, true, NULL, NULL, NULL)",
                           (source,)).fetchone()
    assert row is not None and {r["status"] for r in row["p_results"]} == {"ok"}
    counts = db.execute("SELECT count(*) AS n, count(*) FILTER (WHERE track_id = '') AS probe "
                        "FROM features.kinematics").fetchone()
    db.commit()
    assert counts == {"n": tracks.height, "probe": 0}
    assert _kinematics_days(db) == ["2026-01-01", "2026-01-03"]


def test_a_lane_on_a_new_day_does_not_wait_for_the_other_lanes_stage(db: Conn) -> None:
    pid = project(db)
    first, second = (load_sim(db, pid, simulate(preset_config(p, seed=1, duration=20)),
                              name=p) for p in ("plaza", "corridor"))
    assert _kinematics_days(db) == []
    dsn = db.info.dsn
    with psycopg.connect(dsn, row_factory=dict_row) as busy, \
            psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as lane:
        # lane one, as pipeline.run_source steps it: the plan, the chunks (committed), then
        # its kinematics stage left open, as a long stage would be
        busy.execute("SET ROLE pipeline")
        plan = _plan(busy, first)
        busy.execute("SELECT pipeline.prepare_chunks(%s)", (Jsonb(plan),))
        busy.commit()
        busy.execute("SELECT pipeline.tick_stage(%s, 'kinematics', true)", (Jsonb(plan),))
        # lane two works the same day meanwhile; with the chunk made by lane one's open
        # stage it would wait until that commits (lock_timeout turns the wait into a failure)
        lane.execute("SET ROLE pipeline")
        lane.execute("SET lock_timeout = '3s'")
        row = lane.execute("CALL pipeline.run_source(%s, true, NULL, NULL, NULL)",
                           (second,)).fetchone()
        assert row is not None
        assert [(r["status"], r.get("error")) for r in row["p_results"]] == [("ok", None)]
        busy.commit()
    assert _kinematics_days(db) == _kinematics_days(db, "track_points")
