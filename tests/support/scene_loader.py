"""Put scenes into a test database: simulated (workers.simulate) or analytic trajectories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg

from tests.support.factories import make_project
from workers.pipeline.scene_copy import copy_points, load_result, scene_source
from workers.simulate import SimResult

ORIGIN = "2026-01-01T00:00:00Z"


def project(db: psycopg.Connection[dict[str, Any]], slug: str = "feat") -> str:
    pid = make_project(db, f"{slug}-org", slug)
    db.commit()
    return pid


def load_sim(db: psycopg.Connection[dict[str, Any]], project_id: str, result: SimResult,
             pieces: list[pl.DataFrame] | None = None, name: str | None = None) -> int:
    """A simulated scene (source, zones, routes, triggers, points), optionally in batches."""
    return load_result(db, project_id, result, pieces, name)


def load_tracks(db: psycopg.Connection[dict[str, Any]], project_id: str, tracks: pl.DataFrame,
                fps: float, name: str = "analytic", zones: list[dict[str, Any]] | None = None,
                units: str = "m") -> int:
    """Analytic tracks (track_id, frame, t, x, y) with optional zones; returns source_id."""
    scene = {"source": name, "fps": fps, "units": units, "time_origin": ORIGIN,
             "zones": zones or [], "routes": [], "triggers": []}
    source_id = scene_source(db, project_id, scene)
    full = tracks.with_columns(pl.lit("pedestrian").alias("class"),
                               pl.lit(0.9, dtype=pl.Float32).alias("confidence"))
    copy_points(db, project_id, source_id, full, datetime(2026, 1, 1, tzinfo=UTC), f"{name}-0")
    return source_id


def set_setting(db: psycopg.Connection[dict[str, Any]], key: str, value: Any) -> None:
    """Change a default pipeline setting in this test database."""
    db.execute("UPDATE pipeline.settings SET value = %s::jsonb "
               "WHERE project_id IS NULL AND key = %s", (json.dumps(value), key))
    db.commit()


def run_tick(db: psycopg.Connection[dict[str, Any]], until_idle: bool = True) -> dict[str, Any]:
    """One pipeline.tick() as role pipeline, committed."""
    db.execute("SET ROLE pipeline")
    row = db.execute("SELECT pipeline.tick(%s) AS r", (until_idle,)).fetchone()
    db.execute("RESET ROLE")
    db.commit()
    assert row is not None
    return dict(row["r"])


def candidates_of(db: psycopg.Connection[dict[str, Any]], source_id: int, etype: str
                  ) -> list[dict[str, Any]]:
    """The source's candidates of one type, earliest first: t0/t1 in seconds since the
    source's time origin, actors, evidence."""
    return db.execute(
        "SELECT extract(epoch FROM c.start_ts - s.time_origin)::float8 AS t0, "
        "extract(epoch FROM c.end_ts - s.time_origin)::float8 AS t1, c.actors, c.evidence "
        "FROM candidates.candidates c JOIN ingest.sources s USING (source_id) "
        "WHERE c.source_id = %s AND c.type = %s ORDER BY c.start_ts",
        (source_id, etype)).fetchall()
