"""Per-source work units (sql/620_pipeline_schedule.sql, workers/pipeline/source_jobs.py):
queue mode's scheduler hands each source with work to the workers as a
pipeline_tick_source job; workers give what one transaction gives; claims go round the
tenants; a source another backend holds is left to it."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.db.queue_helpers import ThreadWorker, state_counts, wait_for
from tests.support.pipeline_outputs import OUTPUTS, source_outputs
from tests.support.scene_loader import load_sim, project, run_tick
from workers.pipeline.source_jobs import TICK_SOURCE, run_source
from workers.queue import client
from workers.queue.worker import WorkerConfig
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _queue_mode(db: Conn) -> None:
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) "
               "VALUES (NULL, 'scheduled_ticks', '\"queue\"')")
    db.commit()


def _scheduled(db: Conn) -> list[dict[str, Any]]:
    db.execute("SET ROLE pipeline")
    rows = db.execute("SELECT * FROM pipeline.schedule_sources()").fetchall()
    db.execute("RESET ROLE")
    db.commit()
    return rows


def test_workers_give_what_one_transaction_gives(db: Conn, dsn: str) -> None:
    pid = project(db)
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    scenes = [simulate(preset_config("plaza", seed=3, duration=40)),
              simulate(preset_config("corridor", seed=1, duration=30))]
    queued = [load_sim(db, pid, s, name=f"job-{i}") for i, s in enumerate(scenes)]
    _queue_mode(db)
    # pg_cron's call in queue mode queues the work and ticks nothing itself
    db.execute("SET ROLE pipeline")
    db.commit()
    db.autocommit = True
    db.execute("CALL pipeline.run_scheduled()")
    db.autocommit = False
    db.execute("RESET ROLE")
    jobs = db.execute("SELECT kind, payload, dedupe_key FROM jobs.jobs ORDER BY job_id").fetchall()
    assert [(j["kind"], j["payload"]["source_id"]) for j in jobs] == \
        [(TICK_SOURCE, s) for s in queued]
    assert db.execute("SELECT count(*) AS n FROM features.kinematics").fetchone() == {"n": 0}
    # a second minute finds the same live jobs: one per source
    assert sorted(r["job_id"] for r in _scheduled(db)) == sorted(
        r["job_id"] for r in db.execute("SELECT job_id FROM jobs.jobs").fetchall())
    db.commit()
    # the candidates NOTIFY still comes from each source's unit (the scoring worker's cue)
    listener = psycopg.connect(dsn, autocommit=True)
    channel = listener.execute("SELECT auth.channel('candidates')").fetchone()
    assert channel is not None
    listener.execute(f'LISTEN "{channel[0]}"')
    config = WorkerConfig(kinds=(TICK_SOURCE,), concurrency=2, poll_s=0.2, mode="until_idle")
    with ThreadWorker(dsn, config):
        wait_for(lambda: not {"queued", "running"} & set(state_counts(dsn)), 120,
                 "both sources' jobs")
    heard = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    listener.close()
    assert heard and json.loads(heard[0])["count"] > 0
    ends = db.execute("SELECT state, last_error FROM jobs.jobs").fetchall()
    assert [e["state"] for e in ends] == ["succeeded", "succeeded"], ends
    results = {r["payload"]["source_id"]: r["result"] for r in
               db.execute("SELECT j.payload, r.result FROM jobs.jobs j "
                          "JOIN jobs.results r USING (job_id)").fetchall()}
    db.commit()
    for sid in queued:
        assert results[sid]["held_elsewhere"] is False and results[sid]["status"] == "ok"
        assert results[sid]["points"] > 0
    # the same scenes ticked in one transaction give the same rows
    serial = [load_sim(db, pid, s, name=f"serial-{i}") for i, s in enumerate(scenes)]
    out = run_tick(db)
    assert sorted(int(s["source_id"]) for s in out["sources"]) == serial
    for a, b in zip(queued, serial, strict=True):
        mine, theirs = source_outputs(db, a), source_outputs(db, b)
        for table in OUTPUTS:
            assert mine[table] == theirs[table], table
    assert source_outputs(db, queued[0])["candidates.candidates"]
    # nothing left to do: the next minute queues nothing
    assert _scheduled(db) == []


def test_claims_go_round_the_tenants_and_skip_backed_off_sources(db: Conn) -> None:
    busy, quiet = project(db, "busy"), project(db, "quiet")
    scene = simulate(preset_config("corridor", seed=2, duration=20))
    many = [load_sim(db, busy, scene, name=f"cam-{i}") for i in range(4)]
    one = load_sim(db, quiet, scene, name="cam-0")
    db.execute("INSERT INTO pipeline.source_failures (source_id, project_id, stage, sqlstate, "
               "error, failures, first_failed_at, last_failed_at, retry_at) "
               "VALUES (%s, %s, 'plan', 'XX000', 'broken', 1, now(), now(), "
               "now() + interval '1 hour')", (many[3], busy))
    db.commit()
    rows = _scheduled(db)
    assert sorted(r["source_id"] for r in rows) == sorted([*many[:3], one])
    claimed = []
    for _ in range(4):
        jobs = client.claim(db, "w", kinds=[TICK_SOURCE], limit=1)
        db.commit()
        claimed.append(int(jobs[0].payload["source_id"]))
    # the quiet tenant's one source is among the first two claims, not behind the busy
    # tenant's three
    assert set(claimed[:2]) == {many[0], one}, claimed
    assert claimed[2:] == many[1:3]


def test_a_source_held_elsewhere_is_left_to_its_holder(db: Conn, dsn: str) -> None:
    pid = project(db)
    sid = load_sim(db, pid, simulate(preset_config("corridor", seed=1, duration=20)))
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(388128, pipeline.source_lock_key(%s))", (sid,))
        assert run_source(db, sid) is None
        other.execute("SELECT pg_advisory_unlock(388128, pipeline.source_lock_key(%s))", (sid,))
    results = run_source(db, sid)
    assert results is not None and results[-1].status == "ok" and results[-1].points > 0
    assert db.autocommit is False
    again = run_source(db, sid)
    assert again == []
