"""Job kinds for the queue's tests (imported as a worker plug-in)."""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel, ConfigDict

from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidate_id: int


def run_hang(payload: Empty, ctx: JobContext) -> JsonResult:
    time.sleep(30)  # ignores cancellation: the worst kind of poison
    return {}


def run_boom(payload: Empty, ctx: JobContext) -> JsonResult:
    raise ValueError("boom")


def run_exit(payload: Empty, ctx: JobContext) -> JsonResult:
    raise SystemExit(3)


def run_vanished(payload: Target, ctx: JobContext) -> JsonResult:
    raise PermanentError(f"candidate {payload.candidate_id} no longer exists")


# A handler that logs and fails with credentials in its words (tests/db/test_structured_logs.py:
# none may reach a log line). Not secrets: made-up values of the right shape.
LEAKED_KEY = "sik_0123456789abcdef0123456789abcdef"
LEAKED_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiY3VzdG9tZXIifQ.c2lnbmF0dXJlLW5vdC1yZWFs"


def run_leaky(payload: Empty, ctx: JobContext) -> JsonResult:
    logging.getLogger("tests.leaky").warning("calling the API with key %s", LEAKED_KEY)
    raise ValueError(f"refused: Authorization: Bearer {LEAKED_TOKEN}")


register_kind("test_hang", Empty, run_hang, timeout_s=1.0)
register_kind("test_leaky", Empty, run_leaky)
register_kind("test_boom", Empty, run_boom)
register_kind("test_exit", Empty, run_exit)
register_kind("test_vanished", Target, run_vanished)
