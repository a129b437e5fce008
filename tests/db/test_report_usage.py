"""Usage reports to Stripe (issue 18): billing.queue_usage_reports fills the outbox from
billing.usage and queues report_usage jobs; the job sends each report as a meter event.
Stripe's servers are unreachable here: the stripe client is pointed at a local recorder
(tests/support/stripe_recorder.py, SECINF_STRIPE_API_BASE) that records every request and,
like Stripe, answers a repeated Idempotency-Key with its first answer. Stripe dedupes meter
events by `identifier` (uniqueness over a rolling 24 hours at least); the tests assert the
recorder saw the same identifier again after a kill, never a second one for a report."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.db.queue_helpers import ROOT, wait_for
from tests.support.factories import make_project
from tests.support.stripe_recorder import closed_port, recorder
from workers.queue.worker import WorkerConfig, run_worker

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
EVENTS = "/v1/billing/meter_events"


def hour(n: int) -> datetime:
    """The start of the UTC hour n hours before the current one."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=n)


@pytest.fixture
def project(db: Conn) -> str:
    """A project whose organization is a Stripe customer since yesterday, with usage in two
    completed hours and in the current one; and a project of an organization that is none."""
    pid = make_project(db, "acme", "north")
    other = make_project(db, "zeta", "south")
    db.execute("INSERT INTO billing.customers (org_id, stripe_customer_id, created_at)"
               " SELECT org_id, 'cus_acme1', now() - interval '1 day' FROM core.projects"
               " WHERE project_id = %s", (pid,))
    for p, metric, h, amount in [(pid, "points_ingested", 3, 1200),
                                 (pid, "bytes_ingested", 3, 5000),
                                 (pid, "points_ingested", 2, 800),
                                 (pid, "points_ingested", 0, 7),
                                 (other, "points_ingested", 3, 99)]:
        db.execute("INSERT INTO billing.usage (project_id, metric, hour, amount)"
                   " VALUES (%s, %s, %s, %s)", (p, metric, hour(h), amount))
    db.commit()
    return pid


