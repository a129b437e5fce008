"""The file service (workers/files, issue 17) over real HTTP: uvicorn on a loopback port,
the local storage backend in a temporary directory, URLs issued by the api functions as
the real roles (tests/support/postgrest.py) and verified with the database's secret.
The clock the service checks expiry against is moved, never slept."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support.factories import make_project
from tests.support.file_service import Clock, Service, serving
from tests.support.moto_s3 import MotoS3, moto_s3
from tests.support.postgrest import Api
from workers.errors import UserError
from workers.files import signing
from workers.files.app import create_app
from workers.files.service_db import ServiceDB
from workers.storage import LocalStorage, S3Storage, Storage

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
TTL_S = 15 * 60  # files.service.url_ttl's default


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db: Conn, dsn: str, store: LocalStorage, clock: Clock) -> Iterator[Service]:
    app = create_app(store, ServiceDB(dsn, max_size=4), clock=clock)
    with serving(app) as svc:
        db.execute("UPDATE files.service SET base_url = %s", (svc.base_url,))
        db.commit()
        yield svc


def org_of(db: Conn, project: str) -> str:
    row = db.execute("SELECT org_id FROM core.projects WHERE project_id = %s",
                     (project,)).fetchone()
    assert row is not None
    return str(row["org_id"])


def publish(db: Conn, store: Storage, project: str, files: dict[str, bytes],
            version: str = "1.0.0") -> str:
    """A published version whose files are stored under its key prefix; its prefix."""
    prefix = f"org/{org_of(db, project)}/project/{project}/datasets/events/{version}"
    manifest = b'{"files": []}'
    for path, data in {**files, "manifest.json": manifest}.items():
        store.put_stream(f"{prefix}/{path}", io.BytesIO(data), len(data))
    row = db.execute(
        "INSERT INTO datasets.versions (project_id, version, schema_version, split_seed,"
        " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card,"
        " manifest_sha256) VALUES (%s, %s, 1, 0, 0.7, 0.15, 0.15, 2, %s, '# card', %s)"
        " RETURNING version_id",
        (project, version, prefix, hashlib.sha256(manifest).hexdigest())).fetchone()
    assert row is not None
    for path, data in files.items():
        db.execute("INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows,"
                   " bytes, sha256) VALUES (%s, %s, %s, 'events', %s, 3, %s, %s)",
                   (project, row["version_id"], path, path.split("/")[0], len(data),
                    hashlib.sha256(data).hexdigest()))
    db.execute("INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed,"
               " summary) VALUES (%s, %s, 'schema', true, 'ok')", (project, row["version_id"]))
    db.execute("UPDATE datasets.versions SET status = 'published' WHERE version_id = %s",
               (row["version_id"],))
    db.commit()
    return prefix


def accesses(db: Conn) -> list[tuple[str, str, str | None]]:
    """(action, result, reason) of the service's audit rows, oldest first."""
    rows = db.execute("SELECT action, details FROM audit.log WHERE actor = 'file-service'"
                      " ORDER BY audit_id").fetchall()
    return [(r["action"], r["details"]["result"], r["details"].get("reason")) for r in rows]


def download_url(dsn: str, project: str, path: str) -> str:
    customer = Api(dsn).as_("customer", project_id=project)
    rows = customer.rpc("dataset_download", p_version="1.0.0")
    return next(r["url"] for r in rows if r["path"] == path)


def with_path(url: str, key: str) -> str:
    parts = urlsplit(url)
    return f"/files/{key}?{parts.query}"


BLOB = os.urandom(3 * (1 << 20) + 12345)  # several of the service's 1 MiB chunks


