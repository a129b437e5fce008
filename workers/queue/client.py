"""The queue's client: enqueue, claim, heartbeat, complete, fail, release — all through the
functions of sql/600_jobs.sql, which enforce the lease (fencing) in one place.

Each call runs one statement in the caller's connection: on an autocommit connection that is
its own transaction; inside `write_back()` it shares the handler's fenced transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from workers.db.errors import Make, wrap_db_errors
from workers.db.queries import query
from workers.errors import NotFound, SecinfError, UserError

Conn = psycopg.Connection[dict[str, Any]]
STALE_SQLSTATE = "JB001"
"""Raised by jobs.fence when an attempt no longer holds its job's lease."""


class StaleAttempt(SecinfError):
    """This attempt no longer holds the job's lease: its write-back was refused."""

    def __init__(self, message: str | None = None, *, job_id: int = 0, attempt: int = 0) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.attempt = attempt


@dataclass(frozen=True)
class Job:
    """One leased job, as a claim returns it."""

    job_id: int
    attempt: int
    project_id: str
    kind: str
    payload: dict[str, Any]
    priority: int
    failures: int
    max_attempts: int
    lease_until: datetime
    waited_s: float | None = None
    """Seconds from when the job fell due to this claim (None: not known)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(
            job_id=int(row["job_id"]), attempt=int(row["attempt"]),
            project_id=str(row["project_id"]), kind=str(row["kind"]),
            payload=dict(row["payload"] or {}), priority=int(row["priority"]),
            failures=int(row["failures"]), max_attempts=int(row["max_attempts"]),
            lease_until=row["lease_until"],
            waited_s=None if row.get("waited_s") is None else float(row["waited_s"]),
        )


def _run(conn: Conn, name: str, params: Mapping[str, Any], job_id: int = 0,
         attempt: int = 0) -> dict[str, Any] | None:
    """One queue function; its refusals as secinf errors (the one table), a lost lease as
    StaleAttempt (its message without the hint: the worker acts on it, nobody reads it)."""
    stale: dict[str, Make | None] = {STALE_SQLSTATE: lambda f: StaleAttempt(
        f.message, job_id=job_id, attempt=attempt)}
    with wrap_db_errors(stale):
        return conn.execute(query("jobs", name), params).fetchone()


# --------------------------------------------------------------------------- enqueue
def enqueue(conn: Conn, project_id: str, kind: str, payload: Mapping[str, Any] | None = None,
            *, priority: int | None = None, run_after: datetime | None = None,
            max_attempts: int | None = None, retry_delay: timedelta | None = None,
            dedupe_key: str | None = None) -> int:
    """Queue a job (priority defaults to the project's plan); returns its id. With a
    dedupe_key, a live job of the same key is returned instead of a second one."""
    row = _run(conn, "enqueue", {
        "project_id": project_id, "kind": kind, "payload": Jsonb(dict(payload or {})),
        "priority": priority, "run_after": run_after, "max_attempts": max_attempts,
        "retry_delay": retry_delay, "dedupe_key": dedupe_key,
    })
    assert row is not None
    return int(row["job_id"])


def enqueue_many(conn: Conn, project_id: str, kind: str,
                 payloads: Sequence[Mapping[str, Any]], *, priority: int | None = None,
                 max_attempts: int | None = None,
                 retry_delay: timedelta | None = None) -> list[int]:
    """Queue one job per payload in one statement; returns the ids in payload order."""
    rows = conn.execute(query("jobs", "enqueue_many"), {
        "project_id": project_id, "kind": kind,
        "payloads": [Jsonb(dict(p)) for p in payloads], "priority": priority,
        "max_attempts": max_attempts, "retry_delay": retry_delay,
    }).fetchall()
    return [int(r["job_id"]) for r in rows]


# --------------------------------------------------------------------------- leases
def claim(conn: Conn, worker: str, *, kinds: Sequence[str] | None = None, limit: int = 1,
          lease: timedelta = timedelta(seconds=30),
          exclude: Sequence[str] | None = None) -> list[Job]:
    """Lease up to `limit` due jobs (highest priority first); expired leases are reaped."""
    rows = conn.execute(query("jobs", "claim"), {
        "worker": worker, "kinds": list(kinds) if kinds is not None else None,
        "limit": limit, "lease": lease,
        "exclude": list(exclude) if exclude else None,
    }).fetchall()
    return [Job.from_row(r) for r in rows]


def next_due_in(conn: Conn, *, kinds: Sequence[str] | None = None,
                exclude: Sequence[str] | None = None) -> float | None:
    """Seconds until a job falls due or a lease runs out (≤ 0: now; None: nothing pending)."""
    row = conn.execute(query("jobs", "next_due"), {
        "kinds": list(kinds) if kinds is not None else None,
        "exclude": list(exclude) if exclude else None,
    }).fetchone()
    wait = row["wait"] if row else None
    return None if wait is None else float(wait.total_seconds())


def heartbeat(conn: Conn, job_id: int, attempt: int,
              lease: timedelta = timedelta(seconds=30)) -> datetime:
    """Extend the lease; raises StaleAttempt when this attempt lost it."""
    row = _run(conn, "heartbeat", {"job_id": job_id, "attempt": attempt, "lease": lease},
               job_id, attempt)
    assert row is not None
    lease_until: datetime = row["lease_until"]
    return lease_until


def fence(conn: Conn, job_id: int, attempt: int) -> datetime:
    """Lock the job row for this transaction; raises StaleAttempt unless the attempt holds
    the lease. Call it first in every write-back transaction."""
    row = _run(conn, "fence", {"job_id": job_id, "attempt": attempt}, job_id, attempt)
    assert row is not None
    lease_until: datetime = row["lease_until"]
    return lease_until


@contextmanager
def write_back(conn: Conn, job_id: int, attempt: int) -> Iterator[Conn]:
    """A fenced transaction: everything written inside commits only while this attempt
    holds the lease (a reclaim waits for it; a stale attempt is refused up front)."""
    with conn.transaction():
        fence(conn, job_id, attempt)
        yield conn


def progress(conn: Conn, job_id: int, attempt: int, data: Mapping[str, Any]) -> None:
    """Record progress on the job row (fenced)."""
    _run(conn, "progress", {"job_id": job_id, "attempt": attempt, "progress": Jsonb(dict(data))},
         job_id, attempt)


# --------------------------------------------------------------------------- outcomes
def complete(conn: Conn, job_id: int, attempt: int,
             result: Mapping[str, Any] | None = None) -> bool:
    """Commit the job's one result; False when this attempt had already committed it."""
    row = _run(conn, "complete",
               {"job_id": job_id, "attempt": attempt, "result": Jsonb(dict(result or {}))},
               job_id, attempt)
    return bool(row and row["committed"])


def fail(conn: Conn, job_id: int, attempt: int, error: str, *, permanent: bool = False) -> str:
    """Record a failed attempt; returns the job's new state ('queued' or 'dead')."""
    row = _run(conn, "fail", {"job_id": job_id, "attempt": attempt, "error": error[:4000],
                              "permanent": permanent}, job_id, attempt)
    assert row is not None
    return str(row["state"])


def release(conn: Conn, job_id: int, attempt: int, reason: str = "released by the worker") -> None:
    """Hand the job back to the queue now (not counted as a failure)."""
    _run(conn, "release", {"job_id": job_id, "attempt": attempt, "reason": reason},
         job_id, attempt)


def note_stale(conn: Conn, job_id: int, attempt: int, what: str) -> None:
    """Record on the attempt that its write-back was refused as stale."""
    _run(conn, "note_stale", {"job_id": job_id, "attempt": attempt, "what": what})


# --------------------------------------------------------------------------- operators
def retry(conn: Conn, job_id: int) -> str:
    """Re-queue a dead or cancelled job with a fresh set of attempts."""
    row = _run(conn, "retry", {"job_id": job_id})
    assert row is not None
    return str(row["state"])


def cancel(conn: Conn, job_id: int) -> str:
    """Cancel a queued or running job."""
    row = _run(conn, "cancel", {"job_id": job_id})
    assert row is not None
    return str(row["state"])


def replay(conn: Conn, *, state: str = "dead", kind: str | None = None,
           project_id: str | None = None, since: datetime | None = None,
           limit: int = 1000) -> list[dict[str, Any]]:
    """Re-queue dead (or cancelled) jobs in bulk, oldest first: each as `retry` does.
    Returns the jobs re-queued (in the caller's transaction)."""
    if state not in ("dead", "cancelled"):
        raise UserError(f"--state {state!r}: only dead or cancelled jobs can be replayed")
    return conn.execute(query("jobs", "replay"), {
        "state": state, "kind": kind, "project_id": project_id, "since": since,
        "limit": limit,
    }).fetchall()


def list_jobs(conn: Conn, *, state: str | None = None, kind: str | None = None,
              project_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    return conn.execute(query("jobs", "list_jobs"), {
        "state": state, "kind": kind, "project_id": project_id, "limit": limit,
    }).fetchall()


def queue_by_plan(conn: Conn) -> list[dict[str, Any]]:
    """Queued, due and running jobs per plan, in claim order (highest priority first)."""
    return conn.execute(query("jobs", "queue_by_plan")).fetchall()


def show_job(conn: Conn, job_id: int) -> dict[str, Any]:
    """The job, its result (if any) and every attempt."""
    row = conn.execute(query("jobs", "show_job"), {"job_id": job_id}).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} does not exist (list jobs with `secinf jobs list`)")
    attempts = conn.execute(query("jobs", "job_attempts"), {"job_id": job_id}).fetchall()
    return {**row, "attempts": attempts}
