"""Synthetic review data: many candidates in one statement, for query-plan tests and the
review benchmark (never for product data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from workers import tenancy
from workers.db.queries import query

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ("follow", "meet", "overtake", "accompany", "dwell", "enter", "exit", "stop")


@dataclass(frozen=True)
class SyntheticScene:
    project_id: str
    source_ids: list[int]
    ontology_id: int


def make_scene(conn: psycopg.Connection[Any], project_id: str, sources: int = 4
               ) -> SyntheticScene:
    """Sources (with a video reference) and an ontology row to hang candidates on."""
    row = conn.execute(query("review", "synthetic_scene"),
                       {"project_id": project_id, "sources": sources}).fetchone()
    assert row is not None
    return SyntheticScene(project_id, list(row["source_ids"]), int(row["ontology_id"]))


def add_candidates(conn: psycopg.Connection[Any], scene: SyntheticScene, n: int,
                   first: int = 1, rebuild_indexes: bool = False) -> None:
    """n candidates numbered from `first` (INSERT … SELECT generate_series): eight types,
    scores on a 1/1000 grid so ties occur, 80 % model-scored, 20 % already decided.

    `rebuild_indexes` (throwaway databases only: benchmarks, plan tests) drops the table's
    secondary indexes and skips foreign-key checks for the insert, then builds the indexes
    again, which is several times faster for 100,000 rows. Needs a superuser connection.
    """
    if not rebuild_indexes:
        conn.execute(query("review", "synthetic_candidates"), _params(scene, n, first))
        return
    indexes = conn.execute(query("review", "candidate_secondary_indexes")).fetchall()
    uniques = conn.execute(query("review", "candidate_unique_constraints")).fetchall()
    for u in uniques:
        conn.execute(sql.SQL("ALTER TABLE candidates.candidates DROP CONSTRAINT {}").format(
            sql.Identifier(u["name"])))
    for i in indexes:
        conn.execute(sql.SQL("DROP INDEX candidates.{}").format(sql.Identifier(i["name"])))
    conn.execute("SET LOCAL session_replication_role = replica")
    conn.execute(query("review", "synthetic_candidates"), _params(scene, n, first))
    conn.execute("SET LOCAL session_replication_role = origin")
    for i in indexes:
        conn.execute(sql.SQL(i["definition"]))  # pg_get_indexdef: quoted by the server
    for u in uniques:
        conn.execute(sql.SQL("ALTER TABLE candidates.candidates ADD CONSTRAINT {} {}").format(
            sql.Identifier(u["name"]), sql.SQL(u["definition"])))


def _params(scene: SyntheticScene, n: int, first: int) -> dict[str, Any]:
    return {"project_id": scene.project_id, "source_ids": scene.source_ids,
            "ontology_id": scene.ontology_id, "origin": ORIGIN, "first": first, "n": n}


def add_tracks(conn: psycopg.Connection[Any], candidate_ids: list[int]) -> None:
    """Kinematics for these candidates' actors over their spans ± 5 s."""
    conn.execute(query("review", "synthetic_tracks"), {"candidate_ids": candidate_ids})


def reviewed_project(conn: psycopg.Connection[Any], slug: str, candidates: int,
                     details: int) -> tuple[str, SyntheticScene, list[int]]:
    """The benchmarks' review workload: a project with the reviewer `bench-reviewer`, a
    four-source scene of `candidates` synthetic candidates, and `details` of them from the
    middle given trajectories (for the candidate page). Returns the project id, the scene
    and those candidates' ids; not committed."""
    project = str(tenancy.create_project(conn, "bench-org", slug)["project_id"])
    conn.execute(query("review", "bench_reviewer"), {"project_id": project})
    scene = make_scene(conn, project, sources=4)
    add_candidates(conn, scene, candidates, rebuild_indexes=True)
    detail_ids = [r["candidate_id"] for r in conn.execute(
        query("review", "middle_candidates"),
        {"project_id": project, "n": details, "offset": candidates // 2}).fetchall()]
    add_tracks(conn, detail_ids)
    return project, scene, detail_ids
