"""File delivery in the database (issue 17): signed download URLs of a published dataset
version, signed upload URLs and their one-time completion, and the audit of both, called
as the real roles through the PostgREST request model. The signatures are checked here
with Python's hmac against the canonical text of sql/760_files.sql (the file service's
own verification is tested with it, tests/db/test_file_service.py)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
SHA = hashlib.sha256(b"track_id,frame,x,y\n1,0,0,0\n").hexdigest()


def publish(db: Conn, project: str, version: str = "1.0.0", *, key_layout: bool = True) -> str:
    """A published version with a train and a test file; returns its storage path."""
    org = db.execute("SELECT org_id FROM core.projects WHERE project_id = %s",
                     (project,)).fetchone()
    assert org is not None
    path = (f"org/{org['org_id']}/project/{project}/datasets/events/{version}" if key_layout
            else f"/var/lib/secinf/datasets/{project}/events/{version}")
    row = db.execute(
        "INSERT INTO datasets.versions (project_id, version, schema_version, split_seed,"
        " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card,"
        " manifest_sha256) VALUES (%s, %s, 1, 0, 0.7, 0.15, 0.15, 2, %s, '# card',"
        " repeat('c', 64)) RETURNING version_id", (project, version, path)).fetchone()
    assert row is not None
    for split in ("train", "test"):
        db.execute("INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows,"
                   " bytes, sha256) VALUES (%s, %s, %s, 'events', %s, 3, 120, repeat('d', 64))",
                   (project, row["version_id"], f"{split}/events.parquet", split))
    db.execute("INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed,"
               " summary) VALUES (%s, %s, 'schema', true, 'ok')", (project, row["version_id"]))
    db.execute("UPDATE datasets.versions SET status = 'published' WHERE version_id = %s",
               (row["version_id"],))
    db.commit()
    return path


def verify(db: Conn, url: str) -> tuple[str, dict[str, str]]:
    """(key, query) of a signed URL whose signature is right for the database's secret."""
    parts = urlsplit(url)
    assert parts.path.startswith("/files/")
    key = parts.path[len("/files/"):]
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    secret = db.execute("SELECT secret FROM auth.url_signing_keys WHERE kid = %s",
                        (q["kid"],)).fetchone()
    assert secret is not None
    canonical = "\n".join([q["method"], key, q["expires"], q.get("bytes", ""),
                           q.get("sha256", "")])
    want = hmac.new(secret["secret"].encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, q["sig"])
    return key, q


def test_download_urls_of_a_split_are_signed_audited_and_scoped(db: Conn, dsn: str) -> None:
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    path = publish(db, a)
    publish(db, b, "2.0.0")
    customer = Api(dsn).as_("customer", project_id=a, sub="key:sik_000000000001")
    rows = customer.rpc("dataset_download", p_version="1.0.0", p_split="train")
    assert [r["path"] for r in rows] == ["manifest.json", "train/events.parquet"]
    train = rows[1]
    assert (train["bytes"], train["sha256"], train["rows"]) == (120, "d" * 64, 3)
    key, q = verify(db, train["url"])
    assert key == f"{path}/train/events.parquet" and q["method"] == "GET"
    assert train["url"].startswith("http://127.0.0.1:8600/files/org/")
    every = customer.rpc("dataset_download", p_version="events@1.0.0")
    assert [r["path"] for r in every] == ["manifest.json", "test/events.parquet",
                                         "train/events.parquet"]
    audit = db.execute("SELECT actor, action, target, details FROM audit.log"
                       " WHERE action = 'file.url' ORDER BY audit_id").fetchall()
    assert [(r["actor"], r["target"], r["details"]["files"]) for r in audit] == [
        ("key:sik_000000000001", "events@1.0.0", 2), ("key:sik_000000000001", "events@1.0.0", 3)]
    assert audit[0]["details"]["address"] == "local"
    # Another project's version does not exist for the caller.
    with pytest.raises(ApiError) as err:
        customer.rpc("dataset_download", p_version="2.0.0")
    assert err.value.status == 404 and b not in err.value.message
    with pytest.raises(ApiError) as err:
        customer.rpc("dataset_download", p_version="1.0.0", p_split="holdout")
    assert (err.value.status, err.value.message) == (400, 'unknown split "holdout"')


def test_unpublished_and_old_layout_versions_are_refused_with_the_fix(db: Conn, dsn: str
                                                                      ) -> None:
    a = make_project(db, "acme", "north")
    publish(db, a, "1.0.0", key_layout=False)
    db.execute("INSERT INTO datasets.versions (project_id, version, schema_version, split_seed,"
               " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card,"
               " manifest_sha256) VALUES (%s, '1.1.0', 1, 0, 0.7, 0.15, 0.15, 2, 'x', '#',"
               " repeat('c', 64))", (a,))
    db.commit()
    customer = Api(dsn).as_("customer", project_id=a)
    with pytest.raises(ApiError) as err:
        customer.rpc("dataset_download", p_version="1.1.0")
    assert err.value.message == ("dataset version 1.1.0 is draft: only published versions "
                                 "are downloadable")
    with pytest.raises(ApiError) as err:
        customer.rpc("dataset_download", p_version="1.0.0")
    assert "was exported before downloads existed" in err.value.message
    assert err.value.hint and "secinf export" in err.value.hint


