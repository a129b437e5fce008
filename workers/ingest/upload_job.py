"""The `ingest_file` job: load a track file uploaded through a signed URL (issue 17).

`api.ingest_upload_complete` queues one job per received upload (files.uploads, 0022). The
handler reads the object from storage and runs exactly the ingest `secinf ingest` runs
(validation, idempotency, merge, per-row errors), with the upload's id as the idempotency
key: a worker killed after the merge and retried finds its batch and loads nothing twice.
The result, readable through `api.job`, is the ingest's summary with its first row errors.
A job-kind module of the composition root (workers.job_kinds.MODULES).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from workers.db.queries import query
from workers.errors import UserError
from workers.ingest.load import IngestRequest, ingest
from workers.queue.registry import JobContext, JsonResult, PermanentError, register_kind
from workers.storage import LocalStorage, ObjectMissing, S3Storage, Storage
from workers.storage.factory import storage_from_settings

INGEST_FILE = "ingest_file"
MAX_ERRORS = 100
"""Row errors kept in the job's result (the summary counts all of them)."""


class UploadPayload(BaseModel):
    """What api.ingest_upload_complete queues."""

    model_config = ConfigDict(extra="forbid")
    upload_id: str = Field(pattern=r"^[0-9a-f-]{36}$")


class UploadOptions(BaseModel):
    """The options an upload carries (files.upload_options(), checked again here)."""

    model_config = ConfigDict(extra="forbid")
    format: str | None = None
    fps: float | None = Field(default=None, gt=0)
    units: Literal["px", "m", "cm", "mm"] | None = None
    scale: float | None = Field(default=None, gt=0)
    homography: list[list[float]] | None = None
    time_origin: AwareDatetime | None = None
    strict: bool = False


def job_storage() -> Storage:
    """Where the file service put the upload: the configured backend."""
    return storage_from_settings()


class NotReceived(UserError):
    """A 'sent' upload (S3 backend) whose object is not in storage: the client never PUT it
    to S3, or S3 refused it."""


@contextmanager
def local_copy(store: Storage, key: str, name: str) -> Iterator[tuple[Path, str | None]]:
    """The object as a local file and, for a copy, its sha256 (computed on the way): the
    local backend's own file (no hash: the service checked it on receipt), else a temporary
    copy named like the upload, so the format is detected from its extension."""
    if isinstance(store, LocalStorage):
        yield store.local_path(key), None
        return
    with tempfile.TemporaryDirectory(prefix="secinf-upload-") as tmp:
        path = Path(tmp) / name
        digest = hashlib.sha256()
        with store.open_read(key) as src, path.open("wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
        yield path, digest.hexdigest()


def check_receipt(store: Storage, upload: dict[str, Any], path: Path,
                  sha256: str | None) -> None:
    """An upload the service never held (S3 backend: it sent the client on to S3) is loaded
    only as signed: its size and sha256, encrypted at rest."""
    if upload["received_at"] is not None:
        return  # the service stored it and checked both
    got_bytes = path.stat().st_size
    got_sha = sha256 if sha256 is not None else store.sha256(upload["object_key"])
    if (got_bytes, got_sha) != (upload["bytes"], upload["sha256"]):
        raise UserError(f"upload {upload['upload_id']}: storage holds {got_bytes} bytes with "
                        f"sha256 {got_sha}, not the {upload['bytes']} bytes with sha256 "
                        f"{upload['sha256']} it was issued for; ask for a new upload URL")
    if isinstance(store, S3Storage) and not store.head(upload["object_key"]).get(
            "ServerSideEncryption"):
        raise UserError(f"upload {upload['upload_id']}: S3 stored it unencrypted; turn on "
                        f"default encryption of bucket {store.bucket!r} "
                        "(docs/files.md, \"S3\") and upload it again")


def request_for(upload: dict[str, Any], path: Path) -> IngestRequest:
    """The IngestRequest `secinf ingest` would build for this upload."""
    opts = UploadOptions.model_validate(upload["options"])
    time_origin: datetime | None = opts.time_origin
    return IngestRequest(
        project=str(upload["project_id"]), source=str(upload["source"]), path=path,
        fmt=opts.format, fps=opts.fps, units=opts.units, scale=opts.scale,
        # Only ever a JSON matrix: never a path on the worker's machine.
        homography=json.dumps(opts.homography) if opts.homography is not None else None,
        time_origin=time_origin, strict=opts.strict,
        idempotency_key=f"upload:{upload['upload_id']}")


def run_ingest_file(payload: UploadPayload, ctx: JobContext) -> JsonResult:
    failure: UserError | None = None
    with ctx.connection() as conn:
        upload = conn.execute(query("files", "upload"),
                              {"upload_id": payload.upload_id}).fetchone()
        conn.commit()
        if upload is None or str(upload["project_id"]) != ctx.job.project_id:
            raise PermanentError(f"upload {payload.upload_id} is not in project "
                                 f"{ctx.job.project_id}")
        if upload["status"] not in ("queued", "ingested"):
            raise PermanentError(f"upload {payload.upload_id} is {upload['status']}, not "
                                 "queued")
        store = job_storage()
        try:
            with local_copy(store, upload["object_key"], upload["filename"]) as (path, sha):
                check_receipt(store, dict(upload), path, sha)
                summary = ingest(conn, request_for(dict(upload), path))
        except ObjectMissing:
            if upload["received_at"] is not None:
                raise  # the service stored it: storage lost it, an operator's matter
            failure = NotReceived(
                f"upload {payload.upload_id} is not in storage: PUT the file to its URL "
                "(with the headers ingest_upload_url returned, following the redirect), "
                "then call ingest_upload_complete again")
        except UserError as exc:  # the file's own fault: retrying cannot help
            failure = exc
    # One pooled connection at a time (the pool may hold one per job).
    with ctx.write_back() as conn:
        if isinstance(failure, NotReceived):
            conn.execute(query("files", "upload_not_received"),
                         {"upload_id": payload.upload_id})
        else:
            conn.execute(query("files", "finish_upload"), {
                "upload_id": payload.upload_id, "status": "failed" if failure else "ingested",
                "received": failure is None})
        if failure is None:
            result = summary.as_json()
            result["errors"] = result.get("errors", [])[:MAX_ERRORS]
            ctx.complete_in(conn, {"upload_id": payload.upload_id, "ingest": result})
    if failure is not None:
        raise PermanentError(str(failure)) from failure
    return None


register_kind(INGEST_FILE, UploadPayload, run_ingest_file, timeout_s=3600,
              description="ingest an upload of a signed URL (api.ingest_upload_complete)")

__all__ = ["INGEST_FILE", "request_for", "run_ingest_file"]
