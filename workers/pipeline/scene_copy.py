"""Put a simulated scene into ingest: source, zones/routes/triggers, then track points by COPY
into a temporary stage and the ingest merge (`ingest.merge_staged`), which writes dirty
ranges for late pieces exactly as `secinf ingest` does. Used by the pipeline benchmark and
the pipeline tests; the admin connection's transaction is committed per piece."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg.types.json import Jsonb

from workers.db.queries import query
from workers.ingest.schema import ts_from_seconds
from workers.simulate import SimResult


def _origin(scene: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(scene["time_origin"]).replace("Z", "+00:00"))


def scene_source(conn: psycopg.Connection[Any], project_id: str, scene: dict[str, Any],
                 name: str | None = None) -> int:
    """Create (or reuse) the scene's source and upsert its geometry; returns source_id."""
    origin = _origin(scene)
    row = conn.execute(query("pipeline", "ensure_source"), {
        "project": project_id, "name": name or scene["source"], "units": scene.get("units", "m"),
        "fps": scene.get("fps"), "time_origin": origin}).fetchone()
    assert row is not None
    source_id = int(row["source_id"] if isinstance(row, dict) else row[0])
    doc = {
        "zones": [{"name": z["name"], "kind": z["kind"], "polygon": z["polygon"]}
                  for z in scene.get("zones", [])],
        "routes": [{"name": r["name"], "from_zone": r["from_zone"], "polyline": r["polyline"]}
                   for r in scene.get("routes", [])],
        "triggers": [{"name": t["name"], "kind": t.get("kind", "event"),
                      "ts": (origin + timedelta(seconds=float(t["t"]))).isoformat(),
                      "position": t.get("position"), "radius": t.get("radius")}
                     for t in scene.get("triggers", [])],
    }
    conn.execute(query("pipeline", "upsert_scene"),
                 {"project": project_id, "source": source_id, "scene": Jsonb(doc)})
    conn.commit()
    return source_id


def points_csv(tracks: pl.DataFrame, origin: datetime) -> bytes:
    """Simulator tracks (track_id, frame, t, x, y, class, confidence) as stage CSV rows."""
    out = tracks.with_row_index("row_no").select(
        pl.col("row_no").cast(pl.Int64), "track_id", "frame",
        ts_from_seconds(origin).dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00").alias("ts"),
        "x", "y", pl.col("x").alias("raw_x"), pl.col("y").alias("raw_y"), "class", "confidence")
    buf = io.BytesIO()
    out.write_csv(buf, include_header=False, float_precision=None)
    return buf.getvalue()


def copy_points(conn: psycopg.Connection[Any], project_id: str, source_id: int,
                tracks: pl.DataFrame, origin: datetime, key: str) -> dict[str, Any]:
    """COPY one piece into the stage and merge it as one batch; commits. Returns the merge row."""
    conn.execute(query("pipeline", "create_stage"))
    with conn.cursor() as cur, cur.copy(query("pipeline", "copy_stage")) as copy:
        copy.write(points_csv(tracks, origin))
    row = conn.execute(query("pipeline", "merge_stage"), {
        "project": project_id, "source": source_id, "key": key, "total": tracks.height}).fetchone()
    conn.commit()
    assert row is not None
    return dict(row) if isinstance(row, dict) else {"batch_id": row[0], "rows_inserted": row[1]}


def load_result(conn: psycopg.Connection[Any], project_id: str, result: SimResult,
                pieces: list[pl.DataFrame] | None = None, name: str | None = None) -> int:
    """Load a SimResult (optionally as several batches, in the given order); returns source_id."""
    source_id = scene_source(conn, project_id, result.scene, name)
    origin = _origin(result.scene)
    for i, piece in enumerate(pieces if pieces is not None else [result.tracks]):
        copy_points(conn, project_id, source_id, piece, origin, f"{name or 'scene'}-{i}")
    return source_id
