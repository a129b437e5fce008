"""Contract: GET /sources, POST /rpc/create_job, GET /rpc/job, GET /jobs — a job created
through the API is run by a real worker and polled to its end."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.api.helpers import T0, points, scene_points
from tests.support.postgrest import Api, ApiError
from workers.pipeline import jobs as api_jobs
from workers.queue.worker import WorkerConfig, WorkerStats, run_worker
from workers.rules import store
from workers.rules.jobs import RULES_BACKFILL
from workers.rules.ontology import load_ontology
from workers.settings import ONTOLOGIES_DIR

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
KINDS = (api_jobs.PIPELINE_RUN, api_jobs.PIPELINE_REPROCESS, RULES_BACKFILL)


def work(dsn: str) -> WorkerStats:
    """A real worker with the API's job kinds, until nothing is due."""
    config = WorkerConfig(kinds=KINDS, mode="until_idle",
                          plugins=("workers.pipeline.jobs", "workers.rules.jobs"),
                          concurrency=1, poll_s=0.5, lease_s=30.0)
    return run_worker(dsn, config, signals=False)


def ingest(api: Api, n: int, **extra: Any) -> dict[str, Any]:
    out = api.rpc("ingest_batch", p_batch=Jsonb({"source": "gate", "fps": 10,
                                                 "points": points(n), **extra}))
    assert isinstance(out, dict)
    return out


def source(api: Api, name: str = "gate") -> dict[str, Any]:
    rows = [r for r in api.get("sources") if r["name"] == name]
    assert len(rows) == 1
    return rows[0]


# ---------------------------------------------------------------- the round trip
def test_pipeline_run_job_is_executed_by_a_worker_and_polled_done(api: Api, dsn: str,
                                                                  db: Conn) -> None:
    ingest(api, 300)
    before = source(api)
    assert before["watermark"] is None and before["caught_up"] is False
    assert before["newest_ts"] == T0 + timedelta(seconds=9.9)

    job = api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    assert job["state"] == "queued" and job["kind"] == "pipeline_run"
    assert job["params"] == {"source_id": before["source_id"]}
    assert job["created_by"] == "key:sik_0123456789ab" and job["deduplicated"] is False
    assert api.rpc("job", p_job_id=job["job_id"])["state"] == "queued"

    stats = work(dsn)
    assert stats.succeeded == 1
    done = api.rpc("job", p_job_id=job["job_id"])
    assert (done["state"], done["attempts"], done["error"]) == ("succeeded", 1, None)
    assert done["result"]["points"] == 300 and done["result"]["source"] == "gate"
    assert done["result"]["watermark"] == "2026-01-01T00:00:09.900000+00:00"
    assert done["progress"]["points"] == 300
    after = source(api)
    assert after["caught_up"] is True and after["lag_s"] == 0
    assert after["last_run_status"] == "ok" and after["watermark"] == before["newest_ts"]
    assert set(after["stages"]) >= {"kinematics", "zone_presence", "change_points"}
    assert [j["job_id"] for j in api.get("jobs")] == [job["job_id"]]


def test_a_pipeline_run_job_works_its_own_source_only(api: Api, dsn: str) -> None:
    ingest(api, 300)
    api.rpc("ingest_batch", p_batch=Jsonb({"source": "door", "fps": 10, "points": points(200)}))
    api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    assert work(dsn).succeeded == 1
    assert source(api, "gate")["caught_up"] is True
    other = source(api, "door")
    assert other["watermark"] is None and other["caught_up"] is False


