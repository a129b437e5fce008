"""Queue jobs of the records schema: `erase_subject` (api.erase_subject, `secinf erase
--queue`) and `expire_dataset_files` (retention's dataset step). A worker plug-in module
(workers.job_kinds.MODULES).

Each erasure step is a fenced write-back: a worker that lost its lease deletes nothing more,
and the next attempt goes on from what the committed steps left (the tombstone's counts add
up across attempts). Progress (rows deleted so far, the table being worked) is on the job row.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workers.db.queries import query
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind
from workers.records import erasure
from workers.storage.factory import storage_from_settings

ERASE_SUBJECT = "erase_subject"
EXPIRE_DATASET_FILES = "expire_dataset_files"


class ErasePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tombstone_id: int = Field(ge=1)
    step_rows: int = Field(default=erasure.STEP_ROWS, ge=1, le=1_000_000)


class ExpirePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version_ids: list[int] = Field(min_length=1)


def run_erase(payload: ErasePayload, ctx: JobContext) -> JsonResult:
    with ctx.connection() as conn:
        stone = conn.execute(query("records", "tombstone"),
                             {"tombstone_id": payload.tombstone_id}).fetchone()
        conn.rollback()
    if stone is None or str(stone["project_id"]) != str(ctx.job.project_id):
        raise PermanentError(f"no erasure {payload.tombstone_id} in this job's project")
    deleted = 0
    while True:
        ctx.check()
        with ctx.write_back() as conn:
            got = erasure.step(conn, payload.tombstone_id, payload.step_rows)
        deleted += int(got.get("deleted") or 0)
        if got.get("done"):
            break
        ctx.progress({"deleted": deleted, "table": got.get("relation"),
                      "counts": got.get("counts")})
    objects = erasure.remove_objects(storage_from_settings(),
                                     list(got.get("versions_deleted") or []))
    return {"tombstone_id": payload.tombstone_id, "counts": got.get("counts"),
            "versions_superseded": got.get("versions_superseded"),
            "versions_deleted": len(got.get("versions_deleted") or []),
            "objects_deleted": objects}


def run_expire(payload: ExpirePayload, ctx: JobContext) -> JsonResult:
    store = storage_from_settings()
    with ctx.connection() as conn:
        todo: list[dict[str, Any]] = [dict(r) for r in conn.execute(
            query("records", "expired_versions"),
            {"version_ids": payload.version_ids, "project_id": ctx.job.project_id}).fetchall()]
        conn.rollback()
    objects = 0
    for v in todo:
        ctx.check()
        objects += store.delete_prefix(str(v["storage_path"]))
        with ctx.write_back() as conn:
            conn.execute(query("records", "mark_objects_deleted"), {"version_id": v["version_id"]})
    return {"versions": len(todo), "objects_deleted": objects}


register_kind(ERASE_SUBJECT, ErasePayload, run_erase, timeout_s=3600,
              description="erase one actor (api.erase_subject, secinf erase --queue)")
register_kind(EXPIRE_DATASET_FILES, ExpirePayload, run_expire, timeout_s=1800,
              description="delete the stored objects of expired dataset versions (retention)")
