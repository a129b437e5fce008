"""An in-memory queue with the worker's interface (`QueueOps`), for the worker loop's unit
tests: the same states, leases, fencing, retries and dead letters as the Postgres queue,
without Postgres. Not for production (one process, no persistence, no NOTIFY)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.queue.client import Conn, Job, StaleAttempt


@dataclass
class MemoryJob:
    """One job row: its state, attempts and what its attempts recorded."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    project_id: str = "p"
    priority: int = 0
    max_attempts: int = 3
    state: str = "queued"
    """queued, running, succeeded, dead."""
    attempt: int = 0
    failures: int = 0
    worker: str | None = None
    lease_until: datetime | None = None
    run_after: datetime = field(default_factory=lambda: datetime.now(UTC))
    result: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)


class InMemoryQueue:
    """The queue in a dict; `backoff` is the delay before a failed job is due again."""

    def __init__(self, *, backoff: timedelta = timedelta(0)) -> None:
        self.jobs: dict[int, MemoryJob] = {}
        self.backoff = backoff
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- test helpers
    def enqueue(self, kind: str, payload: Mapping[str, Any] | None = None, *,
                max_attempts: int = 3, priority: int = 0) -> int:
        with self._lock:
            job_id = len(self.jobs) + 1
            self.jobs[job_id] = MemoryJob(job_id, kind, dict(payload or {}),
                                          max_attempts=max_attempts, priority=priority)
            return job_id

    def expire_lease(self, job_id: int) -> None:
        """Let the job's lease run out now (another worker may then reclaim it)."""
        with self._lock:
            self.jobs[job_id].lease_until = datetime.now(UTC) - timedelta(seconds=1)

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """A stand-in for a pooled connection (the queue ignores it)."""
        yield None  # type: ignore[misc]

    # ----------------------------------------------------------------- QueueOps
    def _reap(self, now: datetime) -> None:
        for job in self.jobs.values():
            if job.state == "running" and job.lease_until is not None and job.lease_until <= now:
                job.state, job.worker = "queued", None

    def _wanted(self, job: MemoryJob, kinds: Sequence[str] | None,
                exclude: Sequence[str] | None) -> bool:
        return (kinds is None or job.kind in kinds) and job.kind not in (exclude or ())

    def claim(self, conn: Conn, worker: str, *, kinds: Sequence[str] | None = None,
              limit: int = 1, lease: timedelta = timedelta(seconds=30),
              exclude: Sequence[str] | None = None) -> list[Job]:
        now = datetime.now(UTC)
        with self._lock:
            self._reap(now)
            due = sorted((j for j in self.jobs.values() if j.state == "queued"
                          and j.run_after <= now and self._wanted(j, kinds, exclude)),
                         key=lambda j: (-j.priority, j.job_id))[:limit]
            out = []
            for job in due:
                job.state, job.worker, job.attempt = "running", worker, job.attempt + 1
                job.lease_until = now + lease
                out.append(Job(job.job_id, job.attempt, job.project_id, job.kind,
                               dict(job.payload), job.priority, job.failures,
                               job.max_attempts, job.lease_until, 0.0))
            return out

    def next_due_in(self, conn: Conn, *, kinds: Sequence[str] | None = None,
                    exclude: Sequence[str] | None = None) -> float | None:
        now = datetime.now(UTC)
        with self._lock:
            times = [j.run_after if j.state == "queued" else j.lease_until
                     for j in self.jobs.values()
                     if j.state in ("queued", "running") and self._wanted(j, kinds, exclude)]
            times_set = [t for t in times if t is not None]
            return min((t - now).total_seconds() for t in times_set) if times_set else None

    def _held(self, job_id: int, attempt: int) -> MemoryJob:
        job = self.jobs.get(job_id)
        now = datetime.now(UTC)
        if (job is None or job.state != "running" or job.attempt != attempt
                or job.lease_until is None or job.lease_until <= now):
            raise StaleAttempt(f"job {job_id} attempt {attempt} no longer holds its lease")
        return job

    def heartbeat(self, conn: Conn, job_id: int, attempt: int,
                  lease: timedelta = timedelta(seconds=30)) -> datetime:
        with self._lock:
            job = self._held(job_id, attempt)
            job.lease_until = datetime.now(UTC) + lease
            return job.lease_until

    def fence(self, conn: Conn, job_id: int, attempt: int) -> datetime:
        with self._lock:
            lease_until = self._held(job_id, attempt).lease_until
            assert lease_until is not None
            return lease_until

    @contextmanager
    def write_back(self, conn: Conn, job_id: int, attempt: int) -> Iterator[Conn]:
        self.fence(conn, job_id, attempt)
        yield conn

    def progress(self, conn: Conn, job_id: int, attempt: int,
                 data: Mapping[str, Any]) -> None:
        with self._lock:
            self._held(job_id, attempt).progress = dict(data)

    def complete(self, conn: Conn, job_id: int, attempt: int,
                 result: Mapping[str, Any] | None = None) -> bool:
        with self._lock:
            job = self._held(job_id, attempt)
            job.state, job.result, job.lease_until = "succeeded", dict(result or {}), None
            return True

    def fail(self, conn: Conn, job_id: int, attempt: int, error: str, *,
             permanent: bool = False) -> str:
        with self._lock:
            job = self._held(job_id, attempt)
            job.failures += 1
            job.errors.append(error)
            job.lease_until, job.worker = None, None
            if permanent or job.failures >= job.max_attempts:
                job.state = "dead"
            else:
                job.state, job.run_after = "queued", datetime.now(UTC) + self.backoff
            return job.state

    def release(self, conn: Conn, job_id: int, attempt: int,
                reason: str = "released by the worker") -> None:
        with self._lock:
            job = self._held(job_id, attempt)
            job.state, job.lease_until, job.worker = "queued", None, None
            job.releases.append(reason)

    def note_stale(self, conn: Conn, job_id: int, attempt: int, what: str) -> None:
        with self._lock:
            if job_id in self.jobs:
                self.jobs[job_id].stale.append(what)


__all__ = ["InMemoryQueue", "MemoryJob"]
