"""The analytics refresh job under pg_cron, on a private throwaway cluster (pg_cron lives only
in the database named by cron.database_name, never in the shared cluster's test copies).

pg_cron 1.4 schedules by the minute: the test moves the job to every minute and waits for
its first run. pg_cron may skip the minute in which a job is altered, and the machine running
CI is loaded, so the wait allows three minutes; a failure prints every run pg_cron recorded."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.analytics_data import build
from tests.support.throwaway_cluster import throwaway_cluster

pytestmark = [pytest.mark.db, pytest.mark.slow]
JOB = "secinf-analytics-refresh"


def test_cron_job_refreshes_the_views_as_pipeline() -> None:
    with throwaway_cluster() as tc, \
            psycopg.connect(tc.conninfo, row_factory=dict_row, autocommit=True) as db:
        job = db.execute("SELECT jobid, schedule, command, username, database, active"
                         " FROM cron.job WHERE jobname = %s", (JOB,)).fetchone()
        assert job is not None
        assert {k: job[k] for k in ("schedule", "command", "username", "active")} == {
            "schedule": "*/5 * * * *", "command": "SELECT count(*) FROM analytics.refresh()",
            "username": "pipeline", "active": True}
        assert job["database"] == db.info.dbname
        with psycopg.connect(tc.conninfo, row_factory=dict_row) as writer:
            build(writer)
        unpopulated = db.execute("SELECT count(*) AS n FROM pg_class WHERE relkind = 'm'"
                                 " AND relnamespace = 'analytics'::regnamespace"
                                 " AND NOT relispopulated").fetchone()
        assert unpopulated == {"n": 7}
        db.execute("SELECT cron.alter_job(%s, schedule => '* * * * *')", (job["jobid"],))
        deadline = time.monotonic() + 180
        run: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            run = db.execute("SELECT status, return_message FROM cron.job_run_details"
                             " WHERE jobid = %s AND status IN ('succeeded', 'failed')"
                             " ORDER BY runid LIMIT 1", (job["jobid"],)).fetchone()
            if run is not None:
                break
            time.sleep(0.5)
        runs = db.execute("SELECT j.jobname, d.status, d.return_message, d.start_time"
                          " FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
                          " ORDER BY d.runid").fetchall()
        assert run == {"status": "succeeded", "return_message": "SELECT 1"}, runs
        row = db.execute("SELECT analytics.refreshed_at() AS at,"
                         " (SELECT sum(events) FROM api.metrics_class_balance()) AS events"
                         ).fetchone()
        assert row is not None and row["at"] is not None and row["events"] == 31
