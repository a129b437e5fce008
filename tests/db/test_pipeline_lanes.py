"""Parallel lanes (workers/pipeline/lanes.py): several sources at once, each range step by
step. The same outputs as one transaction, a source one backend at a time, a failing
source stopped alone and resumed where it stopped."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.pipeline_outputs import OUTPUTS, source_outputs
from tests.support.scene_loader import load_sim, project, run_tick
from workers.pipeline import tick
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology
from workers.simulate import preset_config, simulate

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _scenes() -> list[Any]:
    return [simulate(preset_config("plaza", seed=3, duration=40)),
            simulate(preset_config("corridor", seed=1, duration=30))]


def test_lanes_give_what_one_transaction_gives(db: Conn) -> None:
    pid = project(db)
    store.load(db, pid, load_ontology(DEFAULT_PATH))
    scenes = _scenes()
    laned = [load_sim(db, pid, s, name=f"lane-{i}") for i, s in enumerate(scenes)]
    report = tick(db, until_idle=True, parallel=2)
    assert not report.errors, report.errors
    assert report.points == sum(s.tracks.height for s in scenes)
    assert report.rows["candidates"] > 0
    # the same scenes again, ticked in one transaction (the laned sources have no work left)
    serial = [load_sim(db, pid, s, name=f"serial-{i}") for i, s in enumerate(scenes)]
    out = run_tick(db)
    assert sorted(int(s["source_id"]) for s in out["sources"]) == serial
    for a, b in zip(laned, serial, strict=True):
        mine, theirs = source_outputs(db, a), source_outputs(db, b)
        for table in OUTPUTS:
            assert mine[table] == theirs[table], table
        assert mine["features.kinematics"] and mine["candidates.candidates"]
    # every stage's watermark reached the newest point, and one run each was logged
    rows = db.execute("SELECT s.source_id, count(*) FILTER (WHERE r.status = 'ok') AS ok, "
                      "pipeline.watermark(s.source_id) = max(p.newest) AS caught_up "
                      "FROM ingest.sources s JOIN pipeline.runs r USING (source_id) "
                      "CROSS JOIN LATERAL (SELECT max(ts) AS newest FROM ingest.track_points t "
                      "WHERE t.source_id = s.source_id) p "
                      "WHERE s.source_id = ANY (%s) GROUP BY 1 ORDER BY 1", (laned,)).fetchall()
    assert rows == [{"source_id": s, "ok": 1, "caught_up": True} for s in laned]


def test_a_source_is_worked_by_one_backend_at_a_time(db: Conn, dsn: str) -> None:
    pid = project(db)
    held, free = (load_sim(db, pid, s, name=f"s{i}") for i, s in enumerate(_scenes()))
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(388128, pipeline.source_lock_key(%s))", (held,))
        report = tick(db, until_idle=True, parallel=2)
        assert not report.errors
        out = run_tick(db)            # pipeline.tick leaves the held source alone as well
        assert out["sources"] == []
        counts = db.execute("SELECT source_id, count(*) AS n FROM features.kinematics "
                            "GROUP BY 1 ORDER BY 1").fetchall()
        db.commit()
        assert counts == [{"source_id": free, "n": report.rows["kinematics"]}]
        # Release before closing: a closed connection's backend drops its session locks
        # only when it exits, which the next statement here may not wait for.
        other.execute("SELECT pg_advisory_unlock(388128, pipeline.source_lock_key(%s))",
                      (held,))
    # released: the next tick works it
    assert [int(s["source_id"]) for s in run_tick(db)["sources"]] == [held]


def test_a_failing_source_stops_alone_and_resumes_at_its_stage(db: Conn) -> None:
    good, bad = project(db, "good"), project(db, "bad")
    scenes = _scenes()
    ok_source = load_sim(db, good, scenes[0])
    bad_source = load_sim(db, bad, scenes[1])
    for pid in (good, bad):
        store.load(db, pid, load_ontology(DEFAULT_PATH))
    # a zero pair radius divides by zero in the candidates stage of the bad project only
    radius = db.execute("SELECT pipeline.setting(%s, 'relation_radius_m') AS v",
                        (bad,)).fetchone()
    assert radius is not None
    db.execute("INSERT INTO pipeline.settings (project_id, key, value) "
               "VALUES (%s, 'relation_radius_m', '0') ON CONFLICT (project_id, key) "
               "DO UPDATE SET value = excluded.value", (bad,))
    db.commit()
    report = tick(db, until_idle=True, parallel=2)
    assert [e.source_id for e in report.errors] == [bad_source]
    assert "division by zero" in (report.errors[0].error or "")
    marks = {(r["source_id"], r["stage"]) for r in db.execute(
        "SELECT source_id, stage FROM features.watermarks").fetchall()}
    stages = [r["name"] for r in db.execute(
        "SELECT name FROM pipeline.stages WHERE enabled ORDER BY position").fetchall()]
    db.commit()
    # the good source is done; the bad one kept the stages before the failing one
    assert {m[1] for m in marks if m[0] == ok_source} == set(stages)
    before = stages[:stages.index("candidates")]
    assert {m[1] for m in marks if m[0] == bad_source} == set(before)
    status = db.execute("SELECT last_status, last_error FROM pipeline.status "
                        "WHERE source_id = %s", (bad_source,)).fetchone()
    db.commit()
    assert status is not None and status["last_status"] == "error"
    # fixed and retried now (it would wait for its retry time otherwise): the next tick
    # resumes at the candidates stage (kinematics are not recomputed)
    db.execute("UPDATE pipeline.settings SET value = %s WHERE project_id = %s "
               "AND key = 'relation_radius_m'", (Jsonb(radius["v"]), bad))
    db.commit()
    again = tick(db, until_idle=True, parallel=2, retry_failing=True)
    assert not again.errors
    assert set(again.rows) == set(stages[stages.index("candidates"):])
    done = db.execute("SELECT count(*) AS n FROM features.watermarks WHERE source_id = %s "
                      "AND stage = 'candidates'", (bad_source,)).fetchone()
    assert done == {"n": 1}


def test_a_lane_is_one_call_as_a_cron_job_would_make_it(dsn: str, db: Conn) -> None:
    source = load_sim(db, project(db), _scenes()[1])
    with psycopg.connect(dsn, autocommit=True) as cron:   # a job: role pipeline, no budget
        cron.execute("SET ROLE pipeline")
        row = cron.execute("CALL pipeline.run_lane()").fetchone()
    assert row is not None
    (results,) = row
    assert [(r["source_id"], r["status"]) for r in results] == [(source, "ok")]
    # a scheduled lane leaves the settle margin, as pipeline.tick does
    lag = db.execute("SELECT newest - watermark AS lag FROM pipeline.status "
                     "WHERE source_id = %s", (source,)).fetchone()
    assert lag is not None and lag["lag"].total_seconds() == pytest.approx(2.0)