def test_an_upload_is_signed_for_its_size_and_hash_and_queued_once(db: Conn, dsn: str) -> None:
    a = make_project(db, "acme", "north")
    customer = Api(dsn).as_("customer", project_id=a, sub="key:sik_000000000002")
    grant = customer.rpc("ingest_upload_url", source="cam-1", filename="tracks.csv",
                         bytes=28, sha256=SHA, options=Jsonb({"fps": 10, "units": "m"}))
    key, q = verify(db, grant["url"])
    assert (q["method"], q["bytes"], q["sha256"]) == ("PUT", "28", SHA)
    assert key.endswith(f"/uploads/{grant['upload_id']}/tracks.csv")
    upload = grant["upload_id"]
    # Not received yet: nothing to queue.
    with pytest.raises(ApiError) as err:
        customer.rpc("ingest_upload_complete", upload_id=upload)
    assert err.value.status == 409 and err.value.hint == "PUT the file to the signed URL first."
    # The service stores it (as the pipeline role); other bytes than signed are refused.
    with psycopg.connect(dsn) as service:
        service.execute("SET ROLE pipeline")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not what was signed"):
            service.execute("SELECT files.mark_received(%s, 29, %s)", (key, SHA))
        service.rollback()
        service.execute("SET ROLE pipeline")
        got = service.execute("SELECT files.mark_received(%s, 28, %s)", (key, SHA)).fetchone()
        service.commit()
    assert got == ("received",)
    first = customer.rpc("ingest_upload_complete", upload_id=upload)
    again = customer.rpc("ingest_upload_complete", upload_id=upload)
    assert first["status"] == again["status"] == "queued"
    assert first["job_id"] == again["job_id"] is not None
    jobs = db.execute("SELECT kind, payload FROM jobs.jobs WHERE project_id = %s",
                      (a,)).fetchall()
    assert jobs == [{"kind": "ingest_file", "payload": {"upload_id": upload}}]
    # Another project's caller cannot complete it, and learns nothing of it.
    b = make_project(db, "globex", "south")
    other = Api(dsn).as_("customer", project_id=b)
    with pytest.raises(ApiError) as err:
        other.rpc("ingest_upload_complete", upload_id=upload)
    assert (err.value.status, err.value.message) == (404, f"no upload {upload}")


@pytest.mark.parametrize(("args", "message"), [
    ({"filename": "../etc/passwd"}, 'filename "../etc/passwd" is not a plain file name'),
    ({"filename": "a/b.csv"}, 'filename "a/b.csv" is not a plain file name'),
    ({"bytes": 0}, "an upload is 1 to 2147483648 bytes, not 0"),
    ({"bytes": 2147483649}, "an upload is 1 to 2147483648 bytes, not 2147483649"),
    ({"sha256": "ABC"}, "sha256 must be 64 lowercase hex digits"),
    ({"options": Jsonb({"mapping": {}})}, "unknown upload option mapping"),
    # A homography is a matrix, never a path on the worker's machine.
    ({"options": Jsonb({"homography": "/etc/passwd"})},
     'upload option homography has the wrong type: "/etc/passwd"'),
    ({"options": Jsonb({"fps": -1})}, "upload option fps has the wrong type: -1"),
])
def test_bad_upload_requests_are_clear_400s_and_store_nothing(
        db: Conn, dsn: str, args: dict[str, Any], message: str) -> None:
    a = make_project(db, "acme", "north")
    customer = Api(dsn).as_("customer", project_id=a)
    call = {"source": "cam-1", "filename": "tracks.csv", "bytes": 28, "sha256": SHA, **args}
    with pytest.raises(ApiError) as err:
        customer.rpc("ingest_upload_url", **call)
    assert (err.value.status, err.value.message) == (400, message)
    assert db.execute("SELECT count(*) AS n FROM files.uploads").fetchone() == {"n": 0}


def test_only_writers_upload_and_nobody_signs_directly(db: Conn, dsn: str) -> None:
    a = make_project(db, "acme", "north")
    reviewer = Api(dsn).as_("reviewer", project_id=a)
    with pytest.raises(ApiError) as err:
        reviewer.rpc("ingest_upload_url", source="cam", filename="t.csv", bytes=1, sha256=SHA)
    assert err.value.message == "permission denied for function ingest_upload_url"
    customer = Api(dsn).as_("customer", project_id=a)
    for call in ("SELECT files.signed_url('GET', 'org/x', now())",
                 "SELECT files.url_secret('u1')"):
        with pytest.raises(ApiError) as err:
            customer.request("POST", "/rpc/x", psycopg.sql.SQL(call))  # type: ignore[arg-type]
        assert err.value.message == "permission denied for schema files"