# ---------------------------------------------------------------------- signing ↔ SQL
def test_sql_signed_urls_verify_in_python_and_python_signs_as_sql(db: Conn) -> None:
    a = make_project(db, "acme", "north")
    key = f"org/{org_of(db, a)}/project/{a}/uploads/x/tracks.csv"
    row = db.execute("SELECT files.signed_url('PUT', %s, to_timestamp(2000000000), 28,"
                     " repeat('a', 64)) AS put, files.signed_url('GET', %s,"
                     " to_timestamp(2000000000.7)) AS get,"
                     " (SELECT kid FROM auth.url_signing_keys WHERE active) AS kid,"
                     " (SELECT secret FROM auth.url_signing_keys WHERE active) AS secret",
                     (key, key)).fetchone()
    assert row is not None
    secrets = {row["kid"]: row["secret"]}
    for method, url in (("PUT", row["put"]), ("GET", row["get"])):
        parts = urlsplit(url)
        query = dict(p.split("=", 1) for p in parts.query.split("&"))
        got = signing.verify(method, parts.path[len("/files/"):], query, secrets.get,
                             lambda: 1999999999.0)
        assert (got.method, got.key, got.expires) == (method, key, 2000000000)
        # The reverse: Python's URL for the same grant is the database's, byte for byte.
        base = url[:url.index("/files/")]
        assert signing.signed_url(base, row["kid"], row["secret"], method, key, got.expires,
                                  got.bytes, got.sha256) == url
    # And Python's canonical text is files.canonical's.
    sql_text = db.execute("SELECT files.canonical('PUT', %s, 7, 28, %s) AS a,"
                          " files.canonical('GET', %s, 7, NULL, NULL) AS b",
                          (key, "a" * 64, key)).fetchone()
    assert sql_text == {"a": signing.canonical("PUT", key, 7, 28, "a" * 64),
                        "b": signing.canonical("GET", key, 7)}


@pytest.fixture(scope="module")
def sql_conn(module_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(module_dsn, row_factory=dict_row, autocommit=True) as conn:
        yield conn


_SEGMENTS = st.sampled_from(["a", "b.csv", "..", ".", "", "x y", "a\\b", "\x00", "é", "-_.",
                             ".hidden", "UP", "a\n"])


@settings(max_examples=60, deadline=None)
@given(tail=st.lists(_SEGMENTS, min_size=0, max_size=4), lead=st.sampled_from(["", "/"]),
       pid=st.sampled_from(["1" * 8 + "-1111-1111-1111-" + "1" * 12,  # canonical
                            "-" * 36, "1" * 36, "1" * 8 + "-1111-1111-1111-" + "1" * 11 + "g",
                            "1" * 12 + "-1111-1111-" + "1" * 12]))
def test_key_check_agrees_with_files_valid_key(sql_conn: Conn, tail: list[str],
                                               lead: str, pid: str) -> None:
    org = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    key = lead + "/".join([f"org/{org}/project/{pid}", *tail])
    try:
        signing.check_key(key)
        ours = True
    except signing.BadKey:
        ours = False
    if "\x00" in key:  # Postgres text cannot hold NUL: the service refuses it first
        assert not ours
        return
    row = sql_conn.execute("SELECT files.valid_key(%s) AS ok, files.key_project(%s) AS pid",
                           (key, key)).fetchone()  # key_project never fails to cast
    assert row is not None and ours == row["ok"], key
    assert (str(row["pid"]) if ours else None) == (pid if ours else row["pid"])


# ---------------------------------------------------------------------- downloads
def test_a_signed_url_downloads_the_file_whole_and_in_ranges(
        db: Conn, dsn: str, store: LocalStorage, service: Service) -> None:
    a = make_project(db, "acme", "north")
    prefix = publish(db, store, a, {"train/events.parquet": BLOB})
    url = download_url(dsn, a, "train/events.parquet")
    assert url.startswith(f"{service.base_url}/files/{prefix}/train/events.parquet?")
    got = service.request("GET", url)
    assert got.status == 200
    assert hashlib.sha256(got.body).hexdigest() == hashlib.sha256(BLOB).hexdigest()
    assert len(got.body) == len(BLOB) == int(got.headers["content-length"])
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["content-disposition"] == 'attachment; filename="events.parquet"'
    assert got.headers["etag"] == f'"{hashlib.sha256(BLOB).hexdigest()}"'  # datasets.files'
    manifest = service.request("GET", download_url(dsn, a, "manifest.json"))
    assert manifest.headers["etag"] == f'"{hashlib.sha256(manifest.body).hexdigest()}"'
    size = len(BLOB)
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=1048570-1048600", 1048570,
                                                        1048600),
                               (f"bytes={size - 10}-", size - 10, size - 1),
                               ("bytes=-50", size - 50, size - 1),
                               (f"bytes=5-{size * 2}", 5, size - 1),
                               (f"bytes=-{size + 9}", 0, size - 1)):
        part = service.request("GET", url, headers={"Range": header})
        assert part.status == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}", header
        assert part.body == BLOB[start:end + 1], header
        assert int(part.headers["content-length"]) == end - start + 1
    for header in (f"bytes={size}-", "bytes=-0", "bytes=9-3", "bytes=0-1,5-9", "items=0-1"):
        bad = service.request("GET", url, headers={"Range": header})
        assert bad.status == 416, header
        assert bad.headers["content-range"] == f"bytes */{size}"
        assert bad.json()["error"] == "range_not_satisfiable"
    # Every download served and refused is audited with the client's address.
    rows = db.execute("SELECT project_id, action, target, details FROM audit.log"
                      " WHERE actor = 'file-service' ORDER BY audit_id").fetchall()
    assert [r["details"]["result"] for r in rows] == ["served"] * 8 + ["refused"] * 5
    assert {str(r["project_id"]) for r in rows} == {a}
    assert {r["details"]["address"] for r in rows} == {"127.0.0.1"}
    assert rows[0]["target"] == f"{prefix}/train/events.parquet"
    assert rows[2]["details"]["range"] == "0-99"


