"""The ingest_file job (issue 17): an upload received into storage and completed through the
API is loaded by a worker exactly as `secinf ingest` loads a file, once, with its row errors
readable through api.job; a worker killed during the job leaves exactly one batch."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.factories import make_project
from tests.support.moto_s3 import MotoS3, moto_s3
from tests.support.postgrest import Api
from workers.queue.worker import WorkerConfig, run_worker
from workers.storage import LocalStorage, S3Storage, storage_from_settings

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
ROOT = Path(__file__).resolve().parents[2]


def csv_bytes(rows: int, bad: tuple[int, ...] = ()) -> bytes:
    lines = ["track_id,frame,x,y"]
    for i in range(rows):
        lines.append(f"{i % 50},{i // 50},{'oops' if i in bad else i * 0.01},1.5")
    return ("\n".join(lines) + "\n").encode()


def received_upload(db: Conn, dsn: str, root: Path, data: bytes, project: str,
                    **options: Any) -> tuple[Api, str]:
    """An upload issued through the API and received as the file service receives it (the
    object stored under its key, files.mark_received as the pipeline role)."""
    customer = Api(dsn).as_("customer", project_id=project)
    sha = hashlib.sha256(data).hexdigest()
    grant = customer.rpc("ingest_upload_url", source="cam-1", filename="tracks.csv",
                         bytes=len(data), sha256=sha,
                         options=Jsonb({"fps": 10, "units": "m", **options}))
    key = db.execute("SELECT object_key FROM files.uploads WHERE upload_id = %s",
                     (grant["upload_id"],)).fetchone()
    assert key is not None
    tmp = root / "incoming.csv"
    tmp.write_bytes(data)
    LocalStorage(root).put_file(key["object_key"], tmp)
    with psycopg.connect(dsn) as service:
        service.execute("SET ROLE pipeline")
        service.execute("SELECT files.mark_received(%s, %s, %s)",
                        (key["object_key"], len(data), sha))
    return customer, str(grant["upload_id"])


def test_an_upload_is_ingested_once_with_its_row_errors(
        db: Conn, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path))
    project = make_project(db, "acme", "north")
    customer, upload = received_upload(db, dsn, tmp_path, csv_bytes(200, bad=(7,)), project)
    done = customer.rpc("ingest_upload_complete", upload_id=upload)
    run_worker(dsn, WorkerConfig(kinds=("ingest_file",), mode="until_idle", concurrency=1,
                                 poll_s=0.2, lease_s=30.0), signals=False)
    job = customer.rpc("job", p_job_id=done["job_id"])
    assert job["state"] == "succeeded", job
    result = job["result"]["ingest"]
    assert (result["inserted"], result["invalid"]) == (199, 1)
    assert result["errors"][0]["row"] == 8  # rows count data rows from 1, as secinf ingest
    assert db.execute("SELECT count(*) AS n FROM ingest.track_points WHERE project_id = %s",
                      (project,)).fetchone() == {"n": 199}
    assert db.execute("SELECT status FROM files.uploads WHERE upload_id = %s",
                      (upload,)).fetchone() == {"status": "ingested"}
    # Completing it again queues nothing and loads nothing.
    again = customer.rpc("ingest_upload_complete", upload_id=upload)
    assert (again["status"], again["job_id"]) == ("ingested", done["job_id"])


def test_a_file_that_cannot_load_fails_its_job_with_the_reason(
        db: Conn, dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path))
    project = make_project(db, "acme", "north")
    customer, upload = received_upload(db, dsn, tmp_path, csv_bytes(20, bad=(3,)), project,
                                       strict=True)
    done = customer.rpc("ingest_upload_complete", upload_id=upload)
    run_worker(dsn, WorkerConfig(kinds=("ingest_file",), mode="until_idle", concurrency=1,
                                 poll_s=0.2, lease_s=30.0), signals=False)
    job = customer.rpc("job", p_job_id=done["job_id"])
    assert job["state"] == "dead", job
    assert "row 4" in job["error"], job
    assert db.execute("SELECT count(*) AS n FROM ingest.track_points").fetchone() == {"n": 0}
    assert db.execute("SELECT status FROM files.uploads WHERE upload_id = %s",
                      (upload,)).fetchone() == {"status": "failed"}


@pytest.mark.slow
def test_a_worker_killed_during_the_job_leaves_exactly_one_batch(
        db: Conn, dsn: str, tmp_path: Path) -> None:
    project = make_project(db, "acme", "north")
    rows = 150_000
    customer, upload = received_upload(db, dsn, tmp_path, csv_bytes(rows), project)
    done = customer.rpc("ingest_upload_complete", upload_id=upload)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECINF_")}
    env.update(SECINF_DSN=dsn, SECINF_DATASETS_DIR=str(tmp_path))
    args = [sys.executable, "-m", "workers.queue", "--kinds", "ingest_file", "--lease", "2",
            "--poll", "0.3", "--grace", "0"]
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # killed once the job is running
            state = db.execute("SELECT state FROM jobs.jobs WHERE job_id = %s",
                               (done["job_id"],)).fetchone()
            db.commit()
            if state and state["state"] == "running":
                break
            time.sleep(0.05)
        time.sleep(0.5)
        first.kill()
        first.wait(10)
        second = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            while time.monotonic() < deadline + 60:
                state = db.execute("SELECT state FROM jobs.jobs WHERE job_id = %s",
                                   (done["job_id"],)).fetchone()
                db.commit()
                if state and state["state"] in ("succeeded", "dead"):
                    break
                time.sleep(0.2)
        finally:
            second.kill()
            second.wait(10)
    finally:
        first.kill()
    assert state is not None and state["state"] == "succeeded"
    batches = db.execute("SELECT count(*) AS n, sum(rows_inserted) AS rows FROM ingest.batches"
                         " WHERE project_id = %s", (project,)).fetchone()
    assert batches == {"n": 1, "rows": rows}
    assert db.execute("SELECT count(*) AS n FROM ingest.track_points WHERE project_id = %s",
                      (project,)).fetchone() == {"n": rows}


# ---------------------------------------------------------------------- the S3 backend
@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def s3_store(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    """The worker's storage is S3 (moto: a stand-in for S3), a bucket that encrypts every
    object by default, as docs/files.md asks of a production bucket."""
    bucket = s3.bucket()
    s3.client().put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                        "SECINF_STORAGE_BACKEND": "s3", "SECINF_S3_BUCKET": bucket,
                        "SECINF_S3_PREFIX": "secinf", "SECINF_S3_ENDPOINT_URL": s3.endpoint_url
                        }.items():
        monkeypatch.setenv(name, value)
    store = storage_from_settings()
    assert isinstance(store, S3Storage)
    return store


def sent_upload(db: Conn, dsn: str, data: bytes, project: str) -> tuple[Api, str, str]:
    """An upload the file service sent on to S3 (files.mark_sent, as the service does on a
    valid PUT with the S3 backend): (customer, upload id, object key)."""
    customer = Api(dsn).as_("customer", project_id=project)
    sha = hashlib.sha256(data).hexdigest()
    grant = customer.rpc("ingest_upload_url", source="cam-1", filename="tracks.csv",
                         bytes=len(data), sha256=sha, options=Jsonb({"fps": 10, "units": "m"}))
    key = db.execute("SELECT object_key FROM files.uploads WHERE upload_id = %s",
                     (grant["upload_id"],)).fetchone()
    assert key is not None
    with psycopg.connect(dsn) as service:
        service.execute("SET ROLE pipeline")
        service.execute("SELECT files.mark_sent(%s, %s, %s)", (key["object_key"], len(data), sha))
    return customer, str(grant["upload_id"]), str(key["object_key"])


def run_ingest_jobs(dsn: str) -> None:
    run_worker(dsn, WorkerConfig(kinds=("ingest_file",), mode="until_idle", concurrency=1,
                                 poll_s=0.2, lease_s=30.0), signals=False)


def upload_row(db: Conn, upload: str) -> dict[str, Any]:
    row = db.execute("SELECT status, received_at IS NOT NULL AS received FROM files.uploads"
                     " WHERE upload_id = %s", (upload,)).fetchone()
    assert row is not None
    return row


def test_an_upload_sent_to_s3_is_checked_then_ingested(
        db: Conn, dsn: str, s3_store: S3Storage) -> None:
    project = make_project(db, "acme", "north")
    data = csv_bytes(120)
    customer, upload, key = sent_upload(db, dsn, data, project)
    s3_store.put_stream(key, io.BytesIO(data), len(data))  # the client's PUT to S3
    done = customer.rpc("ingest_upload_complete", upload_id=upload)
    assert done["status"] == "queued"
    run_ingest_jobs(dsn)
    job = customer.rpc("job", p_job_id=done["job_id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["ingest"]["inserted"] == 120
    assert upload_row(db, upload) == {"status": "ingested", "received": True}


def test_an_upload_never_sent_can_be_sent_and_completed_again(
        db: Conn, dsn: str, s3_store: S3Storage) -> None:
    project = make_project(db, "acme", "north")
    data = csv_bytes(30)
    customer, upload, key = sent_upload(db, dsn, data, project)
    first = customer.rpc("ingest_upload_complete", upload_id=upload)
    run_ingest_jobs(dsn)
    job = customer.rpc("job", p_job_id=first["job_id"])
    assert job["state"] == "dead" and "is not in storage" in job["error"], job
    assert upload_row(db, upload) == {"status": "issued", "received": False}
    s3_store.put_stream(key, io.BytesIO(data), len(data))
    with psycopg.connect(dsn) as service:
        service.execute("SET ROLE pipeline")
        service.execute("SELECT files.mark_sent(%s, %s, %s)",
                        (key, len(data), hashlib.sha256(data).hexdigest()))
    second = customer.rpc("ingest_upload_complete", upload_id=upload)
    assert second["job_id"] != first["job_id"]
    run_ingest_jobs(dsn)
    assert customer.rpc("job", p_job_id=second["job_id"])["state"] == "succeeded"
    assert upload_row(db, upload) == {"status": "ingested", "received": True}
    assert db.execute("SELECT count(*) AS n FROM ingest.track_points WHERE project_id = %s",
                      (project,)).fetchone() == {"n": 30}


def test_other_bytes_in_s3_are_refused_and_load_nothing(
        db: Conn, dsn: str, s3_store: S3Storage) -> None:
    project = make_project(db, "acme", "north")
    data = csv_bytes(30)
    customer, upload, key = sent_upload(db, dsn, data, project)
    other = data.replace(b"1.5", b"2.5")  # same size, other content
    s3_store.put_stream(key, io.BytesIO(other), len(other))
    done = customer.rpc("ingest_upload_complete", upload_id=upload)
    run_ingest_jobs(dsn)
    job = customer.rpc("job", p_job_id=done["job_id"])
    assert job["state"] == "dead" and "not the" in job["error"], job
    assert hashlib.sha256(other).hexdigest() in job["error"]
    assert upload_row(db, upload) == {"status": "failed", "received": False}
    assert db.execute("SELECT count(*) AS n FROM ingest.track_points WHERE project_id = %s",
                      (project,)).fetchone() == {"n": 0}
