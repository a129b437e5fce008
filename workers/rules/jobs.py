"""The rules job kind customers request through the API (`api.create_job`,
sql/220_api_jobs.sql): `rules_backfill`, re-run the active rules over the history.
Listed in the composition root (workers.job_kinds.MODULES)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workers.errors import NotFound
from workers.pipeline.jobs import own_source
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind
from workers.rules import store

RULES_BACKFILL = "rules_backfill"


class BackfillPayload(BaseModel):
    """One source of the job's project, or every source (None)."""

    model_config = ConfigDict(extra="forbid")
    source_id: int | None = Field(default=None, ge=1)


def run_backfill(payload: BackfillPayload, ctx: JobContext) -> JsonResult:
    """Re-run the project's active rules over the source's (or every source's) history;
    candidates are upserted, so a retry inserts nothing twice."""
    with ctx.connection() as conn:
        if payload.source_id is not None:
            own_source(conn, ctx, payload.source_id)
        try:
            inserted = store.backfill(
                conn, ctx.job.project_id,
                None if payload.source_id is None else str(payload.source_id))
        except NotFound as exc:  # no ontology loaded: retrying cannot help
            raise PermanentError(str(exc)) from exc
    return {"sources": inserted, "inserted": sum(inserted.values())}


register_kind(RULES_BACKFILL, BackfillPayload, run_backfill, timeout_s=600,
              description="re-run the active rules over the history (api.create_job)")

__all__ = ["RULES_BACKFILL"]