def test_expired_tampered_and_misused_urls_are_refused_and_audited(
        db: Conn, dsn: str, store: LocalStorage, service: Service, clock: Clock) -> None:
    a = make_project(db, "acme", "north")
    publish(db, store, a, {"train/events.parquet": b"x" * 100})
    url = download_url(dsn, a, "train/events.parquet")
    sig = url.rsplit("sig=", 1)[1]
    cases = {
        "bad_signature": [url[:-1] + ("0" if sig[-1] != "0" else "1"),
                          url.replace("expires=", "expires=1")],
        "malformed_url": [url.replace("&kid=", "&kid=X"), url.split("&sig=")[0]],
        "unknown_kid": [url.replace("kid=", "kid=zz")],
    }
    for code, urls in cases.items():
        for bad in urls:
            got = service.request("GET", bad)
            assert got.status == (400 if code == "malformed_url" else 403), bad
            body = got.json()
            assert body["error"] == code and body["message"] and body["hint"], body
    # A download URL does not upload.
    put = service.request("PUT", url, b"y" * 100)
    assert (put.status, put.json()["error"]) == (403, "wrong_method")
    assert store.open_read(urlsplit(url).path[len("/files/"):]).read() == b"x" * 100
    # Valid until it expires, refused from then on.
    assert service.request("GET", url).status == 200
    clock.advance(TTL_S + 1)
    late = service.request("GET", url)
    assert late.status == 403
    assert late.json()["error"] == "expired"
    assert "Ask for a new URL" in late.json()["hint"]
    assert accesses(db) == [
        ("file.download", "refused", "bad_signature"), ("file.download", "refused",
                                                        "bad_signature"),
        ("file.download", "refused", "malformed_url"), ("file.download", "refused",
                                                        "malformed_url"),
        ("file.download", "refused", "unknown_kid"), ("file.upload", "refused", "wrong_method"),
        ("file.download", "served", None), ("file.download", "refused", "expired")]


def test_a_url_for_one_project_opens_nothing_of_another(
        db: Conn, dsn: str, store: LocalStorage, service: Service) -> None:
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    prefix_a = publish(db, store, a, {"train/events.parquet": b"A" * 64})
    prefix_b = publish(db, store, b, {"train/events.parquet": b"B" * 64})
    url = download_url(dsn, a, "train/events.parquet")
    for key in (f"{prefix_b}/train/events.parquet", f"{prefix_a}/manifest.json",
                f"{prefix_a}/train/events.parquet.bak"):
        got = service.request("GET", with_path(url, key))
        assert (got.status, got.json()["error"]) == (403, "bad_signature"), key
        assert b"B" * 64 not in got.body
    rows = db.execute("SELECT project_id, details->>'result' AS result FROM audit.log"
                      " WHERE actor = 'file-service' ORDER BY audit_id").fetchall()
    # The refusal on B's key is B's audit row: its owner sees the attempt.
    assert [(str(r["project_id"]), r["result"]) for r in rows] == [
        (b, "refused"), (a, "refused"), (a, "refused")]


