"""The generic worker: claims jobs in batches, runs each kind's handler in its own thread,
heartbeats the leases, writes outcomes back (fenced), survives database restarts, and
shuts down gracefully on SIGTERM (finish within the grace period, else release).

A poison job never stalls the worker: an exception becomes a failed attempt (retried with
backoff, dead-lettered after max_attempts); a handler that runs past its kind's timeout is
abandoned (its thread can no longer write anything: fencing refuses it) and its attempt
failed; an invalid payload, a PermanentError or an unknown kind dead-letters the job at once.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType
from typing import Any, Literal, TypeVar, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import BaseModel
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from workers import logs, metrics
from workers.errors import UserError
from workers.queue import client, registry
from workers.queue.client import Conn, Job, StaleAttempt
from workers.queue.listener import Listener
from workers.queue.memory import InMemoryQueue
from workers.queue.notify import JobNotice
from workers.queue.ops import QueueOps
from workers.queue.registry import Cancelled, JobContext, JobKind, PermanentError

log = logging.getLogger(__name__)
T = TypeVar("T")
Mode = Literal["forever", "once", "until_idle"]
_RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)


def _job_logs(worker_id: str, job: Job) -> AbstractContextManager[None]:
    """Log lines about this attempt carry its job, attempt, kind, project and worker."""
    return logs.bound(job_id=job.job_id, attempt=job.attempt, kind=job.kind,
                      project_id=job.project_id, worker=worker_id)


@dataclass(frozen=True)
class WorkerConfig:
    kinds: tuple[str, ...] | None = None
    """Kinds to claim; None: every kind except those declared without a handler here."""
    concurrency: int = 4
    batch: int = 10
    """At most this many jobs per claim."""
    lease_s: float = 30.0
    poll_s: float = 10.0
    """Fallback poll when no notification arrives."""
    grace_s: float = 20.0
    """On SIGTERM: how long running jobs may finish before they are released."""
    role: str | None = "pipeline"
    worker_id: str | None = None
    mode: Mode = "forever"
    plugins: tuple[str, ...] = ()


@dataclass
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    stale: int = 0
    timed_out: int = 0
    db_retries: int = 0


@dataclass
class _Running:
    job: Job
    ctx: JobContext
    deadline: float
    next_beat: float
    timeout_s: float
    thread: threading.Thread | None = None
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Outcome:
    key: tuple[int, int]
    result: Any = None
    error: BaseException | None = None
    trace: str = field(default="")


def _heartbeat(conn: Conn, *, ops: QueueOps, job: Job, lease: timedelta) -> object:
    return ops.heartbeat(conn, job.job_id, job.attempt, lease)


def with_role(conninfo: str, role: str | None) -> str:
    """The conninfo with `-c role=…` added, so every session acts as that role."""
    if not role:
        return conninfo
    params = {k: v for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    params["options"] = f"{params.get('options', '')} -c role={role}".strip()
    return make_conninfo(**params)  # type: ignore[arg-type]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Run registered handlers for queued jobs; see the module docstring."""

    def __init__(self, conninfo: str, config: WorkerConfig | None = None, *,
                 memory: InMemoryQueue | None = None) -> None:
        """`memory`: run against an in-memory queue (unit tests) instead of Postgres at
        `conninfo`: no pool, no control connection, no listener."""
        self.config = config or WorkerConfig()
        self._memory = memory
        self._ops: QueueOps = memory if memory is not None else client
        self.conninfo = with_role(conninfo, self.config.role)
        self.worker_id = self.config.worker_id or default_worker_id()
        self.stats = WorkerStats()
        self._wake = threading.Event()
        self._outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._running: dict[tuple[int, int], _Running] = {}
        self._stopping = threading.Event()
        self._hard_stop = threading.Event()
        self._stop_deadline = float("inf")
        self._control: Conn | None = None
        self._pool: ConnectionPool[Any] | None = None
        self._kinds: dict[str, JobKind[Any]] = {}
        self._claim_kinds: list[str] | None = None
        self._exclude: list[str] = []

    # ------------------------------------------------------------------ control
    def stop(self, *, hard: bool = False) -> None:
        """Stop claiming; running jobs get `grace_s` to finish (hard: release them now)."""
        if not self._stopping.is_set():
            self._stop_deadline = time.monotonic() + self.config.grace_s
            self._stopping.set()
        if hard:
            self._hard_stop.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: graceful stop; a second one: release and exit now."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            hard = self._stopping.is_set()
            log.info("worker %s: %s, %s", self.worker_id, signal.Signals(signum).name,
                     "releasing running jobs" if hard else "finishing running jobs")
            self.stop(hard=hard)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _notice(self, notice: JobNotice) -> None:
        if self._claim_kinds is None or notice["kind"] in self._claim_kinds:
            self._wake.set()

    # ------------------------------------------------------------------ database
    def _db(self, fn: Callable[[Conn], T]) -> T:
        """Run fn on the control connection, reconnecting (with backoff) when the server
        went away; gives up only once a stop's grace period is over."""

        def give_up(_state: object) -> bool:
            return self._hard_stop.is_set() or (
                self._stopping.is_set() and time.monotonic() > self._stop_deadline)

        def before_sleep(state: Any) -> None:
            self.stats.db_retries += 1
            metrics.DB_RETRIES.inc()
            exc = state.outcome.exception() if state.outcome else None
            log.warning("worker %s: database unavailable (%s); retrying", self.worker_id,
                        str(exc).strip().splitlines()[0] if exc and str(exc).strip() else exc)

        retrying = Retrying(
            retry=retry_if_exception_type(_RETRYABLE),
            wait=wait_exponential_jitter(multiplier=0.1, max=3.0, jitter=0.2),
            stop=give_up, before_sleep=before_sleep, reraise=True,
        )
        result: T = retrying(self._on_control, fn)
        return result

    def _on_control(self, fn: Callable[[Conn], T]) -> T:
        if self._memory is not None:
            return fn(cast(Conn, None))
        if self._control is None or self._control.closed:
            self._control = psycopg.connect(self.conninfo, autocommit=True,
                                            row_factory=dict_row)
        try:
            return fn(self._control)
        except _RETRYABLE:
            self._control.close()
            self._control = None
            raise

    def _stale(self, run: _Running, exc: StaleAttempt, what: str) -> None:
        self.stats.stale += 1
        log.warning("worker %s: %s refused: %s", self.worker_id, what, exc)
        job = run.job
        metrics.LEASE_LOSSES.labels(job.kind, what).inc()
        self._db(lambda c: self._ops.note_stale(c, job.job_id, job.attempt, f"{what}: {exc}"))

    def _fail(self, run: _Running, error: str, *, permanent: bool) -> None:
        job = run.job
        try:
            state = self._db(lambda c: self._ops.fail(c, job.job_id, job.attempt, error,
                                                   permanent=permanent))
        except StaleAttempt as exc:
            self._stale(run, exc, "fail")
            return
        if state == "dead":
            self.stats.dead += 1
            metrics.JOBS_DEAD.labels(job.kind).inc()
            log.warning("job %s (%s) dead-lettered: %s", job.job_id, job.kind, error)
        else:
            self.stats.retried += 1
            metrics.JOBS_RETRIED.labels(job.kind).inc()
            log.info("job %s (%s) attempt %s failed, will retry: %s", job.job_id, job.kind,
                     job.attempt, error)

    # ------------------------------------------------------------------ jobs
    def _start(self, job: Job) -> None:
        now = time.monotonic()
        kind = self._kinds.get(job.kind)
        ctx = JobContext(job, self.worker_id, self._connection, ops=self._ops)
        timeout = kind.timeout_s if kind else 0.0
        run = _Running(job, ctx, deadline=now + timeout,
                       next_beat=now + self.config.lease_s / 3, timeout_s=timeout)
        if kind is None or kind.handler is None:
            known = ", ".join(sorted(k for k, v in self._kinds.items() if v.handler)) or "none"
            self._fail(run, f"unknown job kind {job.kind!r}: no handler is registered for it "
                       f"(this worker runs: {known}); register one with "
                       "workers.queue.registry.register_kind, or cancel the job",
                       permanent=True)
            return
        try:
            payload = kind.parse(job.payload)
        except PermanentError as exc:
            self._fail(run, str(exc), permanent=True)
            return
        thread = threading.Thread(target=self._execute, args=(kind, payload, run),
                                  name=f"job-{job.job_id}-{job.attempt}", daemon=True)
        run.thread = thread
        self._running[(job.job_id, job.attempt)] = run
        thread.start()

    def _connection(self) -> Any:
        if self._memory is not None:
            return self._memory.connection()
        assert self._pool is not None
        return self._pool.connection()

    def _execute(self, kind: JobKind[Any], payload: BaseModel, run: _Running) -> None:
        key = (run.job.job_id, run.job.attempt)
        assert kind.handler is not None
        try:
            with _job_logs(self.worker_id, run.job):
                outcome = _Outcome(key, result=kind.handler(payload, run.ctx))
        except BaseException as exc:  # a poison handler must not take the worker down
            outcome = _Outcome(key, error=exc, trace=traceback.format_exc(limit=8))
        self._outcomes.put(outcome)
        self._wake.set()

    def _finish(self, outcome: _Outcome) -> None:
        run = self._running.pop(outcome.key, None)
        if run is None:
            return  # abandoned earlier (timed out or lease lost): nothing to write
        with _job_logs(self.worker_id, run.job):
            self._finish_run(run, outcome)

    def _finish_run(self, run: _Running, outcome: _Outcome) -> None:
        job, exc = run.job, outcome.error
        metrics.RUN_TIME.labels(job.kind, "succeeded" if exc is None else "failed").observe(
            time.monotonic() - run.started)
        if exc is None:
            if run.ctx.completed:
                self.stats.succeeded += 1
                metrics.JOBS_SUCCEEDED.labels(job.kind).inc()
                return
            result = outcome.result if isinstance(outcome.result, dict) else {}
            try:
                self._db(lambda c: self._ops.complete(c, job.job_id, job.attempt, result))
                self.stats.succeeded += 1
                metrics.JOBS_SUCCEEDED.labels(job.kind).inc()
            except StaleAttempt as stale:
                self._stale(run, stale, "complete")
        elif isinstance(exc, StaleAttempt):
            self._stale(run, exc, "write-back")
        elif isinstance(exc, PermanentError):
            self._fail(run, str(exc), permanent=True)
        elif isinstance(exc, Cancelled):
            self._release(run, "cancelled by the handler")
        else:
            detail = outcome.trace.strip().splitlines()
            where = detail[-3].strip() if len(detail) >= 3 else ""
            self._fail(run, f"{type(exc).__name__}: {exc} ({where})", permanent=False)

    def _release(self, run: _Running, reason: str) -> None:
        run.ctx.cancelled.set()
        job = run.job
        try:
            self._db(lambda c: self._ops.release(c, job.job_id, job.attempt, reason))
            self.stats.released += 1
            metrics.JOBS_RELEASED.labels(job.kind).inc()
        except StaleAttempt as exc:
            self._stale(run, exc, "release")

    def _maintain(self, now: float) -> None:
        """Heartbeat the leases that need it; abandon attempts past their timeout."""
        lease = timedelta(seconds=self.config.lease_s)
        for key, run in list(self._running.items()):
            job = run.job
            if now >= run.deadline:
                self._running.pop(key)
                run.ctx.cancelled.set()
                self.stats.timed_out += 1
                metrics.JOBS_TIMED_OUT.labels(job.kind).inc()
                self._fail(run, f"timed out: the handler ran past its {run.timeout_s:g}s limit "
                           f"on worker {self.worker_id} and was abandoned", permanent=False)
            elif now >= run.next_beat:
                beat = functools.partial(_heartbeat, ops=self._ops, job=job, lease=lease)
                try:
                    self._db(beat)
                    run.next_beat = time.monotonic() + self.config.lease_s / 3
                except StaleAttempt as exc:
                    self._running.pop(key)
                    run.ctx.cancelled.set()
                    self._stale(run, exc, "heartbeat")

    def _claim(self, free: int) -> int:
        jobs = self._db(lambda c: self._ops.claim(
            c, self.worker_id, kinds=self._claim_kinds, limit=min(free, self.config.batch),
            lease=timedelta(seconds=self.config.lease_s), exclude=self._exclude))
        self.stats.claimed += len(jobs)
        for job in jobs:
            metrics.observe_claim(job.kind, job.waited_s)
            self._start(job)
        return len(jobs)

    def _wait_time(self, free: int) -> float:
        wait = self.config.poll_s
        for run in self._running.values():
            wait = min(wait, run.next_beat - time.monotonic(), run.deadline - time.monotonic())
        if free > 0:
            due = self._db(lambda c: self._ops.next_due_in(c, kinds=self._claim_kinds,
                                                        exclude=self._exclude))
            if due is not None:
                wait = min(wait, due + 0.01)
        return max(wait, 0.05)

    # ------------------------------------------------------------------ loop
    def _prepare(self) -> None:
        registry.load_plugins(list(self.config.plugins))
        self._kinds = registry.kinds()
        handled = sorted(k for k, v in self._kinds.items() if v.handler is not None)
        if self.config.kinds:
            missing = [k for k in self.config.kinds if k not in handled]
            if missing:
                raise UserError(f"--kinds names {', '.join(missing)}, which this worker has no "
                                f"handler for; it runs: {', '.join(handled) or 'none'}")
            self._claim_kinds = list(self.config.kinds)
        else:
            self._exclude = sorted(k for k, v in self._kinds.items() if v.handler is None)

    def run(self) -> WorkerStats:
        """Work until stopped (or, by mode, after one batch / once nothing is due)."""
        self._prepare()
        cfg = self.config
        listener: Listener | None = None
        if self._memory is None:
            self._pool = ConnectionPool(self.conninfo, min_size=1,
                                        max_size=max(cfg.concurrency, 1),
                                        kwargs={"row_factory": dict_row},
                                        check=ConnectionPool.check_connection, open=False,
                                        name=f"queue-{self.worker_id}")
            self._pool.open(wait=False)
            listener = Listener(self.conninfo, self._notice, self._wake.set)
            listener.start()
        log.info("worker %s: started (kinds: %s, concurrency %d)", self.worker_id,
                 ", ".join(self._claim_kinds or ["all"]), cfg.concurrency)
        try:
            self._loop()
        except _RETRYABLE as exc:
            log.error("worker %s: gave up on the database while stopping: %s",
                      self.worker_id, exc)
        finally:
            if listener is not None:
                listener.stop()
            for run in self._running.values():
                run.ctx.cancelled.set()
            if self._control is not None:
                self._control.close()
            if self._pool is not None:
                self._pool.close(timeout=2.0)
        log.info("worker %s: stopped %s", self.worker_id, self.stats)
        return self.stats

    def _loop(self) -> None:
        cfg = self.config
        claimed_once = False
        while True:
            self._wake.clear()
            while True:
                try:
                    self._finish(self._outcomes.get_nowait())
                except queue.Empty:
                    break
            self._maintain(time.monotonic())
            if self._hard_stop.is_set() or (
                    self._stopping.is_set() and time.monotonic() > self._stop_deadline):
                for key in list(self._running):
                    self._release(self._running.pop(key), "released: the worker shut down")
                return
            if self._stopping.is_set():
                if not self._running:
                    return
                self._wake.wait(0.2)
                continue
            free = cfg.concurrency - len(self._running)
            claimed = 0
            if free > 0 and not (cfg.mode == "once" and claimed_once):
                claimed = self._claim(free)
                claimed_once = claimed_once or claimed > 0 or cfg.mode == "once"
            if cfg.mode != "forever" and claimed == 0 and not self._running:
                return
            if claimed and claimed == min(free, cfg.batch) and claimed < free:
                continue  # a full batch: more may be due at once
            self._wake.wait(self._wait_time(cfg.concurrency - len(self._running)))


def run_worker(conninfo: str, config: WorkerConfig, *, signals: bool = True) -> WorkerStats:
    """Build a worker, install SIGTERM handling (main thread only) and run it."""
    worker = Worker(conninfo, config)
    if signals and threading.current_thread() is threading.main_thread():
        worker.install_signal_handlers()
    return worker.run()


__all__ = ["Worker", "WorkerConfig", "WorkerStats", "run_worker", "with_role"]
