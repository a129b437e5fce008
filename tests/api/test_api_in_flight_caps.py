"""Contract: per-project caps on work in flight. POST /rpc/create_job refuses a job past
jobs_in_flight_max queued or running jobs, POST /rpc/ingest_batch a batch past
points_in_flight_max points the pipeline has not processed yet: HTTP 429 (PT429) naming
the cap, the count and the fix, nothing stored; a project's own setting overrides the
default; two concurrent create_job calls never both pass on the same count."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.api.helpers import add_source, points
from tests.api.test_api_jobs import work
from tests.support.postgrest import Api, ApiError
from workers.pipeline import settings as pipeline_settings

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
JOBS_HINT = ("Wait for some to finish (GET /jobs lists them, state queued or running) and "
             "retry, or ask an operator to raise the cap: secinf pipeline settings -p "
             "ORG/PROJECT jobs_in_flight_max=N.")
POINTS_HINT = ("Retry once the pipeline has caught up (GET /sources: lag_s, caught_up), send "
               "smaller batches, or ask an operator to raise the cap: secinf pipeline "
               "settings -p ORG/PROJECT points_in_flight_max=N.")


def set_cap(db: Conn, project: str, key: str, value: int) -> None:
    """What the refusal's hint tells an operator to run (`secinf pipeline settings`)."""
    change = pipeline_settings.apply(db, project, {key: str(value)})
    assert (change.changed, change.notes) == ({key: value}, [])


def live_jobs(db: Conn, project: str) -> int:
    row = db.execute("SELECT count(*) AS n FROM jobs.jobs WHERE project_id = %s "
                     "AND state IN ('queued', 'running')", (project,)).fetchone()
    db.rollback()
    assert row is not None
    return int(row["n"])


def run_job(api: Api, source: str) -> dict[str, Any]:
    out = api.rpc("create_job", p_kind="pipeline_run", p_params=Jsonb({"source": source}))
    assert isinstance(out, dict)
    return out


def test_defaults_are_100_jobs_and_a_million_points(db: Conn) -> None:
    rows = db.execute("SELECT key, value FROM pipeline.settings WHERE project_id IS NULL "
                      "AND key LIKE '%%in_flight_max' ORDER BY key").fetchall()
    assert [(r["key"], r["value"]) for r in rows] == [("jobs_in_flight_max", 100),
                                                      ("points_in_flight_max", 1000000)]


def test_create_job_past_the_cap_is_429_and_queues_nothing(
        db: Conn, api: Api, projects: tuple[str, str]) -> None:
    a, b = projects
    for name in ("cam-1", "cam-2", "cam-3"):
        add_source(db, a, name)
    add_source(db, b, "cam-1")
    db.commit()
    set_cap(db, a, "jobs_in_flight_max", 2)
    first, _ = run_job(api, "cam-1"), run_job(api, "cam-2")
    with pytest.raises(ApiError) as err:
        run_job(api, "cam-3")
    assert (err.value.status, err.value.sqlstate, err.value.message, err.value.hint) == (
        429, "PT429", "too many jobs in flight: the project has 2 jobs queued or running, its "
                      "cap (jobs_in_flight_max) is 2", JOBS_HINT)
    assert live_jobs(db, a) == 2
    again = run_job(api, "cam-1")              # an equal live job is returned, not refused
    assert (again["job_id"], again["deduplicated"]) == (first["job_id"], True)
    other = Api(api.dsn).as_("customer", project_id=b, sub="key:sik_bbbbbbbbbbbb")
    assert run_job(other, "cam-1")["deduplicated"] is False   # B has its own count
    db.execute("UPDATE jobs.jobs SET state = 'cancelled', finished_at = now() "
               "WHERE job_id = %s", (first["job_id"],))
    db.commit()
    assert run_job(api, "cam-3")["deduplicated"] is False     # room again


def test_two_concurrent_create_jobs_do_not_both_pass_the_cap(
        db: Conn, api: Api, projects: tuple[str, str]) -> None:
    a = projects[0]
    for name in ("cam-1", "cam-2", "cam-3"):
        add_source(db, a, name)
    db.commit()
    set_cap(db, a, "jobs_in_flight_max", 2)
    run_job(api, "cam-1")
    # Request 1 creates the last allowed job and holds its transaction open for a while.
    slow = sql.SQL("SELECT api.create_job('pipeline_run', {}) AS job, pg_sleep(1.5)").format(
        sql.Literal(Jsonb({"source": "cam-2"})))
    outcome: dict[str, Any] = {}

    def first() -> None:
        outcome["rows"] = api.request("POST", "/rpc/create_job", slow)

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 10
    while True:  # until request 1 holds the project's lock
        row = db.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
                         "AND granted AND database = (SELECT oid FROM pg_database "
                         "WHERE datname = current_database())").fetchone()
        db.rollback()
        assert row is not None
        if row["n"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    started = time.monotonic()
    with pytest.raises(ApiError) as err:       # request 2 waits for 1, then counts 2
        run_job(api, "cam-3")
    waited = time.monotonic() - started
    thread.join()
    assert outcome["rows"][0]["job"]["deduplicated"] is False
    assert (err.value.status, err.value.message) == (
        429, "too many jobs in flight: the project has 2 jobs queued or running, its cap "
             "(jobs_in_flight_max) is 2")
    assert waited > 0.5
    assert live_jobs(db, a) == 2


def test_ingest_batch_past_the_points_cap_is_429_and_stores_nothing(
        db: Conn, api: Api, dsn: str, projects: tuple[str, str]) -> None:
    a = projects[0]
    set_cap(db, a, "points_in_flight_max", 500)

    def send(n: int, start_frame: int, **extra: Any) -> dict[str, Any]:
        out = api.rpc("ingest_batch", p_batch=Jsonb({
            "source": "gate", "fps": 10, "points": points(n, start_frame=start_frame),
            **extra}))
        assert isinstance(out, dict)
        return out

    first = send(300, 0, idempotency_key="b1")
    assert first["inserted"] == 300
    with pytest.raises(ApiError) as err:
        send(300, 100)
    assert (err.value.status, err.value.sqlstate, err.value.message, err.value.hint) == (
        429, "PT429", "too many points in flight: the project has 300 points the pipeline has "
                      "not processed yet, and this batch of 300 would pass its cap "
                      "(points_in_flight_max) of 500", POINTS_HINT)
    stored = db.execute("SELECT (SELECT count(*) FROM ingest.batches) AS batches, "
                        "(SELECT count(*) FROM ingest.track_points) AS points").fetchone()
    db.rollback()
    assert stored is not None and (stored["batches"], stored["points"]) == (1, 300)
    assert send(300, 0, idempotency_key="b1")["duplicate_batch"] is True  # stores nothing
    assert send(200, 100)["inserted"] == 200                  # exactly up to the cap

    run_job(api, "gate")
    assert work(dsn).succeeded == 1             # the pipeline catches up: 0 in flight
    assert send(300, 200)["inserted"] == 300