@pytest.mark.parametrize("path", [
    "{prefix}/../../../../etc/passwd",
    "{prefix}/%2e%2e/%2e%2e/secret",
    "/etc/passwd",
    "{prefix}/./events.parquet",
    "{prefix}//events.parquet",
    "{prefix}/a%5Cb",
    "{prefix}/a%00b",
    "org/../../etc",
    "",
    "org/",
    "org/000000000000000000000000000000000000/project/------------------------------------/a",
])
def test_dot_dot_absolute_and_odd_paths_never_reach_storage(
        db: Conn, dsn: str, store: LocalStorage, service: Service, tmp_path: Path,
        path: str) -> None:
    a = make_project(db, "acme", "north")
    prefix = publish(db, store, a, {"train/events.parquet": b"x" * 10})
    (tmp_path / "secret").write_text("do not serve")
    url = download_url(dsn, a, "train/events.parquet")
    query = urlsplit(url).query
    got = service.request("GET", f"/files/{path.format(prefix=prefix)}?{query}")
    assert got.status == 400
    assert got.json()["error"] == "bad_key"
    assert "do not serve" not in got.body.decode()
    assert accesses(db) == [("file.download", "refused", "bad_key")]
    target = db.execute("SELECT target FROM audit.log WHERE actor = 'file-service'").fetchone()
    assert target is not None and target["target"].startswith("bad key: ")


def test_no_listing_and_an_unknown_object_is_a_404(
        db: Conn, dsn: str, store: LocalStorage, service: Service) -> None:
    a = make_project(db, "acme", "north")
    prefix = publish(db, store, a, {"train/events.parquet": b"x" * 10})
    for target in (f"/files/{prefix}", f"/files/{prefix}/", "/files/", "/files"):
        got = service.request("GET", target)
        assert got.status in (400, 404), target
        assert "events.parquet" not in got.body.decode()
    # Signed, but removed from storage since.
    key = f"{prefix}/train/gone.parquet"
    url = db.execute("SELECT files.signed_url('GET', %s, now() + interval '1 minute') AS u",
                     (key,)).fetchone()
    assert url is not None
    got = service.request("GET", url["u"])
    assert (got.status, got.json()["error"]) == (404, "not_found")


# ---------------------------------------------------------------------- uploads
def upload_grant(dsn: str, project: str, data: bytes, *, nbytes: int | None = None,
                 sha: str | None = None) -> dict[str, Any]:
    customer = Api(dsn).as_("customer", project_id=project)
    grant: dict[str, Any] = customer.rpc(
        "ingest_upload_url", source="cam-1", filename="tracks.csv",
        bytes=len(data) if nbytes is None else nbytes,
        sha256=sha or hashlib.sha256(data).hexdigest(), options=Jsonb({"fps": 10}))
    return grant


def key_of(url: str) -> str:
    return urlsplit(url).path[len("/files/"):]


