"""Built-in job kinds: `noop` and `echo` (smoke tests, drills; see docs/queue.md). Domain
kinds live with their domains and are listed in the composition root, workers.job_kinds."""

from __future__ import annotations

import random
import time

from pydantic import BaseModel, ConfigDict, Field

from workers.queue import client
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind


class NoopPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


def run_noop(payload: NoopPayload, ctx: JobContext) -> JsonResult:
    """Succeed at once with an empty result."""
    return {}


class EchoPayload(BaseModel):
    """An echo of `message` after `steps` fenced progress write-backs; the other fields
    plant faults for drills and tests."""

    model_config = ConfigDict(extra="forbid")
    message: str = ""
    steps: int = Field(0, ge=0, le=100)
    """Fenced progress write-backs before the result."""
    sleep_s: tuple[float, float] = (0.0, 0.0)
    """A random pause (uniform in this range) after each write-back, and half of one inside
    it (so that a kill can land mid-transaction)."""
    fail_times: int = Field(0, ge=0)
    """Raise while fewer than this many attempts have failed."""
    fail_permanently: bool = False
    hang_s: float = Field(0.0, ge=0)
    """Block this long ignoring cancellation (a poison job when past the timeout)."""


def run_echo(payload: EchoPayload, ctx: JobContext) -> JsonResult:
    """Echo the message; see EchoPayload for the planted faults."""
    if payload.fail_permanently:
        raise PermanentError("echo: planned permanent failure")
    if ctx.job.failures < payload.fail_times:
        raise RuntimeError(f"echo: planned failure {ctx.job.failures + 1} of {payload.fail_times}")
    lo, hi = payload.sleep_s
    for step in range(1, payload.steps + 1):
        with ctx.write_back() as conn:
            client.progress(conn, ctx.job.job_id, ctx.job.attempt, {"step": step})
            time.sleep(random.uniform(lo, hi) / 2)
        time.sleep(random.uniform(lo, hi))
    if payload.hang_s:
        time.sleep(payload.hang_s)
    return {"echo": payload.message, "attempt": ctx.job.attempt, "steps": payload.steps}


register_kind("noop", NoopPayload, run_noop, timeout_s=30, description="does nothing")
register_kind("echo", EchoPayload, run_echo, timeout_s=120,
              description="echoes a message; plants faults for drills")
