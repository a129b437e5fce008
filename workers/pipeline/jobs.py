"""Job kinds customers request through the API (`api.create_job`, sql/220_api_jobs.sql):
run the pipeline for a source now, re-process a time range (re-running the rules:
workers/rules/jobs.py).

A job-kind module listed in the composition root (workers.job_kinds.MODULES): importing it
declares the kinds and attaches their handlers. The payloads are the ones `api.create_job`
writes; every handler checks that the source belongs to the job's project (the worker's
`pipeline` role sees every project).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from workers.db.queries import query
from workers.pipeline.source_jobs import run_source
from workers.queue import client
from workers.queue.client import Conn
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind

PIPELINE_RUN = "pipeline_run"
PIPELINE_REPROCESS = "pipeline_reprocess"
BUSY_WAIT_S = 1.0
"""Pause before trying again while another tick (pg_cron's) holds the pipeline."""


class SourcePayload(BaseModel):
    """One source of the job's project."""

    model_config = ConfigDict(extra="forbid")
    source_id: int = Field(ge=1)


class ReprocessPayload(SourcePayload):
    """A time range of one source to compute again."""

    from_ts: AwareDatetime
    to_ts: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ReprocessPayload:
        if self.to_ts <= self.from_ts:
            raise ValueError("to_ts must be after from_ts")
        return self


def own_source(conn: Conn, ctx: JobContext, source_id: int) -> str:
    """The source's name; PermanentError unless it belongs to the job's project."""
    row = conn.execute(query("api_jobs", "project_source"),
                       {"source_id": source_id, "project_id": ctx.job.project_id}).fetchone()
    conn.commit()
    if row is None:
        raise PermanentError(f"source {source_id} is not in project {ctx.job.project_id} "
                             "(deleted since the job was queued?)")
    return str(row["name"])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def tick_source(conn: Conn, ctx: JobContext, source_id: int) -> dict[str, Any]:
    """Work this source (and only it) until it has nothing left to do, by
    `pipeline.run_source`, the unit a lane or a pipeline_tick_source job works; returns what
    its ranges did and where it stands. A failing source is tried now rather than at its
    retry time: the customer asked for it. While another backend holds the source (pg_cron's
    tick, a lane), wait for it."""
    ticks = points = dirty = 0
    conn.execute(query("pipeline", "retry_source"), {"source_id": source_id})
    conn.commit()
    while True:
        ctx.check()
        results = run_source(conn, source_id)
        if results is None:
            time.sleep(BUSY_WAIT_S)
            continue
        for r in results:
            if r.status == "error":
                raise RuntimeError(f"the pipeline failed on source {source_id}: {r.error}")
            ticks += 1
            points += r.points
            dirty += r.dirty
        client.progress(conn, ctx.job.job_id, ctx.job.attempt, {"ticks": ticks, "points": points})
        conn.commit()
        if not results or not results[-1].more:
            break
    status = conn.execute(query("api_jobs", "source_status"), {"source_id": source_id}).fetchone()
    conn.commit()
    assert status is not None
    return {"source_id": source_id, "ticks": ticks, "points": points,
            "dirty_ranges_done": dirty, "watermark": _iso(status["watermark"]),
            "newest_ts": _iso(status["newest_ts"]), "dirty_pending": status["dirty_pending"]}


def run_pipeline(payload: SourcePayload, ctx: JobContext) -> JsonResult:
    """Process the source's new points now instead of at the next scheduled tick."""
    with ctx.connection() as conn:
        name = own_source(conn, ctx, payload.source_id)
        return {"source": name, **tick_source(conn, ctx, payload.source_id)}


def run_reprocess(payload: ReprocessPayload, ctx: JobContext) -> JsonResult:
    """Mark the range dirty (a fenced write), then tick until the source has caught up."""
    with ctx.connection() as conn:
        name = own_source(conn, ctx, payload.source_id)
    with ctx.write_back() as conn:
        conn.execute(query("api_jobs", "mark_dirty"), {
            "project_id": ctx.job.project_id, "source_id": payload.source_id,
            "from_ts": payload.from_ts, "to_ts": payload.to_ts,
            "reason": f"re-process requested (job {ctx.job.job_id})"})
    with ctx.connection() as conn:
        return {"source": name, "from_ts": payload.from_ts.isoformat(),
                "to_ts": payload.to_ts.isoformat(),
                **tick_source(conn, ctx, payload.source_id)}


register_kind(PIPELINE_RUN, SourcePayload, run_pipeline, timeout_s=600,
              description="run the pipeline for a source now (api.create_job)")
register_kind(PIPELINE_REPROCESS, ReprocessPayload, run_reprocess, timeout_s=600,
              description="re-process a time range of a source (api.create_job)")

__all__ = ["PIPELINE_REPROCESS", "PIPELINE_RUN", "own_source", "tick_source"]