def test_an_upload_is_stored_once_and_completed_into_one_job(
        db: Conn, dsn: str, store: LocalStorage, service: Service) -> None:
    a = make_project(db, "acme", "north")
    data = b"track_id,frame,x,y\n" + b"1,0,0,0\n" * 200_000  # 1.6 MB
    grant = upload_grant(dsn, a, data)
    got = service.request("PUT", grant["url"], data)
    assert got.status == 200, got.body
    assert got.json() == {"key": key_of(grant["url"]), "bytes": len(data),
                          "sha256": grant["sha256"], "status": "received", "repeated": False}
    assert store.open_read(key_of(grant["url"])).read() == data
    # Read back by a signed GET (as the operator could): its ETag is the signed sha256.
    signed = db.execute("SELECT files.signed_url('GET', %s, now() + interval '1 minute') AS u",
                        (key_of(grant["url"]),)).fetchone()
    assert signed is not None
    back = service.request("GET", signed["u"])
    assert (back.status, back.body, back.headers["etag"]) == (200, data,
                                                              f'"{grant["sha256"]}"')
    customer = Api(dsn).as_("customer", project_id=a)
    first = customer.rpc("ingest_upload_complete", upload_id=grant["upload_id"])
    # The same bytes again (a client retrying): accepted, nothing rewritten, no new job.
    again = service.request("PUT", grant["url"], data, chunked=False)
    assert again.status == 200
    assert (again.json()["status"], again.json()["repeated"]) == ("queued", True)
    second = customer.rpc("ingest_upload_complete", upload_id=grant["upload_id"])
    assert first == second and first["status"] == "queued"
    jobs = db.execute("SELECT kind, payload FROM jobs.jobs WHERE project_id = %s",
                      (a,)).fetchall()
    assert jobs == [{"kind": "ingest_file", "payload": {"upload_id": grant["upload_id"]}}]
    rows = db.execute("SELECT action, target, details FROM audit.log"
                      " WHERE actor = 'file-service' ORDER BY audit_id").fetchall()
    assert [(r["action"], r["details"]["result"]) for r in rows] == [
        ("file.upload", "received"), ("file.download", "served"), ("file.upload", "received")]
    assert rows[0]["details"]["sha256"] == grant["sha256"]
    assert rows[2]["details"]["repeated"] is True
    # A repeated PUT with other bytes of the same size changes nothing either.
    other = bytearray(data)
    other[5] ^= 1
    bad = service.request("PUT", grant["url"], bytes(other))
    assert (bad.status, bad.json()["error"]) == (422, "hash_mismatch")
    assert store.open_read(key_of(grant["url"])).read() == data


def test_concurrent_puts_of_one_upload_store_one_object(
        db: Conn, dsn: str, store: LocalStorage, service: Service, tmp_path: Path) -> None:
    a = make_project(db, "acme", "north")
    data = os.urandom(3 << 20)
    grant = upload_grant(dsn, a, data)
    wrong = bytes(reversed(data))
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda body: service.request("PUT", grant["url"], body),
                                [data, wrong, data, wrong]))
    assert sorted(r.status for r in replies) == [200, 200, 422, 422]
    assert store.open_read(key_of(grant["url"])).read() == data
    assert [p.name for p in _left_behind(tmp_path / "objects")] == ["tracks.csv"]
    assert db.execute("SELECT status FROM files.uploads").fetchone() == {"status": "received"}


