"""Builders for the dataset tests: scenes through the real pipeline, and verified events
made from their candidates the way review and auto-acceptance make them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from workers.ingest import IngestRequest, ingest
from workers.pipeline.runner import tick
from workers.rules import store
from workers.rules.ontology import load_ontology
from workers.settings import ONTOLOGIES_DIR
from workers.simulate import preset_config, simulate, write_outputs

Conn = psycopg.Connection[dict[str, Any]]

# Every third candidate is accepted by a person (alternating two reviewers), the others are
# machine-verified: by the model where it scored them, else by their rule.
PROMOTE = """
WITH c AS (
  SELECT c.* FROM candidates.candidates c
  WHERE c.project_id = %(project_id)s
    AND NOT EXISTS (SELECT FROM events.events e WHERE e.candidate_id = c.candidate_id)
), d AS (
  INSERT INTO review.decisions (project_id, candidate_id, reviewer, opinion, kind, start_ts,
                                end_ts)
  SELECT c.project_id, c.candidate_id,
         CASE WHEN c.candidate_id %% 2 = 0 THEN 'alice' ELSE 'bob' END, 'first', 'accept',
         c.start_ts, c.end_ts
  FROM c WHERE c.candidate_id %% 3 = 0
  RETURNING decision_id, candidate_id, reviewer
)
INSERT INTO events.events (project_id, source_id, candidate_id, type, actors, zone, route,
                           trigger, latency_s, start_ts, end_ts, confidence, source,
                           verified_by, decision_id, ontology_id, ontology_version,
                           model_version)
SELECT c.project_id, c.source_id, c.candidate_id, c.type, c.actors, c.zone, c.route,
       c.trigger, c.latency_s, c.start_ts, c.end_ts, coalesce(c.model_score, c.rule_score),
       CASE WHEN d.decision_id IS NOT NULL THEN 'human'
            WHEN c.model_score IS NOT NULL THEN 'model' ELSE 'rule' END,
       coalesce(d.reviewer, c.model_version, c.rule_name), d.decision_id, c.ontology_id,
       c.ontology_version, c.model_version
FROM c LEFT JOIN d USING (candidate_id)
ON CONFLICT (candidate_id) DO NOTHING
"""


def load_default_ontology(db: Conn, project_id: str) -> None:
    store.load(db, project_id, load_ontology(ONTOLOGIES_DIR / "default.yaml"))
    db.commit()


def add_scene(db: Conn, project_id: str, source: str, seed: int, tmp: Path,
              preset: str = "plaza", duration: float = 60.0) -> None:
    """Simulate a scene and ingest it as a source of the project (no tick)."""
    result = simulate(preset_config(preset, seed=seed, duration=duration))
    files = write_outputs(result, tmp / source)
    ingest(db, IngestRequest(project=project_id, source=source, path=files["parquet"],
                             scene=files["scene"]))


def run_pipeline(db: Conn) -> None:
    tick(db, until_idle=True)


def promote(db: Conn, project_id: str) -> int:
    """Turn the project's candidates into verified events; returns how many."""
    n = db.execute(PROMOTE, {"project_id": project_id}).rowcount
    db.commit()
    return n


# ------------------------------------------------------------------------------- scene db
MODEL_VERSION = "dataset-test-model"
MODEL_METRICS = {"held_out": {"n": 120, "positives": 50, "model": {"auc": 0.91, "ap": 0.88},
                              "rule_score": {"auc": 0.74, "ap": 0.69}, "ap_gain": 0.19}}


def score_candidates(db: Conn, project_id: str) -> None:
    """Give half the project's candidates a model score and every candidate an embedding
    (deterministic pseudo-random vectors), as the scoring worker would; register the model
    with evaluation figures."""
    db.execute(
        "INSERT INTO scoring.models (project_id, version, sha256, weights, config, "
        "normalisation, metrics) VALUES (%s, %s, encode(sha256('w'::bytea), 'hex'), 'w', '{}',"
        " '{}', %s) ON CONFLICT (version) DO NOTHING",
        (project_id, MODEL_VERSION, Jsonb(MODEL_METRICS)))
    db.execute(
        """UPDATE candidates.candidates c
           SET model_score = CASE WHEN c.candidate_id %% 2 = 1
                                  THEN round((0.5 + 0.5 * c.rule_score)::numeric, 4) END,
               model_version = CASE WHEN c.candidate_id %% 2 = 1 THEN %(v)s END,
               embedding = (SELECT array_agg(sin(c.candidate_id * 7.0 + i * 1.3
                                                 + length(c.type) * 3.0)
                                             ORDER BY i)::real[]::vector
                            FROM generate_series(1, 64) i)
           WHERE c.project_id = %(p)s""", {"p": project_id, "v": MODEL_VERSION})
    db.commit()


@contextmanager
def copy_of(dsn: str, suffix: str) -> Iterator[str]:
    """A throwaway copy (CREATE DATABASE … TEMPLATE) of the database at dsn; nobody may be
    connected to it meanwhile."""
    params = conninfo_to_dict(dsn)
    source = str(params["dbname"])
    name = f"{source[:40]}_{suffix}"[:63]
    admin = make_conninfo(**{**params, "dbname": "postgres"})  # type: ignore[arg-type]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(source)))
    try:
        yield make_conninfo(**{**params, "dbname": name})  # type: ignore[arg-type]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
