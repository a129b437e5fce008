"""Builders for the review tests: a scene with tracks, candidates, reviewers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.support.factories import make_project
from tests.support.postgrest import Api

Conn = psycopg.Connection[dict[str, Any]]
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """The timestamp `seconds` after the scenes' time origin."""
    return ORIGIN + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Scene:
    project_id: str
    source_id: int
    ontology_id: int


def make_scene(db: Conn, org: str, name: str, tracks: dict[str, tuple[float, float]] | None = None
               ) -> Scene:
    """A project with one 10 fps source, a zone, a route, an ontology row and kinematics for
    `tracks` ({track_id: (first_s, last_s)}; default tracks 1 and 2 over 0-20 s)."""
    project = make_project(db, org, name)
    src = db.execute("INSERT INTO ingest.sources (project_id, name, fps, video_uri)"
                     " VALUES (%s, %s, 10, 'file:///clips/cam.mp4') RETURNING source_id",
                     (project, f"{name}-cam")).fetchone()
    assert src is not None
    ont = db.execute(
        "INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed, active)"
        " VALUES (%s, 'default', 1, repeat('a', 64), 'x', '{}', true) RETURNING ontology_id",
        (project,)).fetchone()
    assert ont is not None
    db.execute("INSERT INTO ingest.zones (project_id, source_id, name, polygon)"
               " VALUES (%s, %s, 'gate', '((0,0),(0,2),(2,2),(2,0))')",
               (project, src["source_id"]))
    db.execute("INSERT INTO ingest.routes (project_id, source_id, name, from_zone, path)"
               " VALUES (%s, %s, 'north', 'gate', '[(1,1),(1,9)]')",
               (project, src["source_id"]))
    for track, (first, last) in (tracks or {"1": (0.0, 20.0), "2": (0.0, 20.0)}).items():
        add_track(db, project, src["source_id"], track, first, last)
    db.commit()
    return Scene(project, src["source_id"], ont["ontology_id"])


def add_track(db: Conn, project: str, source: int, track: str, first: float, last: float
              ) -> None:
    """Kinematics of a track walking along x at 1 m/s (heading 0), at y = its numeric id."""
    db.execute(
        "INSERT INTO features.kinematics (project_id, source_id, track_id, frame, ts, segment,"
        " x, y, vx, vy, speed, heading)"
        " SELECT %(p)s, %(s)s, %(t)s, f, %(o)s + f * interval '100 ms', 0, f * 0.1,"
        "        %(y)s, 1, 0, 1, 0"
        " FROM generate_series(round(%(a)s * 10)::int, round(%(b)s * 10)::int) f",
        {"p": project, "s": source, "t": track, "o": ORIGIN,
         "y": float(track) if track.isdigit() else 0.0, "a": first, "b": last})


def make_candidate(db: Conn, scene: Scene, *, type: str = "follow",
                   actors: dict[str, str] | None = None, start: float = 5.0, end: float = 10.0,
                   rule_score: float = 0.6, model_score: float | None = None,
                   status: str | None = None) -> int:
    row = db.execute(
        "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts, end_ts,"
        " rule_name, ontology_id, ontology_version, rule_score, model_score, model_version,"
        " status)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s) RETURNING candidate_id",
        (scene.project_id, scene.source_id, type,
         json.dumps(actors or {"leader": "1", "follower": "2"}), at(start), at(end),
         f"default.{type}", scene.ontology_id, rule_score, model_score,
         "m-1" if model_score is not None else None,
         status or ("scored" if model_score is not None else "new"))).fetchone()
    assert row is not None
    db.commit()
    return int(row["candidate_id"])


def member(db: Conn, project: str, username: str, role: str = "reviewer") -> None:
    db.execute("SELECT core.add_member(%s, 'user', %s, %s)", (project, username, role))
    db.commit()


def as_person(dsn: str, project: str, username: str, role: str = "reviewer") -> Api:
    """A PostgREST caller with the claims api.login gives `username` in `project`."""
    return Api(dsn).as_(role, project_id=project, sub=username)


def share(db: Conn, project: str, second_opinion_share: float,
          auto_model: float | None = None, auto_rule: float | None = None) -> None:
    db.execute(
        "INSERT INTO review.settings (project_id, second_opinion_share, auto_accept_model,"
        " auto_accept_rule) VALUES (%s, %s, %s, %s) ON CONFLICT (project_id) DO UPDATE"
        " SET second_opinion_share = excluded.second_opinion_share,"
        "     auto_accept_model = excluded.auto_accept_model,"
        "     auto_accept_rule = excluded.auto_accept_rule",
        (project, second_opinion_share, auto_model, auto_rule))
    db.commit()