def _left_behind(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_over_the_cap_is_a_413_and_leaves_nothing(
        db: Conn, dsn: str, store: LocalStorage, service: Service, tmp_path: Path,
        chunked: bool) -> None:
    a = make_project(db, "acme", "north")
    data = b"x" * 1000
    grant = upload_grant(dsn, a, data)
    body = data + b"y" * 700_000
    got = service.request("PUT", grant["url"], [body[i:i + 65536] for i in
                                                range(0, len(body), 65536)]
                          if chunked else body, chunked=chunked)
    assert got.status == 413
    assert got.json()["error"] == "too_large"
    assert _left_behind(tmp_path / "objects") == []
    status = db.execute("SELECT status FROM files.uploads").fetchone()
    assert status == {"status": "issued"}
    assert accesses(db) == [("file.upload", "refused", "too_large")]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_wrong_hash_or_short_body_is_refused_and_leaves_nothing(
        db: Conn, dsn: str, store: LocalStorage, service: Service, tmp_path: Path,
        chunked: bool) -> None:
    a = make_project(db, "acme", "north")
    data = os.urandom(2 * (1 << 20))
    grant = upload_grant(dsn, a, data)
    wrong = bytes(reversed(data))
    chunks = [wrong[i:i + (1 << 18)] for i in range(0, len(wrong), 1 << 18)]
    got = service.request("PUT", grant["url"], chunks if chunked else wrong, chunked=chunked)
    assert got.status == 422
    body = got.json()
    assert body["error"] == "hash_mismatch"
    assert grant["sha256"] in body["message"] and "sha256sum" in body["hint"]
    short = service.request("PUT", grant["url"], [data[:1000]] if chunked else data[:1000],
                            chunked=chunked)
    assert (short.status, short.json()["error"]) == (400, "incomplete")
    assert _left_behind(tmp_path / "objects") == []
    assert db.execute("SELECT status FROM files.uploads").fetchone() == {"status": "issued"}
    customer = Api(dsn).as_("customer", project_id=a)
    with pytest.raises(Exception, match="has not been received"):
        customer.rpc("ingest_upload_complete", upload_id=grant["upload_id"])
    assert accesses(db) == [("file.upload", "refused", "hash_mismatch"),
                            ("file.upload", "refused", "incomplete")]


def test_upload_urls_are_bound_to_their_key_size_and_hash(
        db: Conn, dsn: str, store: LocalStorage, service: Service, clock: Clock,
        tmp_path: Path) -> None:
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    data = b"track_id,frame,x,y\n1,0,0,0\n"
    grant = upload_grant(dsn, a, data)
    other = upload_grant(dsn, b, data)
    url = grant["url"]
    attempts = {
        "bad_signature": [url.replace("bytes=", "bytes=9"),
                          url.replace(f"sha256={grant['sha256']}", "sha256=" + "0" * 64),
                          with_path(url, key_of(other["url"]))],
        "malformed_url": [url.replace(f"&sha256={grant['sha256']}", "")],
    }
    for code, urls in attempts.items():
        for bad in urls:
            got = service.request("PUT", bad, data)
            assert got.json()["error"] == code, bad
    # A GET with the upload URL is refused (and nothing was stored to read anyway).
    assert service.request("GET", url).json()["error"] == "wrong_method"
    clock.advance(TTL_S + 1)
    late = service.request("PUT", url, data)
    assert (late.status, late.json()["error"]) == (403, "expired")
    assert _left_behind(tmp_path / "objects") == []
    assert [r for r in accesses(db) if r[1] != "refused"] == []


def test_the_service_reports_an_unreachable_database_as_503(
        store: LocalStorage, clock: Clock) -> None:
    db = ServiceDB("host=127.0.0.1 port=1 dbname=none user=nobody connect_timeout=1",
                   timeout=1.0)
    with serving(create_app(store, db, clock=clock)) as svc:
        health = svc.request("GET", "/healthz")
        assert (health.status, health.json()) == (503, {"status": "degraded",
                                                        "database": "unavailable"})
        key = "org/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12 + "/project/" + "1" * 8 + \
              "-1111-1111-1111-" + "1" * 12 + "/a.csv"
        got = svc.request("GET", f"/files/{quote(key)}?method=GET&expires=1&kid=u1&sig="
                          + "0" * 64)
        assert (got.status, got.json()["error"]) == (503, "database_unavailable")


# ---------------------------------------------------------------------- the S3 backend
@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


def test_with_s3_the_service_sends_clients_to_s3_and_holds_no_bytes(
        db: Conn, dsn: str, s3: MotoS3, clock: Clock) -> None:
    """An API-contract test against moto's server mode, a stand-in for S3 (it does not
    check presigned signatures as S3 does): downloads are a 302 and uploads a 307 to S3's
    own presigned URLs, after the service checked the signed URL; it never holds a byte."""
    bucket = S3Storage(s3.bucket(), "secinf", s3.client())
    a = make_project(db, "acme", "north")
    with serving(create_app(bucket, ServiceDB(dsn, max_size=2), clock=clock)) as svc:
        db.execute("UPDATE files.service SET base_url = %s", (svc.base_url,))
        db.commit()
        publish(db, bucket, a, {"train/events.parquet": b"p" * 5000})
        url = download_url(dsn, a, "train/events.parquet")
        got = svc.request("GET", url)
        assert got.status == 302
        location = got.headers["location"]
        assert location.startswith(s3.endpoint_url) and "X-Amz-Signature=" in location
        assert "X-Amz-Expires=" in location
        with urllib.request.urlopen(location, timeout=10) as resp:
            assert resp.read() == b"p" * 5000
        data = b"track_id,frame,x,y\n1,0,0,0\n"
        grant = upload_grant(dsn, a, data)
        headers = grant["headers"]
        assert headers == {"Content-Length": str(len(data)),
                           "x-amz-checksum-sha256": signing.checksum_header(grant["sha256"])}
        # S3 checks the checksum header, so the service wants it before sending anyone on.
        bare = svc.request("PUT", grant["url"], data)
        assert (bare.status, bare.json()["error"]) == (400, "checksum_header")
        assert headers["x-amz-checksum-sha256"] in bare.json()["message"]
        wrong = svc.request("PUT", grant["url"], data, {
            **headers, "x-amz-checksum-sha256": signing.checksum_header("0" * 64)})
        assert (wrong.status, wrong.json()["error"]) == (422, "hash_mismatch")
        sent = svc.request("PUT", grant["url"], data, headers)
        assert sent.status == 307
        target = sent.headers["location"]
        assert target.startswith(s3.endpoint_url) and "X-Amz-Signature=" in target
        signed = parse_qs(urlsplit(target).query)["X-Amz-SignedHeaders"][0].split(";")
        assert {"content-length", "x-amz-checksum-sha256"} <= set(signed)
        assert not bucket.exists(key_of(grant["url"]))  # nothing passed through the service
        assert db.execute("SELECT status FROM files.uploads WHERE upload_id = %s",
                          (grant["upload_id"],)).fetchone() == {"status": "sent"}
        put = requests.put(target, data=data, headers=headers, timeout=10)
        assert put.status_code == 200, put.text
        assert bucket.open_read(key_of(grant["url"])).read() == data
        # Completed, the upload is the ingest's: S3 would overwrite it, so no more PUTs.
        Api(dsn).as_("customer", project_id=a).rpc("ingest_upload_complete",
                                                   upload_id=grant["upload_id"])
        late = svc.request("PUT", grant["url"], data, headers)
        assert (late.status, late.json()["error"]) == (409, "already_complete")
    assert accesses(db) == [("file.download", "served", None),
                            ("file.upload", "refused", "checksum_header"),
                            ("file.upload", "refused", "hash_mismatch"),
                            ("file.upload", "redirected", None),
                            ("file.upload", "refused", "already_complete")]


# ---------------------------------------------------------------------- secinf serve
def test_secinf_serve_sets_the_public_url_and_serves(db: Conn, dsn: str, tmp_path: Path
                                                     ) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SECINF_")},
           "SECINF_DSN": dsn, "SECINF_DATASETS_DIR": str(tmp_path / "objects")}
    a = make_project(db, "acme", "north")
    publish(db, LocalStorage(tmp_path / "objects"), a, {"train/events.parquet": b"z" * 99})
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli.main", "serve", "--port", str(port),
         "--public-url", f"http://127.0.0.1:{port}/", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        svc = Service("127.0.0.1", port)
        deadline = time.monotonic() + 30
        while True:
            try:
                health = svc.request("GET", "/healthz")
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "secinf serve did not start"
                time.sleep(0.2)
        assert (health.status, health.json()) == (200, {"status": "ok", "database": "ok"})
        base = db.execute("SELECT base_url FROM files.service").fetchone()
        assert base == {"base_url": f"http://127.0.0.1:{port}"}
        url = download_url(dsn, a, "train/events.parquet")
        assert url.startswith(f"http://127.0.0.1:{port}/files/org/")
        assert svc.request("GET", url).body == b"z" * 99
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0]
    assert "signed URLs now point at" in out


def test_secinf_serve_refuses_a_bad_public_url(secinf_env: str) -> None:
    from typer.testing import CliRunner

    from workers.cli.main import app

    got = CliRunner().invoke(app, ["serve", "--public-url", "ftp://x/?a"])
    assert isinstance(got.exception, UserError) and got.exception.exit_code == 2
    assert "is not an http(s) base URL" in str(got.exception)
