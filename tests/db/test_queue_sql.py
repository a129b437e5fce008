"""The queue's SQL contract: claims, fencing, backoff, dead letters, priorities, grants."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.factories import make_project
from workers.queue import client
from workers.queue.client import StaleAttempt

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def pipeline_conn(dsn: str) -> Conn:
    """A session acting as the pipeline role, as workers do."""
    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
    conn.execute("SET ROLE pipeline")
    return conn


def test_stale_attempt_is_refused_with_the_exact_message_and_changes_nothing(
        db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    with pipeline_conn(dsn) as a, pipeline_conn(dsn) as b:
        job_id = client.enqueue(a, project, "echo", {}, retry_delay=timedelta(0))
        [first] = client.claim(a, "worker-a", lease=timedelta(milliseconds=300))
        assert (first.job_id, first.attempt) == (job_id, 1)
        client.progress(a, job_id, 1, {"step": 1})
        time.sleep(0.4)
        [second] = client.claim(b, "worker-b", lease=timedelta(seconds=30))
        assert (second.job_id, second.attempt) == (job_id, 2)

        expected = f"stale attempt: job {job_id} attempt 1 no longer holds the lease"
        for call in (
            lambda: client.complete(a, job_id, 1, {"from": "a"}),
            lambda: client.heartbeat(a, job_id, 1),
            lambda: client.progress(a, job_id, 1, {"step": 99}),
            lambda: client.fail(a, job_id, 1, "late failure"),
            lambda: client.release(a, job_id, 1),
        ):
            with pytest.raises(StaleAttempt) as refused:
                call()
            assert str(refused.value) == expected
            assert refused.value.__cause__.sqlstate == "JB001"  # type: ignore[union-attr]
        with pytest.raises(StaleAttempt, match="^" + expected + "$"), \
                client.write_back(a, job_id, 1) as conn:
            conn.execute("UPDATE jobs.jobs SET priority = -1 WHERE job_id = %s", (job_id,))
        client.note_stale(a, job_id, 1, "complete")

        job = client.show_job(db, job_id)
        assert (job["state"], job["attempt"], job["result"]) == ("running", 2, None)
        assert job["priority"] != -1 and job["progress"] == {"step": 1}
        assert client.complete(b, job_id, 2, {"from": "b"}) is True
        assert client.complete(b, job_id, 2, {"from": "b"}) is False  # a retried call
        job = client.show_job(db, job_id)
        assert (job["state"], job["result"], job["result_attempt"]) == ("succeeded",
                                                                        {"from": "b"}, 2)
        assert [(x["attempt"], x["worker"], x["outcome"]) for x in job["attempts"]] == [
            (1, "worker-a", "stale_refused"), (2, "worker-b", "succeeded")]
        assert "lease expired" in job["attempts"][0]["error"]


def test_one_result_per_job_is_a_constraint(db: Conn) -> None:
    project = make_project(db, "acme", "plaza")
    job_id = client.enqueue(db, project, "noop")
    db.execute("INSERT INTO jobs.results (job_id, project_id, attempt) VALUES (%s, %s, 1)",
               (job_id, project))
    with pytest.raises(psycopg.errors.UniqueViolation, match="results_pkey"):
        db.execute("INSERT INTO jobs.results (job_id, project_id, attempt) VALUES (%s, %s, 2)",
                   (job_id, project))


def test_concurrent_claimers_never_claim_the_same_job(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    ids = client.enqueue_many(db, project, "noop", [{}] * 300)
    db.commit()
    claimed: list[list[int]] = [[] for _ in range(8)]
    over_limit: list[int] = []
    start = threading.Barrier(8)

    def claimer(i: int) -> None:
        with pipeline_conn(dsn) as conn:
            start.wait()
            while True:
                jobs = client.claim(conn, f"w{i}", limit=3)
                if not jobs:
                    return
                if len(jobs) > 3:
                    over_limit.append(len(jobs))
                claimed[i].extend(j.job_id for j in jobs)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [j for part in claimed for j in part]
    assert not over_limit
    assert len(everything) == len(set(everything)) == 300
    assert sorted(everything) == sorted(ids)
    assert sum(1 for part in claimed if part) >= 2, "the claimers did not overlap at all"
    rows = db.execute("SELECT count(*) AS n FROM jobs.attempts WHERE attempt = 1").fetchone()
    assert rows is not None and rows["n"] == 300


def test_backoff_grows_exponentially_with_jitter_then_dead_letters(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    with pipeline_conn(dsn) as conn:
        job_id = client.enqueue(conn, project, "echo", {}, max_attempts=3,
                                retry_delay=timedelta(seconds=10))
        delays = []
        for n in (1, 2):
            [job] = client.claim(conn, "w", kinds=["echo"])
            assert job.attempt == n
            assert client.fail(conn, job_id, n, f"failure {n}") == "queued"
            row = conn.execute("SELECT extract(epoch FROM run_after - clock_timestamp()) AS d, "
                               "state, lease_until FROM jobs.jobs WHERE job_id = %s",
                               (job_id,)).fetchone()
            assert row is not None and row["state"] == "queued" and row["lease_until"] is None
            delays.append(float(row["d"]))
            assert client.claim(conn, "w") == []  # not due during the backoff
            conn.execute("UPDATE jobs.jobs SET run_after = now() WHERE job_id = %s", (job_id,))
        assert 4.9 <= delays[0] <= 10.0 and 9.9 <= delays[1] <= 20.0
        [job] = client.claim(conn, "w")
        assert client.fail(conn, job_id, 3, "failure 3") == "dead"
        row = conn.execute("SELECT state, last_error, failures, finished_at FROM jobs.jobs "
                           "WHERE job_id = %s", (job_id,)).fetchone()
        assert row is not None
        assert (row["state"], row["last_error"], row["failures"]) == ("dead", "failure 3", 3)
        assert row["finished_at"] is not None
        samples = [float(r["s"]) for r in conn.execute(
            "SELECT extract(epoch FROM jobs.backoff('1 second', 4)) AS s "
            "FROM generate_series(1, 200)").fetchall()]
        assert all(4.0 <= s <= 8.0 for s in samples) and max(samples) - min(samples) > 1.0
        assert client.retry(db, job_id) == "queued"


def test_priority_defaults_to_the_plan_and_orders_claims(db: Conn) -> None:
    free = make_project(db, "small", "shop")
    db.execute("SELECT core.create_project('bigco', 'hq', 'HQ', 'enterprise')")
    big = str(db.execute("SELECT project_id FROM core.projects WHERE slug = 'hq'"
                         ).fetchone()["project_id"])  # type: ignore[index]
    low = client.enqueue(db, free, "noop")
    high = client.enqueue(db, big, "noop")
    urgent = client.enqueue(db, free, "noop", priority=100)
    prios = {r["job_id"]: r["priority"] for r in db.execute(
        "SELECT job_id, priority FROM jobs.jobs").fetchall()}
    assert prios == {low: 0, high: 10, urgent: 100}
    assert [j.job_id for j in client.claim(db, "w", limit=3)] == [urgent, high, low]


def test_dedupe_key_keeps_one_live_job(db: Conn) -> None:
    project = make_project(db, "acme", "plaza")
    a = client.enqueue(db, project, "noop", dedupe_key="source-1")
    assert client.enqueue(db, project, "noop", dedupe_key="source-1") == a
    [job] = client.claim(db, "w")
    client.complete(db, job.job_id, job.attempt)
    assert client.enqueue(db, project, "noop", dedupe_key="source-1") != a


def test_cancel_refuses_the_running_attempt(db: Conn) -> None:
    project = make_project(db, "acme", "plaza")
    job_id = client.enqueue(db, project, "noop")
    [job] = client.claim(db, "w")
    assert client.cancel(db, job_id) == "cancelled"
    db.commit()
    with pytest.raises(StaleAttempt):
        client.complete(db, job_id, job.attempt)
    db.rollback()
    with pytest.raises(Exception, match=f"job {job_id} is cancelled: only queued or running"):
        client.cancel(db, job_id)


def test_grants_pipeline_works_project_admin_reads_own_customer_no_internals(
        db: Conn, dsn: str) -> None:
    mine = make_project(db, "acme", "plaza")
    other = make_project(db, "rival", "yard")
    client.enqueue(db, mine, "noop")
    client.enqueue(db, other, "noop")
    db.execute("SELECT core.add_member(%s, 'user', 'ann', 'project_admin')", (mine,))
    db.commit()
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET ROLE project_admin")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                     ('{"sub": "ann", "role": "project_admin"}',))
        rows = conn.execute("SELECT project_id FROM jobs.jobs").fetchall()
        assert [str(r["project_id"]) for r in rows] == [mine]
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for function claim"):
            conn.execute("SELECT * FROM jobs.claim('x')")
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET ROLE customer")
        # Customers poll their jobs (api.jobs, sql/973_grants_api.sql) but never see the
        # worker's lease internals nor call the queue's functions.
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for table jobs"):
            conn.execute("SELECT * FROM jobs.jobs")
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET ROLE customer")
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for table jobs"):
            conn.execute("SELECT worker, lease_until FROM jobs.jobs")
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET ROLE customer")
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for function claim"):
            conn.execute("SELECT * FROM jobs.claim('x')")
    with pipeline_conn(dsn) as conn:
        assert len(client.claim(conn, "w", limit=10)) == 2
