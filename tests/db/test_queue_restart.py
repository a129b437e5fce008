"""A worker survives a database restart: it reconnects (control, listener, pool) and
finishes every job. Runs on a private throwaway cluster, never the shared one."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from tests.db.queue_helpers import spawn_worker, state_counts, wait_for
from tests.support.throwaway_cluster import throwaway_cluster
from workers.queue import client

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _enqueue(conninfo: str, project: str, n: int) -> list[int]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
        return client.enqueue_many(conn, project, "echo",  # type: ignore[arg-type]
                                   [{"steps": 1, "sleep_s": [0.05, 0.15]}] * n,
                                   retry_delay=timedelta(milliseconds=100), max_attempts=20)


def test_worker_reconnects_after_pg_ctl_restart_and_finishes_everything() -> None:
    with throwaway_cluster() as tc:
        dsn = tc.conninfo
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT project_id FROM core.create_project("
                               "'acme', 'plaza', 'Plaza', 'free')").fetchone()
            assert row is not None
            project = str(row[0])
        _enqueue(dsn, project, 60)
        proc = spawn_worker(dsn, "--concurrency", "3", "--lease", "3", "--poll", "1")
        try:
            wait_for(lambda: state_counts(dsn).get("succeeded", 0) >= 10, 30, "first results")
            tc.restart()
            restarted = time.monotonic()
            _enqueue(dsn, project, 40)  # queued after the restart: found by NOTIFY or poll
            wait_for(lambda: state_counts(dsn) == {"succeeded": 100}, 45, "all 100 jobs")
            print(f"\nrestart test: all done {time.monotonic() - restarted:.1f}s after restart")
            assert proc.poll() is None, "the worker died with the database"
        finally:
            proc.kill()
            proc.wait(5)
        with psycopg.connect(dsn, autocommit=True) as conn:
            n = conn.execute("SELECT count(*) FROM jobs.results").fetchone()
            assert n is not None and n[0] == 100
