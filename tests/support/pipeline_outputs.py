"""What the pipeline wrote for one source, as sorted rows per table: for tests that compare
two ways of ticking the same scene (one transaction, lanes, per-source jobs)."""

from __future__ import annotations

from typing import Any

import psycopg

OUTPUTS = {
    "features.kinematics": "track_id, frame, segment, dt, x, y, vx, vy, speed, heading",
    "features.change_points": "track_id, signal, frame, direction, magnitude, score",
    "features.zone_presence": "track_id, zone_name, entered_frame, left_frame",
    "candidates.candidates": "type, actors::text, start_ts, end_ts, rule_score, evidence::text",
}


def source_outputs(db: psycopg.Connection[Any], source: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every output row of `source`, per table of OUTPUTS, in a stable order."""
    out = {}
    for table, cols in OUTPUTS.items():
        rows = db.execute(f"SELECT {cols} FROM {table} WHERE source_id = %s ORDER BY {cols}",
                          (source,)).fetchall()
        out[table] = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]
    db.commit()
    return out
