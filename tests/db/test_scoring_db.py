"""Scoring in the database: fenced write-back, queueing, similarity under RLS, and the
whole path simulated scene → ingest → tick → candidates → queue → worker → scores."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import psycopg
import pytest
import torch
from psycopg.types.json import Jsonb

from tests.db.queue_helpers import ThreadWorker
from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers.pipeline.scene_copy import load_result
from workers.queue import client
from workers.queue.client import StaleAttempt
from workers.queue.worker import WorkerConfig
from workers.scoring.handler import Scored, configure, score_batch, write_scores
from workers.scoring.model import ModelConfig, ScoringModel
from workers.scoring.registry import load_model, register
from workers.scoring.windows import N_FEATURES, NormStats
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
TINY = ModelConfig(d_model=16, heads=2, ff=32)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    configure("cpu")


def _register_tiny(db: Conn, seed: int = 0) -> str:
    torch.manual_seed(seed)
    norm = NormStats.fit(np.random.default_rng(seed).normal(size=(4, 64, N_FEATURES)))
    version, _, created = register(db, ScoringModel(TINY).eval(), norm, seed=seed,
                                   training={"test": True}, metrics={})
    assert created
    return version


def _candidate(db: Conn, project_id: str, name: str, n: int = 1) -> list[int]:
    """Candidates inserted directly (a source and an ontology row to hang them on)."""
    src = db.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES (%s, %s, 10) "
                     "RETURNING source_id", (project_id, name)).fetchone()
    onto = db.execute(
        "INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed, active) "
        "VALUES (%s, 'default', 1, %s, '', '{}', true) RETURNING ontology_id",
        (project_id, hashlib.sha256(name.encode()).hexdigest())).fetchone()
    assert src is not None and onto is not None
    ids = []
    for i in range(n):
        row = db.execute(
            "INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts, "
            "end_ts, rule_name, ontology_id, ontology_version, rule_score) VALUES "
            "(%s, %s, 'follow', %s, '2026-01-01 00:00:10+00'::timestamptz + %s * interval '1s', "
            "'2026-01-01 00:00:20+00'::timestamptz + %s * interval '1s', 'default.follow', %s, "
            "1, 0.5) RETURNING candidate_id",
            (project_id, src["source_id"], Jsonb({"leader": "1", "follower": "2"}), i, i,
             onto["ontology_id"])).fetchone()
        assert row is not None
        ids.append(int(row["candidate_id"]))
    db.commit()
    return ids


def test_write_back_is_refused_for_a_stale_attempt(db: Conn) -> None:
    pid = make_project(db, "score-org", "fence")
    version = _register_tiny(db)
    ids = _candidate(db, pid, "fence-src", 2)
    job_id = client.enqueue(db, pid, "score_candidates", {"candidate_ids": ids})
    db.commit()
    first = client.claim(db, "w1", kinds=["score_candidates"])[0]
    # The first attempt's lease runs out; a second worker reclaims the job.
    db.execute("UPDATE jobs.jobs SET lease_until = now() - interval '1 s', "
               "run_after = now() - interval '1 s' WHERE job_id = %s", (job_id,))
    db.execute("UPDATE jobs.jobs SET state = 'queued', lease_until = NULL WHERE job_id = %s",
               (job_id,))
    db.commit()
    second = client.claim(db, "w2", kinds=["score_candidates"])[0]
    db.commit()
    assert (first.attempt, second.attempt) == (1, 2)
    scored = score_batch(db, ids, pid)
    assert scored.version == version and len(scored.ids) == 2
    with pytest.raises(StaleAttempt, match=f"job {job_id} attempt 1 no longer holds the lease"):
        with client.write_back(db, job_id, 1) as conn:
            write_scores(conn, job_id, 1, scored)
    db.rollback()
    # The SQL function fences by itself too, outside any client transaction.
    with pytest.raises(psycopg.Error) as refused:
        write_scores(db, job_id, 1, scored)
    assert refused.value.diag.sqlstate == "JB001"
    db.rollback()
    stored = db.execute("SELECT count(*) AS n FROM candidates.candidates "
                        "WHERE model_score IS NOT NULL").fetchone()
    assert stored is not None and stored["n"] == 0
    with client.write_back(db, job_id, 2) as conn:
        assert write_scores(conn, job_id, 2, scored) == 2
    db.commit()
    rows = db.execute("SELECT model_version, status, vector_dims(embedding) AS dims "
                      "FROM candidates.candidates ORDER BY candidate_id").fetchall()
    assert rows == [{"model_version": version, "status": "scored", "dims": 64}] * 2


def test_write_back_only_touches_the_jobs_project(db: Conn) -> None:
    a = make_project(db, "score-org", "mine")
    b = make_project(db, "score-org", "theirs")
    _register_tiny(db)
    theirs = _candidate(db, b, "theirs-src")
    mine = _candidate(db, a, "mine-src")
    job_id = client.enqueue(db, a, "score_candidates", {"candidate_ids": mine})
    db.commit()
    job = client.claim(db, "w", kinds=["score_candidates"])[0]
    db.commit()
    forged = Scored(theirs, np.array([0.9], np.float32), np.ones((1, 64), np.float32), "s0-x",
                    {})
    with client.write_back(db, job_id, job.attempt) as conn:
        assert write_scores(conn, job_id, job.attempt, forged) == 0


def test_similar_candidates_respects_rls(db: Conn, dsn: str) -> None:
    a = make_project(db, "sim-org", "sim-a")
    b = make_project(db, "sim-org", "sim-b")
    ids_a = _candidate(db, a, "a-src", 4)
    ids_b = _candidate(db, b, "b-src", 4)
    rng = np.random.default_rng(1)
    base = rng.normal(size=64)
    for k, cid in enumerate(ids_a + ids_b):
        # B's candidates sit closer to A's probe than A's own do.
        vec = base + (0.01 if cid in ids_b else 0.5 + 0.1 * k) * rng.normal(size=64)
        db.execute("UPDATE candidates.candidates SET embedding = %s::vector WHERE "
                   "candidate_id = %s", ("[" + ",".join(map(str, vec)) + "]", cid))
    db.commit()
    api = Api(dsn).as_("reviewer", project_id=a)
    rows = api.rpc("similar_candidates", candidate_id=ids_a[0], k=10)
    assert sorted(r["neighbour_id"] for r in rows) == sorted(ids_a[1:])
    sims = [r["similarity"] for r in rows]
    assert sims == sorted(sims, reverse=True)
    assert api.rpc("similar_candidates", candidate_id=ids_b[0], k=10) == []
    admin = db.execute("SELECT neighbour_id FROM api.similar_candidates(%s, 3)",
                       (ids_a[0],)).fetchall()
    assert {r["neighbour_id"] for r in admin} <= set(ids_b)  # no RLS for the superuser
    with pytest.raises(ApiError) as denied:
        Api(dsn).as_("customer", project_id=a).rpc("similar_candidates",
                                                   candidate_id=ids_a[0], k=3)
    assert denied.value.message == "permission denied for function similar_candidates"


def test_no_queueing_without_a_model_or_with_auto_scoring_off(db: Conn) -> None:
    pid = make_project(db, "q-org", "queue-q")
    ids = _candidate(db, pid, "q-src", 3)
    queued = db.execute("SELECT scoring.queue_unscored(NULL, %s) AS n", (pid,)).fetchone()
    assert queued is not None and queued["n"] == 0
    _register_tiny(db)
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) "
               "VALUES (%s, 'scoring_auto', 'false')", (pid,))
    queued = db.execute("SELECT scoring.queue_unscored(NULL, %s) AS n", (pid,)).fetchone()
    assert queued is not None and queued["n"] == 0
    db.execute("DELETE FROM pipeline.settings WHERE project_id = %s", (pid,))
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) "
               "VALUES (%s, 'scoring_batch', '2')", (pid,))
    queued = db.execute("SELECT scoring.queue_unscored(NULL, %s) AS n", (pid,)).fetchone()
    again = db.execute("SELECT scoring.queue_unscored(NULL, %s) AS n", (pid,)).fetchone()
    assert queued is not None and queued["n"] == 3 and again is not None and again["n"] == 0
    payloads = [r["payload"] for r in db.execute(
        "SELECT payload FROM jobs.jobs WHERE kind = 'score_candidates' ORDER BY job_id")]
    assert payloads == [{"candidate_ids": ids[:2]}, {"candidate_ids": ids[2:]}]


def test_registry_round_trip_and_integrity(db: Conn) -> None:
    version = _register_tiny(db, seed=5)
    loaded = load_model(db)
    assert loaded.version == version and loaded.config == TINY
    assert load_model(db, version=version) is loaded  # cached
    db.execute("UPDATE scoring.models SET version = 'tampered', "
               "weights = weights || '\\x00'::bytea")
    db.commit()
    from workers.errors import SecinfError

    with pytest.raises(SecinfError, match="do not match their sha256"):
        load_model(db, version="tampered")


@pytest.mark.slow
def test_scene_to_scores_end_to_end(db: Conn, dsn: str) -> None:
    from workers.rules import load_ontology
    from workers.rules.store import load as load_rules
    from workers.settings import ONTOLOGIES_DIR

    pid = make_project(db, "e2e-org", "e2e")
    load_rules(db, pid, load_ontology(ONTOLOGIES_DIR / "default.yaml"))
    version = _register_tiny(db)
    result = simulate(preset_config("plaza", seed=3, duration=40.0, agents=0))
    source_id = load_result(db, pid, result, name="e2e-scene")
    db.execute("SET ROLE pipeline")
    tick = db.execute("SELECT pipeline.tick(true) AS r").fetchone()
    db.execute("RESET ROLE")
    db.commit()
    assert tick is not None
    assert all(s["status"] == "ok" for s in tick["r"]["sources"]), tick["r"]
    n = db.execute("SELECT count(*) AS n FROM candidates.candidates WHERE source_id = %s",
                   (source_id,)).fetchone()
    assert n is not None and n["n"] > 0
    queued = db.execute("SELECT count(*) AS n FROM scoring.queued").fetchone()
    assert queued is not None and queued["n"] == n["n"]
    with ThreadWorker(dsn, WorkerConfig(kinds=("score_candidates",), concurrency=1,
                                        mode="until_idle", poll_s=0.5)) as w:
        w.thread.join(120)
    assert w.stats is not None and w.stats.succeeded >= 1 and w.stats.dead == 0
    rows = db.execute("SELECT model_score, model_version, vector_dims(embedding) AS dims, "
                      "status FROM candidates.candidates WHERE source_id = %s",
                      (source_id,)).fetchall()
    assert rows and all(0.0 <= r["model_score"] <= 1.0 and r["model_version"] == version
                        and r["dims"] == 64 and r["status"] == "scored" for r in rows)
