"""The worker: NOTIFY wake-ups, poison jobs, SIGTERM, unknown kinds."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.db.queue_helpers import ThreadWorker, scalar, spawn_worker, state_counts, wait_for
from tests.support.factories import make_project
from workers.queue import client
from workers.queue.worker import WorkerConfig

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def test_notify_wakes_an_idle_worker_within_a_second(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    config = WorkerConfig(poll_s=60.0, lease_s=10.0)
    with ThreadWorker(dsn, config):
        time.sleep(1.0)  # the worker is idle now, waiting for its 60 s poll
        latencies = []
        for _ in range(3):
            job_id = client.enqueue(db, project, "noop")
            db.commit()
            latencies.append(wait_for(
                lambda j=job_id: scalar(dsn, "SELECT state FROM jobs.jobs WHERE job_id = %s",
                                        (j,)) == "succeeded", 5.0, "the notified job"))
            time.sleep(0.3)
    assert max(latencies) < 1.0, latencies


def test_poison_jobs_neither_crash_nor_stall_the_worker(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    one = {"max_attempts": 1}
    ids = {
        "hang": client.enqueue(db, project, "test_hang", **one),
        "boom": client.enqueue(db, project, "test_boom", max_attempts=2,
                               retry_delay=timedelta(0)),
        "exit": client.enqueue(db, project, "test_exit", **one),
        "vanished": client.enqueue(db, project, "test_vanished", {"candidate_id": 7}),
        "invalid": client.enqueue(db, project, "echo", {"mesage": "typo"}),
        "unknown": client.enqueue(db, project, "no_such_kind"),
        "permanent": client.enqueue(db, project, "echo", {"fail_permanently": True}),
        "flaky": client.enqueue(db, project, "echo", {"fail_times": 2},
                                retry_delay=timedelta(0)),
    }
    healthy = client.enqueue_many(db, project, "noop", [{}] * 20)
    db.commit()
    config = WorkerConfig(concurrency=2, batch=4, lease_s=5.0, poll_s=0.5, mode="until_idle",
                          plugins=("tests.support.queue_kinds",))
    started = time.monotonic()
    with ThreadWorker(dsn, config) as tw:
        tw.thread.join(30)
        assert not tw.thread.is_alive()
    assert time.monotonic() - started < 20
    rows = {r["job_id"]: r for r in db.execute(
        "SELECT job_id, state, failures, last_error FROM jobs.jobs").fetchall()}
    assert all(rows[j]["state"] == "succeeded" for j in healthy)
    assert rows[ids["flaky"]]["state"] == "succeeded" and rows[ids["flaky"]]["failures"] == 2
    expected_dead = {
        "hang": "timed out: the handler ran past its 1s limit",
        "boom": "ValueError: boom",
        "exit": "SystemExit: 3",
        "vanished": "candidate 7 no longer exists",
        "invalid": "invalid payload for job kind 'echo': mesage: Extra inputs are not permitted",
        "unknown": "unknown job kind 'no_such_kind': no handler is registered for it",
        "permanent": "echo: planned permanent failure",
    }
    for name, message in expected_dead.items():
        row = rows[ids[name]]
        assert row["state"] == "dead", (name, row)
        assert row["last_error"].startswith(message), (name, row["last_error"])
    assert rows[ids["boom"]]["failures"] == 2  # retried once, then dead
    assert rows[ids["vanished"]]["failures"] == 1  # permanent: no retry
    assert tw.stats is not None and tw.stats.timed_out == 1


def test_a_declared_kind_without_handler_waits_for_a_worker_that_has_one(
    db: Conn, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import BaseModel

    from workers.queue import registry

    class Payload(BaseModel):
        pass

    monkeypatch.setitem(registry._KINDS, "awaits_handler",
                        registry.JobKind("awaits_handler", Payload, None, 30.0, "test"))
    project = make_project(db, "acme", "plaza")
    job_id = client.enqueue(db, project, "awaits_handler", {})
    client.enqueue(db, project, "noop")
    db.commit()
    with ThreadWorker(dsn, WorkerConfig(mode="until_idle", poll_s=0.2)) as tw:
        tw.thread.join(15)
    assert scalar(dsn, "SELECT state FROM jobs.jobs WHERE job_id = %s", (job_id,)) == "queued"
    assert state_counts(dsn) == {"queued": 1, "succeeded": 1}


def test_score_candidates_without_a_model_dead_letters_with_the_fix(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    job_id = client.enqueue(db, project, "score_candidates", {"candidate_ids": [1, 2]})
    db.commit()
    with ThreadWorker(dsn, WorkerConfig(mode="until_idle", poll_s=0.2)) as tw:
        tw.thread.join(15)
    assert scalar(dsn, "SELECT state FROM jobs.jobs WHERE job_id = %s", (job_id,)) == "dead"
    error = scalar(dsn, "SELECT last_error FROM jobs.jobs WHERE job_id = %s", (job_id,))
    assert "no scoring model is registered: run `secinf train` first" in error


def test_sigterm_finishes_running_jobs_then_exits(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    client.enqueue_many(db, project, "echo", [{"steps": 1, "sleep_s": [1.0, 1.0]}] * 3)
    db.commit()
    proc = spawn_worker(dsn, "--concurrency", "4", "--grace", "10", "--poll", "0.5")
    try:
        wait_for(lambda: state_counts(dsn).get("running") == 3, 15, "three running jobs")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    assert state_counts(dsn) == {"succeeded": 3}


def test_sigterm_releases_jobs_that_outlive_the_grace_period(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    ids = client.enqueue_many(db, project, "echo", [{"hang_s": 60}] * 2)
    db.commit()
    proc = spawn_worker(dsn, "--grace", "0.5", "--poll", "0.5")
    try:
        wait_for(lambda: state_counts(dsn).get("running") == 2, 15, "two running jobs")
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
    finally:
        proc.kill()
    assert state_counts(dsn) == {"queued": 2}
    outcomes = db.execute("SELECT job_id, outcome, error FROM jobs.attempts ORDER BY job_id"
                          ).fetchall()
    assert [(r["job_id"], r["outcome"]) for r in outcomes] == [(i, "released") for i in ids]
    assert outcomes[0]["error"] == "released: the worker shut down"
    failures = db.execute("SELECT sum(failures) AS n FROM jobs.jobs").fetchone()
    assert failures is not None and failures["n"] == 0  # a release is not a failure
