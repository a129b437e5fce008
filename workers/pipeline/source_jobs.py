"""Per-source work units: the `pipeline_tick_source` job kind.

In queue mode (`secinf pipeline mode queue`) pg_cron's every-minute call queues one job per
source with work (`pipeline.schedule_sources`, sql/620_pipeline_schedule.sql), and any
`secinf worker` runs it: `CALL pipeline.run_source()`, the same unit a parallel lane works,
under the source's advisory lock and with a commit after every step. As many sources run at
once as there are worker slots, on every machine that runs a worker; a failing source stops
alone (recorded and backed off as in a tick). A source held by another backend (a lane, a
tick, another attempt whose lease ran out) is left to it: the job completes saying so,
and the next minute's scheduler queues it again if it still has work.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from workers.db.queries import query
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind

from .report import SourceResult, parse_source

TICK_SOURCE = "pipeline_tick_source"
JOB_BUDGET_S = 40.0
"""A job stops between two ranges after this long, so that one source's backlog holds a
worker slot for at most about this much before other sources' jobs get their turn; the
next minute's scheduler queues the rest."""


class TickSourcePayload(BaseModel):
    """The source to work."""

    model_config = ConfigDict(extra="forbid")
    source_id: int = Field(ge=1)


def run_source(conn: psycopg.Connection[Any], source_id: int, *, until_idle: bool = True,
               budget_s: float = JOB_BUDGET_S) -> list[SourceResult] | None:
    """Work one source (`CALL pipeline.run_source`) on `conn`, which must be idle: the
    results per range, or None when another backend holds the source. The procedure
    commits after every step, so the call runs in autocommit mode; the connection's own
    mode is restored afterwards."""
    conn.commit()
    was = conn.autocommit
    conn.autocommit = True
    try:
        row = conn.execute(query("pipeline", "run_source"),
                           {"source_id": source_id, "until_idle": until_idle,
                            "budget_s": budget_s}).fetchone()
    finally:
        conn.autocommit = was
    raw = None if row is None else (row["p_results"] if isinstance(row, dict) else row[0])
    return None if raw is None else [parse_source(r) for r in raw]


def summary(source_id: int, results: list[SourceResult] | None) -> dict[str, Any]:
    """A job result: what the ranges did (or that another backend held the source)."""
    if results is None:
        return {"source_id": source_id, "held_elsewhere": True, "ranges": 0}
    last = results[-1] if results else None
    return {"source_id": source_id, "held_elsewhere": False, "ranges": len(results),
            "points": sum(r.points for r in results),
            "dirty_ranges_done": sum(r.dirty for r in results),
            "status": last.status if last else "idle",
            "error": last.error if last else None,
            "more": bool(last and last.more)}


def run_tick_source(payload: TickSourcePayload, ctx: JobContext) -> JsonResult:
    """Work the job's source until idle or JOB_BUDGET_S; a failing source is recorded by the
    procedure (backed off, the others unaffected) and reported in the result."""
    with ctx.connection() as conn:
        row = conn.execute(query("api_jobs", "project_source"),
                           {"source_id": payload.source_id,
                            "project_id": ctx.job.project_id}).fetchone()
        conn.commit()
        if row is None:
            raise PermanentError(f"source {payload.source_id} is not in project "
                                 f"{ctx.job.project_id} (deleted since the job was queued?)")
        ctx.check()
        return summary(payload.source_id, run_source(conn, payload.source_id))


register_kind(TICK_SOURCE, TickSourcePayload, run_tick_source, timeout_s=JOB_BUDGET_S + 60,
              description="one source's pipeline work (queue mode's scheduler, every minute)")

__all__ = ["JOB_BUDGET_S", "TICK_SOURCE", "TickSourcePayload", "run_source", "summary"]
