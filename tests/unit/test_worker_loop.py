"""The worker loop against the in-memory queue (workers.queue.memory): outcomes, retries,
dead letters, fencing, timeouts, concurrency and shutdown without Postgres. What needs
Postgres (claims across sessions, restarts, kills) stays in tests/db/test_queue_*.py."""

from __future__ import annotations

import threading
import time
from collections import Counter

from pydantic import BaseModel, ConfigDict

from workers.queue.memory import InMemoryQueue
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind
from workers.queue.worker import Worker, WorkerConfig


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


_calls: Counter[str] = Counter()
_barrier = threading.Barrier(4, timeout=5)
_started = threading.Event()


def _ok(payload: Empty, ctx: JobContext) -> JsonResult:
    ctx.progress({"step": 1})
    return {"attempt": ctx.job.attempt}


def _flaky(payload: Empty, ctx: JobContext) -> JsonResult:
    if ctx.job.attempt == 1:
        raise ValueError("first try fails")
    return {"attempt": ctx.job.attempt}


def _always_fails(payload: Empty, ctx: JobContext) -> JsonResult:
    raise ValueError("never works")


def _vanished(payload: Empty, ctx: JobContext) -> JsonResult:
    raise PermanentError("its target is gone")


def _loses_lease(payload: Empty, ctx: JobContext) -> JsonResult:
    if ctx.job.attempt == 1:
        memory = ctx.ops
        assert isinstance(memory, InMemoryQueue)
        memory.expire_lease(ctx.job.job_id)
        ctx.progress({"late": True})  # fenced: refused
    return {"attempt": ctx.job.attempt}


def _slow(payload: Empty, ctx: JobContext) -> JsonResult:
    ctx.cancelled.wait(5)
    ctx.check()
    return {}


def _together(payload: Empty, ctx: JobContext) -> JsonResult:
    _barrier.wait()  # only passes when four handlers run at once
    return {}


def _blocks(payload: Empty, ctx: JobContext) -> JsonResult:
    _started.set()
    ctx.cancelled.wait(5)
    return {}


for _name, _fn, _timeout in (("t_ok", _ok, 5.0), ("t_flaky", _flaky, 5.0),
                             ("t_fails", _always_fails, 5.0), ("t_vanished", _vanished, 5.0),
                             ("t_lease", _loses_lease, 5.0), ("t_slow", _slow, 0.2),
                             ("t_together", _together, 10.0), ("t_blocks", _blocks, 10.0)):
    register_kind(_name, Empty, _fn, timeout_s=_timeout)


def _run(memory: InMemoryQueue, kinds: tuple[str, ...], **config: object) -> Worker:
    options: dict[str, object] = {"kinds": kinds, "mode": "until_idle", "poll_s": 0.05,
                                  "lease_s": 3.0, "role": None, **config}
    worker = Worker("", WorkerConfig(**options), memory=memory)  # type: ignore[arg-type]
    worker.run()
    return worker


def test_a_job_succeeds_with_its_result_and_progress() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_ok")
    worker = _run(memory, ("t_ok",))
    job = memory.jobs[job_id]
    assert (job.state, job.result, job.progress) == ("succeeded", {"attempt": 1}, {"step": 1})
    assert (worker.stats.claimed, worker.stats.succeeded) == (1, 1)


def test_a_failed_attempt_is_retried_and_then_succeeds() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_flaky")
    worker = _run(memory, ("t_flaky",))
    job = memory.jobs[job_id]
    assert (job.state, job.attempt, job.failures) == ("succeeded", 2, 1)
    assert job.errors[0].startswith("ValueError: first try fails")
    assert (worker.stats.retried, worker.stats.succeeded) == (1, 1)


def test_a_job_that_keeps_failing_is_dead_after_max_attempts() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_fails", max_attempts=2)
    worker = _run(memory, ("t_fails",))
    job = memory.jobs[job_id]
    assert (job.state, job.attempt, len(job.errors)) == ("dead", 2, 2)
    assert (worker.stats.retried, worker.stats.dead) == (1, 1)


def test_a_permanent_error_and_an_invalid_payload_dead_letter_at_once() -> None:
    memory = InMemoryQueue()
    gone = memory.enqueue("t_vanished", max_attempts=5)
    invalid = memory.enqueue("t_ok", {"unexpected": 1}, max_attempts=5)
    worker = _run(memory, ("t_vanished", "t_ok"))
    assert (memory.jobs[gone].state, memory.jobs[gone].attempt) == ("dead", 1)
    assert memory.jobs[gone].errors == ["its target is gone"]
    assert memory.jobs[invalid].state == "dead"
    assert "invalid payload for job kind 't_ok'" in memory.jobs[invalid].errors[0]
    assert worker.stats.dead == 2


def test_an_unknown_kind_is_dead_lettered() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_nobody_declared")
    worker = Worker("", WorkerConfig(mode="until_idle", poll_s=0.05, role=None), memory=memory)
    worker.run()
    assert memory.jobs[job_id].state == "dead"
    assert "unknown job kind 't_nobody_declared'" in memory.jobs[job_id].errors[0]


def test_a_write_back_after_the_lease_is_lost_is_refused_and_the_job_reclaimed() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_lease")
    worker = _run(memory, ("t_lease",))
    job = memory.jobs[job_id]
    assert (job.state, job.attempt, job.progress) == ("succeeded", 2, None)
    assert job.stale == ["write-back: job 1 attempt 1 no longer holds its lease"]
    assert worker.stats.stale == 1


def test_a_handler_past_its_timeout_is_abandoned_and_failed() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_slow", max_attempts=1)
    worker = _run(memory, ("t_slow",))
    job = memory.jobs[job_id]
    assert job.state == "dead"
    assert job.errors[0].startswith("timed out: the handler ran past its 0.2s limit")
    assert worker.stats.timed_out == 1


def test_jobs_run_concurrently_up_to_the_limit() -> None:
    memory = InMemoryQueue()
    ids = [memory.enqueue("t_together") for _ in range(4)]
    worker = _run(memory, ("t_together",), concurrency=4, batch=4)
    assert [memory.jobs[i].state for i in ids] == ["succeeded"] * 4
    assert worker.stats.succeeded == 4


def test_a_hard_stop_releases_running_jobs_back_to_the_queue() -> None:
    memory = InMemoryQueue()
    _started.clear()
    job_id = memory.enqueue("t_blocks")
    worker = Worker("", WorkerConfig(kinds=("t_blocks",), poll_s=0.05, role=None,
                                     grace_s=0.0), memory=memory)
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert _started.wait(5)
    worker.stop(hard=True)
    thread.join(5)
    assert not thread.is_alive()
    job = memory.jobs[job_id]
    assert (job.state, job.failures, job.releases) == ("queued", 0,
                                                       ["released: the worker shut down"])
    assert worker.stats.released == 1


def test_a_graceful_stop_lets_a_running_job_finish() -> None:
    memory = InMemoryQueue()
    job_id = memory.enqueue("t_ok")
    worker = Worker("", WorkerConfig(kinds=("t_ok",), poll_s=0.05, role=None, grace_s=5.0),
                    memory=memory)
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 5
    while memory.jobs[job_id].state != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert memory.jobs[job_id].state == "succeeded"