def test_late_data_shows_as_dirty_and_reprocess_jobs_consume_their_range(api: Api,
                                                                         dsn: str) -> None:
    ingest(api, 300)
    api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    work(dsn)
    late = [{"track_id": "9", "frame": f, "t": f / 10, "x": 5.0, "y": 5.0} for f in range(10)]
    out = api.rpc("ingest_batch", p_batch=Jsonb({"source": "gate", "points": late}))
    assert out["late"] is not None
    pending = source(api)
    assert pending["caught_up"] is False and pending["dirty_pending"] == 1
    assert pending["dirty_ranges"][0]["reason"] == "late data"

    job = api.rpc("create_job", p_kind="pipeline_reprocess", p_params=Jsonb({
        "source_id": pending["source_id"], "from": "2026-01-01T00:00:02Z",
        "to": "2026-01-01T00:00:04Z"}))
    assert job["params"]["from_ts"] == "2026-01-01T00:00:02+00:00"
    work(dsn)
    done = api.rpc("job", p_job_id=job["job_id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["dirty_ranges_done"] == 2 and done["result"]["dirty_pending"] == 0
    assert source(api)["caught_up"] is True


def test_rules_backfill_needs_an_ontology_and_then_runs(api: Api, dsn: str, db: Conn,
                                                       projects: tuple[str, str],
                                                       tmp_path: Path) -> None:
    scene = scene_points(tmp_path)
    assert len(scene) <= 10_000
    api.rpc("ingest_batch", p_batch=Jsonb({"source": "gate", "fps": 10, "points": scene}))
    job = api.rpc("create_job", p_kind="rules_backfill", p_params=Jsonb({}))
    assert job["params"] == {}
    work(dsn)
    dead = api.rpc("job", p_job_id=job["job_id"])
    assert (dead["state"], dead["attempts"]) == ("dead", 1)
    assert dead["error"].startswith("the project has no ontology loaded")

    store.load(db, projects[0], load_ontology(ONTOLOGIES_DIR / "default.yaml"))
    db.commit()
    api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    work(dsn)  # the tick's candidates stage runs the rules; then forget what it found
    found = db.execute("DELETE FROM candidates.candidates RETURNING type").fetchall()
    db.commit()
    assert found, "the scene produced no candidate: the backfill would prove nothing"
    again = api.rpc("create_job", p_kind="rules_backfill", p_params=Jsonb({"source": "gate"}))
    work(dsn)
    done = api.rpc("job", p_job_id=again["job_id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["result"] == {"sources": {"gate": len(found)}, "inserted": len(found)}


def test_an_equal_live_job_is_returned_not_queued_twice(api: Api) -> None:
    ingest(api, 30)
    first = api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    second = api.rpc("create_job", p_kind="pipeline_run",
                     p_params=Jsonb({"source_id": first["params"]["source_id"]}))
    assert second["job_id"] == first["job_id"] and second["deduplicated"] is True
    assert len(api.get("jobs")) == 1


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(("kind", "params", "status", "message"), [
    ("rm_rf", {}, 400, 'unknown job kind "rm_rf"'),
    ("pipeline_run", {"source": "gate", "force": True}, 400,
     "unknown parameter(s) for pipeline_run: force"),
    ("pipeline_run", {}, 400, 'name the source: "source_id" or "source" (its name)'),
    ("pipeline_run", {"source": "nowhere"}, 404, "source nowhere not found in your project"),
    ("pipeline_reprocess", {"source": "gate", "from": "2026-01-02", "to": "2026-01-01"}, 400,
     'pipeline_reprocess needs "from" before "to"'),
    ("pipeline_reprocess", {"source": "gate", "from": "soon", "to": "later"}, 400,
     "from and to must be timestamps"),
    ("pipeline_run", {"source": "gate", "project_id": "north"}, 400,
     'project_id "north" is not a project id'),
])
def test_bad_job_requests_are_clear_errors(api: Api, kind: str, params: dict[str, Any],
                                           status: int, message: str) -> None:
    ingest(api, 3)
    with pytest.raises(ApiError) as err:
        api.rpc("create_job", p_kind=kind, p_params=Jsonb(params))
    assert (err.value.status, err.value.message) == (status, message)
    if kind == "rm_rf":
        assert err.value.hint == ("Kinds: pipeline_run, pipeline_reprocess, rules_backfill "
                                  "(docs/api.md).")


def test_polling_an_unknown_job_is_a_404(api: Api) -> None:
    with pytest.raises(ApiError) as err:
        api.rpc("job", p_job_id=999_999)
    assert (err.value.status, err.value.message) == (404, "job 999999 not found in your projects")


# ---------------------------------------------------------------- who may do what where
def test_authentication_and_roles(dsn: str, api: Api, projects: tuple[str, str]) -> None:
    a, _ = projects
    ingest(api, 3)
    job = api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    anon = Api(dsn)
    for call in (lambda: anon.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({})),
                 lambda: anon.rpc("job", p_job_id=job["job_id"]),
                 lambda: anon.get("jobs"), lambda: anon.get("sources")):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 401 and err.value.message.startswith("permission denied")
    reviewer = Api(dsn).as_("reviewer", project_id=a)
    with pytest.raises(ApiError) as err:
        reviewer.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    assert (err.value.status, err.value.message) == (
        403, "permission denied for function create_job")
    with pytest.raises(ApiError) as err:
        reviewer.get("jobs")
    assert (err.value.status, err.value.message) == (403, "permission denied for view jobs")
    assert [s["name"] for s in reviewer.get("sources")] == ["gate"]
    admin = Api(dsn).as_("project_admin", project_id=a)
    assert admin.rpc("job", p_job_id=job["job_id"])["job_id"] == job["job_id"]


def test_another_projects_jobs_and_sources_are_out_of_reach(dsn: str, api: Api, db: Conn,
                                                            projects: tuple[str, str]) -> None:
    a, b = projects
    ingest(api, 3)
    job = api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": "gate"}))
    other = Api(dsn).as_("customer", project_id=b)
    with pytest.raises(ApiError) as err:
        other.rpc("job", p_job_id=job["job_id"])
    assert err.value.status == 404
    assert other.get("jobs") == [] and other.get("sources") == []
    with pytest.raises(ApiError) as err:  # A's source, named by id, from B
        other.rpc("create_job", p_kind="pipeline_run",
                  p_params=Jsonb({"source_id": job["params"]["source_id"]}))
    assert (err.value.status, err.value.message) == (
        404, f"source {job['params']['source_id']} not found in your project")
    with pytest.raises(ApiError) as err:  # a job in A, asked for by B
        other.rpc("create_job", p_kind="pipeline_run",
                  p_params=Jsonb({"project_id": a, "source": "gate"}))
    assert err.value.status == 403 and err.value.message.startswith("not allowed")
    row = db.execute("SELECT count(*) AS n FROM jobs.jobs WHERE project_id = %s", (b,)).fetchone()
    assert row == {"n": 0}
