"""Priority by plan: a free tenant's flood cannot starve a paying tenant's jobs.

A job is queued with its organization's plan's job_priority (free 0, team 5, enterprise 10;
jobs.plan_priority) and jobs.claim leases the highest priority first, FIFO within one. A
free tenant queues 300 harmless jobs (noop), paying tenants queue a few after it; claims
made the way the worker makes them (as role pipeline, through workers.queue.client, and
by real workers) take the paying tenants' jobs first, and the flood still drains to the
last job in a bounded loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.db.queue_helpers import ThreadWorker, state_counts, wait_for
from workers import tenancy
from workers.queue import client
from workers.queue.worker import WorkerConfig, with_role

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
FLOOD = 300


@pytest.fixture
def tenants(db: Conn) -> dict[str, str]:
    """One project per plan."""
    return {plan: str(tenancy.create_project(db, f"{plan}-co", "site", plan=plan)["project_id"])
            for plan in ("free", "team", "enterprise")}


@pytest.fixture
def worker_conn(dsn: str) -> Iterator[Conn]:
    """A session as the worker's role (pipeline: every project, through RLS)."""
    with psycopg.connect(with_role(dsn, "pipeline"), row_factory=dict_row) as conn:
        yield conn


def claim_one(conn: Conn, worker: str = "w1") -> int | None:
    """Claim and complete one job as a worker does; its id, or None when none is due."""
    jobs = client.claim(conn, worker, limit=1)
    conn.commit()
    if not jobs:
        return None
    [job] = jobs
    assert client.complete(conn, job.job_id, job.attempt, {"ok": True})
    conn.commit()
    return job.job_id


def test_paying_tenants_go_first_and_the_flood_still_drains_fifo(
        db: Conn, dsn: str, tenants: dict[str, str], worker_conn: Conn) -> None:
    flood = client.enqueue_many(db, tenants["free"], "noop", [{}] * FLOOD)
    db.commit()
    team = [client.enqueue(db, tenants["team"], "noop") for _ in range(4)]
    enterprise = [client.enqueue(db, tenants["enterprise"], "noop") for _ in range(3)]
    db.commit()
    priorities = {r["plan"]: r["priority"] for r in db.execute(
        "SELECT DISTINCT o.plan_id AS plan, j.priority FROM jobs.jobs j"
        " JOIN core.projects p USING (project_id) JOIN core.organizations o USING (org_id)"
    ).fetchall()}
    assert priorities == {"free": 0, "team": 5, "enterprise": 10}

    order: list[int] = []
    late: list[int] = []
    for _ in range(FLOOD + 20):  # bounded: every job once, and some slack
        if len(order) == 100:
            # Mid-flood, the team tenant queues two more: they are next, not 200 jobs later.
            late = [client.enqueue(db, tenants["team"], "noop") for _ in range(2)]
            db.commit()
        job = claim_one(worker_conn)
        if job is None:
            break
        order.append(job)
    assert order[:7] == enterprise + team  # highest plan first, FIFO within each
    assert order[100:102] == late
    assert [j for j in order if j in set(flood)] == flood  # the flood, in its own order
    assert len(order) == FLOOD + 9
    assert state_counts(dsn) == {"succeeded": FLOOD + 9}
    # Every attempt was the worker role's, once.
    attempts = db.execute("SELECT count(*) AS n, count(DISTINCT job_id) AS jobs,"
                          " max(attempt) AS most FROM jobs.attempts").fetchone()
    assert attempts == {"n": FLOOD + 9, "jobs": FLOOD + 9, "most": 1}


def test_the_queue_per_plan_shows_the_flood_and_who_waits(
        db: Conn, tenants: dict[str, str], worker_conn: Conn) -> None:
    client.enqueue_many(db, tenants["free"], "noop", [{}] * FLOOD)
    client.enqueue(db, tenants["team"], "noop")
    db.commit()
    plans = {r["plan"]: r for r in client.queue_by_plan(worker_conn)}
    worker_conn.commit()
    assert [(p, plans[p]["queued"], plans[p]["due"]) for p in ("enterprise", "team", "free")
            ] == [("enterprise", 0, 0), ("team", 1, 1), ("free", FLOOD, FLOOD)]
    # The exporter's queue series (monitoring.queue_depth) carry the priority as a label.
    depth = {(r["state"], r["priority"]): r["jobs"] for r in db.execute(
        "SELECT state, priority, jobs FROM monitoring.queue_depth WHERE kind = 'noop'")}
    db.rollback()
    assert depth == {("queued", 0): FLOOD, ("queued", 5): 1}
    claimed = claim_one(worker_conn)
    assert claimed is not None
    plans = {r["plan"]: r for r in client.queue_by_plan(worker_conn)}
    assert plans["team"]["queued"] == 0 and plans["free"]["queued"] == FLOOD
    assert plans["free"]["oldest_wait_s"] >= 0 and plans["team"]["oldest_wait_s"] is None


def test_real_workers_in_parallel_serve_paying_tenants_first(
        db: Conn, dsn: str, tenants: dict[str, str]) -> None:
    """Two workers, four jobs at a time each, claiming concurrently (SKIP LOCKED): every
    paying job is among the first claims, and all of the flood completes."""
    flood = client.enqueue_many(db, tenants["free"], "noop", [{}] * FLOOD)
    db.commit()
    paying = (client.enqueue_many(db, tenants["enterprise"], "noop", [{}] * 3)
              + client.enqueue_many(db, tenants["team"], "noop", [{}] * 5))
    db.commit()
    config = WorkerConfig(kinds=("noop",), concurrency=4, batch=4, poll_s=0.2,
                          mode="until_idle")
    started = time.monotonic()
    with ThreadWorker(dsn, config) as one, ThreadWorker(dsn, config) as two:
        wait_for(lambda: not one.thread.is_alive() and not two.thread.is_alive(), 120,
                 "both workers to drain the queue")
    assert time.monotonic() - started < 120
    assert state_counts(dsn) == {"succeeded": FLOOD + 8}
    claims = [r["job_id"] for r in db.execute(
        "SELECT job_id FROM jobs.attempts ORDER BY claimed_at, job_id").fetchall()]
    assert sorted(claims) == sorted(flood + paying)
    # In flight at most 2 workers x 4 jobs: a free job can only be claimed ahead of a
    # paying one that another claim holds at that instant.
    assert max(claims.index(j) for j in paying) < len(paying) + 8
    workers = db.execute("SELECT count(DISTINCT worker) AS n FROM jobs.attempts").fetchone()
    assert workers == {"n": 2}
