"""`secinf jobs replay`: dead letters re-queued in bulk, filtered by kind, project and time,
skipping jobs another session holds (docs/operations.md, "Runbook: dead letters")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner, Result

from tests.support.factories import make_project
from workers.cli import output
from workers.cli.jobs_cmd import app as jobs_app
from workers.cli.jobs_cmd import parse_since
from workers.errors import UserError
from workers.queue import client

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
cli = typer.Typer()
cli.add_typer(jobs_app, name="jobs")


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "width", 200)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["jobs", *args])


def dead_job(db: Conn, project: str, kind: str) -> int:
    """A job that failed its only attempt: a dead letter."""
    job_id = client.enqueue(db, project, kind, {}, max_attempts=1)
    db.commit()
    (job,) = client.claim(db, "w1", kinds=[kind])
    assert job.job_id == job_id
    assert client.fail(db, job_id, job.attempt, f"{kind} broke") == "dead"
    db.commit()
    return job_id


def states(db: Conn) -> dict[int, tuple[str, int]]:
    rows = db.execute("SELECT job_id, state, failures FROM jobs.jobs ORDER BY job_id")
    return {r["job_id"]: (r["state"], r["failures"]) for r in rows}


def test_replay_requeues_dead_letters_by_kind_project_and_time(db: Conn, dsn: str,
                                                                secinf_env: str) -> None:
    north, south = make_project(db, "acme", "north"), make_project(db, "acme", "south")
    echo1, echo2 = dead_job(db, north, "echo"), dead_job(db, north, "echo")
    other = dead_job(db, north, "noop")
    theirs = dead_job(db, south, "echo")
    old = dead_job(db, north, "echo")
    db.execute("UPDATE jobs.jobs SET finished_at = now() - interval '3 days' WHERE job_id = %s",
               (old,))
    db.commit()
    before = states(db)

    preview = json.loads(run("replay", "--kind", "echo", "--dry-run", "--json").stdout)
    assert [r["job_id"] for r in preview["would_replay"]] == [echo1, echo2, theirs, old]
    assert preview["replayed"] == [] and states(db) == before  # nothing changed

    done = json.loads(run("replay", "--kind", "echo", "--project", "acme/north",
                          "--since", "1d", "--json").stdout)
    assert [(r["job_id"], r["state"]) for r in done["replayed"]] == [(echo1, "queued"),
                                                                      (echo2, "queued")]
    after = states(db)
    assert after[echo1] == after[echo2] == ("queued", 0)  # a fresh set of attempts
    assert after[other] == after[theirs] == after[old] == ("dead", 1)

    out = run("replay")  # every dead job left, whatever its kind, project or age
    assert out.exit_code == 0 and "replayed 3 dead job(s)" in out.stdout
    assert all(state == "queued" for state, _ in states(db).values())
    assert "nothing to replay" in run("replay").stdout


def test_replay_skips_a_job_another_session_holds(db: Conn, dsn: str,
                                                  secinf_env: str) -> None:
    project = make_project(db, "acme", "north")
    held, free = dead_job(db, project, "echo"), dead_job(db, project, "echo")
    with psycopg.connect(dsn) as other:  # an operator's `jobs retry` in flight
        other.execute("SELECT 1 FROM jobs.jobs WHERE job_id = %s FOR UPDATE", (held,))
        done = json.loads(run("replay", "--json").stdout)
        assert [r["job_id"] for r in done["replayed"]] == [free]  # not waited for
    done = json.loads(run("replay", "--json").stdout)
    assert [r["job_id"] for r in done["replayed"]] == [held]


def test_replay_refuses_live_states_and_bad_times(secinf_env: str) -> None:
    out = run("replay", "--state", "running")
    assert isinstance(out.exception, UserError)
    assert "only dead or cancelled jobs can be replayed" in str(out.exception)
    out = run("replay", "--since", "last week")
    assert isinstance(out.exception, UserError)
    assert "neither a duration (7d, 12h, 30m) nor an ISO timestamp" in str(out.exception)
    now = datetime(2026, 5, 8, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-05-01T00:00:00") == datetime(2026, 5, 1, tzinfo=UTC)
