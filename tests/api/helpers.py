"""Data builders for the API-contract tests (admin connection)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

Conn = psycopg.Connection[dict[str, Any]]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ("follow", "meet", "enter", "dwell")


def add_source(db: Conn, project: str, name: str, fps: float | None = 10.0) -> int:
    row = db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, %s, %s) "
                     "RETURNING source_id", (project, name, fps)).fetchone()
    assert row is not None
    return int(row["source_id"])


def add_events(db: Conn, project: str, source_id: int, n: int, *, start: datetime = T0,
               per_second: int = 3, offset: int = 0) -> list[int]:
    """n machine-verified events: `per_second` share each start second (ties in start_ts),
    types, actors, confidences and verification cycling through their values."""
    rows = db.execute(
        """INSERT INTO events.events (project_id, source_id, type, actors, start_ts, end_ts,
                                      confidence, source, verified_by)
           SELECT %(p)s, %(s)s, (%(types)s::text[])[1 + (g + %(o)s) %% 4],
                  jsonb_build_object('a', ((g + %(o)s) %% 13)::text,
                                     'b', ((g + %(o)s + 5) %% 13)::text),
                  %(t0)s + (g / %(k)s) * interval '1 second',
                  %(t0)s + (g / %(k)s) * interval '1 second' + interval '4 seconds',
                  ((g + %(o)s) %% 101) / 100.0,
                  (ARRAY['rule', 'model'])[1 + (g + %(o)s) %% 2],
                  CASE WHEN (g + %(o)s) %% 2 = 0 THEN 'default.rule' ELSE 'model-v1' END
           FROM generate_series(0, %(n)s - 1) g
           RETURNING event_id""",
        {"p": project, "s": source_id, "types": list(TYPES), "o": offset, "t0": start,
         "k": per_second, "n": n}).fetchall()
    return [int(r["event_id"]) for r in rows]


def add_human_event(db: Conn, project: str, source_id: int, start: datetime,
                    actors: dict[str, str]) -> int:
    """An event a reviewer accepted: ontology → candidate → decision → event."""
    onto = db.execute(
        "INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed)"
        " VALUES (%s, 'api-test', 1, repeat('a', 64), '', '{}')"
        " ON CONFLICT (project_id, name, version) DO UPDATE SET yaml = ''"
        " RETURNING ontology_id", (project,)).fetchone()
    assert onto is not None
    end = start + timedelta(seconds=3)
    cand = db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts,"
        " end_ts, rule_name, ontology_id, ontology_version, rule_score, status)"
        " VALUES (%s, %s, 'meet', %s, %s, %s, 'api-test.meet', %s, 1, 0.7, 'accepted')"
        " RETURNING candidate_id",
        (project, source_id, json.dumps(actors), start, end, onto["ontology_id"])).fetchone()
    assert cand is not None
    dec = db.execute(
        "INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind,"
        " start_ts, end_ts) VALUES (%s, %s, 'ann@example.com', 'first', 'accept', %s, %s)"
        " RETURNING decision_id", (project, cand["candidate_id"], start, end)).fetchone()
    assert dec is not None
    ev = db.execute(
        "INSERT INTO events.events (project_id, source_id, candidate_id, type, actors,"
        " start_ts, end_ts, confidence, source, verified_by, decision_id)"
        " VALUES (%s, %s, %s, 'meet', %s, %s, %s, 1.0, 'human', 'ann@example.com', %s)"
        " RETURNING event_id",
        (project, source_id, cand["candidate_id"], json.dumps(actors), start, end,
         dec["decision_id"])).fetchone()
    assert ev is not None
    return int(ev["event_id"])


def all_events(db: Conn, project: str) -> list[dict[str, Any]]:
    """Every event of the project in the API's order, as the admin sees them."""
    return [dict(r) for r in db.execute(
        "SELECT event_id, source_id, type, actors, start_ts, confidence, source AS verification"
        " FROM events.events WHERE project_id = %s ORDER BY start_ts, event_id",
        (project,)).fetchall()]


def points(n: int, *, tracks: int = 3, start_frame: int = 0, fps: float = 10.0,
           speed: float = 1.0) -> list[dict[str, Any]]:
    """n valid points: `tracks` walkers side by side, one point per track per frame."""
    out = []
    for k in range(n):
        frame = start_frame + k // tracks
        track = k % tracks
        out.append({"track_id": str(track + 1), "frame": frame, "t": round(frame / fps, 6),
                    "x": round(speed * frame / fps, 6), "y": float(track), "class": "pedestrian",
                    "confidence": 0.9})
    return out


def scene_points(tmp: Path, duration: float = 20.0) -> list[dict[str, Any]]:
    """A simulated plaza (walkers who overtake, meet, hand over), as API points."""
    import polars as pl

    from workers.simulate import preset_config, simulate, write_outputs

    files = write_outputs(simulate(preset_config("plaza", seed=11, duration=duration)), tmp)
    return [{k: v for k, v in row.items() if v is not None}
            for row in pl.read_parquet(files["parquet"]).iter_rows(named=True)]