def queue_reports(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE pipeline")  # as pg_cron runs it
        row = conn.execute("SELECT billing.queue_usage_reports()").fetchone()
    assert row is not None
    return int(row[0])


def reports(db: Conn) -> list[dict[str, Any]]:
    db.commit()
    return db.execute("SELECT identifier, metric, hour, amount, state, attempts, last_error,"
                      " sent_at FROM billing.usage_reports ORDER BY hour, metric").fetchall()


def jobs(db: Conn) -> list[dict[str, Any]]:
    db.commit()
    return db.execute("SELECT job_id, project_id::text, state, failures, last_error"
                      " FROM jobs.jobs WHERE kind = 'report_usage' ORDER BY job_id").fetchall()


def work(dsn: str) -> None:
    run_worker(dsn, WorkerConfig(kinds=("report_usage",), mode="until_idle", concurrency=1,
                                 poll_s=0.2, lease_s=30.0), signals=False)


def due_now(db: Conn) -> None:
    """Skip the retry backoff (the tests do not wait for it)."""
    db.execute("UPDATE jobs.jobs SET run_after = now() WHERE kind = 'report_usage'"
               " AND state = 'queued'")
    db.commit()


def stripe_env(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    monkeypatch.setenv("SECINF_STRIPE_SECRET_KEY", "sk_test_123")
    monkeypatch.setenv("SECINF_STRIPE_API_BASE", base)
    monkeypatch.setenv("SECINF_STRIPE_METERS", "points_ingested=secinf_points")


# ---------------------------------------------------------------------- the outbox
def test_completed_hours_of_customers_fill_the_outbox_once(db: Conn, dsn: str,
                                                           project: str) -> None:
    assert queue_reports(dsn) == 3
    rows = reports(db)
    assert [(r["metric"], r["hour"], r["amount"], r["state"]) for r in rows] == [
        ("bytes_ingested", hour(3), 5000, "pending"), ("points_ingested", hour(3), 1200, "pending"),
        ("points_ingested", hour(2), 800, "pending")]
    assert rows[1]["identifier"] == \
        f"secinf-{project}-points_ingested-{int(hour(3).timestamp())}"
    [job] = jobs(db)
    assert (job["project_id"], job["state"]) == (project, "queued")
    # Again: no new row, no second live job.
    assert queue_reports(dsn) == 0
    assert len(reports(db)) == 3 and len(jobs(db)) == 1


# ---------------------------------------------------------------------- sending
def test_an_outage_delays_the_reports_and_each_is_sent_exactly_once(
        db: Conn, dsn: str, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    queue_reports(dsn)
    stripe_env(monkeypatch, f"http://127.0.0.1:{closed_port()}")  # Stripe is down
    work(dsn)
    [job] = jobs(db)
    assert (job["state"], job["failures"]) == ("queued", 1)  # retried after backoff
    assert "APIConnectionError" in job["last_error"]
    rows = reports(db)
    assert [r["state"] for r in rows] == ["pending"] * 3
    assert rows[0]["attempts"] == 1 and "APIConnectionError" in rows[0]["last_error"]

    with recorder() as rec:                                  # Stripe is back
        stripe_env(monkeypatch, rec.base_url)
        due_now(db)
        work(dsn)
        assert jobs(db)[0]["state"] == "succeeded"
        rows = reports(db)
        assert [r["state"] for r in rows] == ["sent"] * 3
        calls = rec.calls(EVENTS)
        assert [c.form["identifier"] for c in calls] == [r["identifier"] for r in rows]
        assert [c.headers["idempotency-key"] for c in calls] == [r["identifier"] for r in rows]
        assert [(c.form["event_name"], c.form["payload[value]"], int(c.form["timestamp"]))
                for c in calls] == [("secinf_bytes_ingested", "5000", int(hour(3).timestamp())),
                                    ("secinf_points", "1200", int(hour(3).timestamp())),
                                    ("secinf_points", "800", int(hour(2).timestamp()))]
        assert {c.form["payload[stripe_customer_id]"] for c in calls} == {"cus_acme1"}

        # The job again (the next hour's run): nothing is sent twice.
        assert queue_reports(dsn) == 0
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT jobs.enqueue(%s, 'report_usage', '{}')", (project,))
        work(dsn)
        assert len(rec.calls(EVENTS)) == 3
        assert [j["state"] for j in jobs(db)] == ["succeeded", "succeeded"]


def test_a_worker_killed_between_send_and_mark_resends_the_same_identifier(
        db: Conn, dsn: str, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first meter event reaches the recorder, which holds its answer back; the worker
    is SIGKILLed meanwhile, so Stripe has the event and the outbox still says pending. The
    next attempt sends that report again with the same identifier (and idempotency key),
    which Stripe dedupes: the recorder sees one identifier per report, the first twice."""
    queue_reports(dsn)
    with recorder(delay_first_s=30) as rec:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SECINF_")}
        env.update(SECINF_DSN=dsn, SECINF_STRIPE_SECRET_KEY="sk_test_123",
                   SECINF_STRIPE_API_BASE=rec.base_url)
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers.queue", "--kinds", "report_usage", "--lease", "2",
             "--poll", "0.3", "--grace", "0"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: len(rec.calls(EVENTS)) == 1, 30, "the first meter event")
        finally:
            worker.kill()
            worker.wait(10)
        assert [r["state"] for r in reports(db)] == ["pending"] * 3
        time.sleep(2.2)  # the killed attempt's lease runs out
        db.execute("SELECT jobs.reap_expired()")  # as the next claim would, with backoff
        due_now(db)
        stripe_env(monkeypatch, rec.base_url)
        work(dsn)
        db.commit()
        state = db.execute("SELECT state FROM jobs.jobs WHERE kind = 'report_usage'").fetchone()
        assert state == {"state": "succeeded"}
        rows = reports(db)
        assert [r["state"] for r in rows] == ["sent"] * 3
        seen = Counter(c.form["identifier"] for c in rec.calls(EVENTS))
        assert set(seen) == {r["identifier"] for r in rows}
        assert seen[rows[0]["identifier"]] == 2 and sum(seen.values()) == 4
        # Stripe applied each once: a repeated key gets the first answer (rec.answers).
        assert len(rec.answers) == 3
        keys = [c.headers["idempotency-key"] for c in rec.calls(EVENTS)]
        assert keys[0] == keys[1] == rows[0]["identifier"]


def test_a_stale_attempt_cannot_mark_a_report(db: Conn, dsn: str, project: str) -> None:
    queue_reports(dsn)
    [job] = jobs(db)
    ident = reports(db)[0]["identifier"]
    with psycopg.connect(dsn) as conn:
        conn.execute("SET ROLE pipeline")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT billing.record_usage_report(%s, 1, %s, 'sent')",
                         (job["job_id"], ident))
    assert err.value.sqlstate == "JB001"
    assert reports(db)[0]["state"] == "pending"


def test_a_report_older_than_stripe_accepts_is_marked_failed(
        db: Conn, dsn: str, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db.execute("UPDATE billing.customers SET created_at = now() - interval '60 days'")
    db.execute("INSERT INTO billing.usage (project_id, metric, hour, amount)"
               " VALUES (%s, 'events_verified', %s, 4)", (project, hour(24 * 40)))
    db.commit()
    assert queue_reports(dsn) == 4
    with recorder() as rec:
        stripe_env(monkeypatch, rec.base_url)
        work(dsn)
        assert len(rec.calls(EVENTS)) == 3
    rows = reports(db)
    assert [r["state"] for r in rows] == ["failed", "sent", "sent", "sent"]
    assert "35 days" in rows[0]["last_error"]
