"""Reliability under SIGKILL: worker processes die at random moments (mid-write-back
included) and restart; every job still ends with exactly one committed result."""

from __future__ import annotations

import random
import subprocess
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.db.queue_helpers import spawn_worker, state_counts
from tests.support.factories import make_project
from workers.queue import client

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]
JOBS = 800
WORKERS = 3
MAX_KILLS = 30  # then the tail drains undisturbed
WORKER_ARGS = ("--kinds", "echo", "--concurrency", "4", "--batch", "4", "--lease", "2",
               "--poll", "0.5", "--grace", "0")


def test_sigkilled_workers_lose_nothing_and_commit_each_result_once(db: Conn, dsn: str) -> None:
    project = make_project(db, "acme", "plaza")
    # Two fenced progress write-backs with random pauses inside and between them.
    ids = client.enqueue_many(db, project, "echo",
                              [{"message": str(i), "steps": 2, "sleep_s": [0.0, 0.04]}
                               for i in range(JOBS)],
                              max_attempts=100, retry_delay=timedelta(milliseconds=50))
    db.commit()
    rng = random.Random(6)
    workers: list[subprocess.Popen[bytes]] = [spawn_worker(dsn, *WORKER_ARGS)
                                              for _ in range(WORKERS)]
    kills = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < 90:
            counts = state_counts(dsn)
            if counts.get("succeeded", 0) == JOBS:
                break
            time.sleep(rng.uniform(0.15, 0.5))
            if kills < MAX_KILLS and counts.get("succeeded", 0) < JOBS * 0.9:
                victim = rng.randrange(WORKERS)
                workers[victim].kill()
                workers[victim].wait(5)
                kills += 1
                workers[victim] = spawn_worker(dsn, *WORKER_ARGS)
        elapsed = time.monotonic() - started
    finally:
        for w in workers:
            w.kill()
        for w in workers:
            w.wait(5)
    expired = db.execute("SELECT count(*) AS n FROM jobs.attempts WHERE outcome <> 'succeeded'"
                         ).fetchone()
    print(f"\nkill test: {JOBS} jobs, {WORKERS} worker processes, {kills} SIGKILLs, "
          f"{expired['n'] if expired else 0} lost attempts, "
          f"{elapsed:.1f}s, {JOBS / elapsed:.0f} jobs/s")

    assert state_counts(dsn) == {"succeeded": JOBS}
    assert kills >= 10
    results = db.execute(
        "SELECT j.job_id, j.attempt AS job_attempt, r.attempt, r.result, j.progress "
        "FROM jobs.jobs j JOIN jobs.results r USING (job_id)").fetchall()
    assert sorted(r["job_id"] for r in results) == sorted(ids)  # one row each (primary key)
    for r in results:
        assert r["attempt"] == r["job_attempt"]
        assert r["result"]["attempt"] == r["attempt"] and r["progress"] == {"step": 2}
    attempts = db.execute("SELECT outcome, count(*) AS n FROM jobs.attempts GROUP BY outcome"
                          ).fetchall()
    by_outcome = {r["outcome"]: r["n"] for r in attempts}
    assert by_outcome.pop("succeeded") == JOBS
    assert by_outcome.get("expired", 0) >= 1, by_outcome  # the killed attempts, recorded
    assert set(by_outcome) <= {"expired", "stale_refused"}, by_outcome
    one_success = db.execute(
        "SELECT count(*) AS n FROM (SELECT job_id FROM jobs.attempts WHERE outcome = 'succeeded' "
        "GROUP BY job_id HAVING count(*) <> 1) x").fetchone()
    assert one_success is not None and one_success["n"] == 0
