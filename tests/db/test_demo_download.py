"""The demo's download step (workers/cli/demo_delivery.download_split): the train split of a
published version, signed by api.dataset_download as the demo customer (the PostgREST
request model), fetched over real HTTP and verified. Nothing answers at files.service's
base_url at first, so the step starts the file service itself (workers/files/local_serve.py)
and puts base_url back afterwards; a stored file that is not the published one fails it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.stored_dataset import (
    FILES,
    base_url,
    dead_url,
    set_base_url,
    sha256,
    store_version,
    version_prefix,
)
from tests.support.tenant_data import populate_pipeline
from workers import tenancy
from workers.appdb.session import AppDB
from workers.cli import demo_delivery as delivery
from workers.cli.demo_cmd import download_line
from workers.files import local_serve
from workers.files.app import create_app
from workers.files.download import ChecksumMismatch, DownloadFailed
from workers.files.service_db import ServiceDB
from workers.settings import load_settings
from workers.storage import LocalStorage

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
REF = "deliv/plaza"
PUBLISHED = {"status": "published", "dataset": "events", "version": "1.0.0"}
TRAIN = {p: d for p, d in FILES.items() if p.startswith("train/")}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStorage:
    """The configured storage (SECINF_DATASETS_DIR): the service started here reads it."""
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path / "datasets"))
    return LocalStorage(tmp_path / "datasets")


@pytest.fixture
def project(db: Conn, secinf_env: str) -> str:
    return str(tenancy.create_project(db, "deliv", "plaza")["project_id"])


@pytest.fixture
def nobody(db: Conn) -> str:
    """base_url names a loopback port nothing listens on (never a `secinf serve` on the
    default 8600 of the machine running the tests)."""
    url = dead_url()
    set_base_url(db, url)
    return url


@pytest.fixture
def customer_key(db: Conn, project: str) -> str:
    return str(tenancy.create_key(db, REF, "customer", "1d", "demo")["api_key"])


@pytest.fixture
def app_db(secinf_env: str) -> Iterator[AppDB]:
    pool = AppDB.from_settings()
    try:
        yield pool
    finally:
        pool.close()


def _key(db: Conn, project: str, path: str) -> str:
    return f"{version_prefix(db, project, '1.0.0')}/{path}"


def _downloads(db: Conn) -> list[tuple[str, str]]:
    """(file, result) of the service's download audit rows, oldest first."""
    rows = db.execute("SELECT target, details FROM audit.log WHERE action = 'file.download'"
                      " ORDER BY audit_id").fetchall()
    return [(r["target"].rsplit("/", 2)[-2] + "/" + r["target"].rsplit("/", 1)[-1],
             r["details"]["result"]) for r in rows]


def test_the_demo_starts_the_service_downloads_the_split_and_restores_base_url(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    store_version(db, store, project)
    got = delivery.download_split(app_db, customer_key, PUBLISHED, REF, tmp_path / "dl",
                                  load_settings())
    manifest = store.local_path(_key(db, project, "manifest.json")).read_bytes()
    assert (got["status"], got["version"], got["split"], got["files"]) == (
        "verified", "events@1.0.0", "train", 2)
    assert got["bytes"] == sum(len(d) for d in TRAIN.values()) + len(manifest)
    assert got["service"] == "started" and got["base_url"] != nobody
    assert got["instead_of"] is None
    assert got["base_url"].startswith("http://127.0.0.1:")
    # Kept under dest/<dataset>@<version>, byte for byte; no partial file left.
    kept = tmp_path / "dl" / "events@1.0.0"
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()) == [
        "manifest.json", "train/events.parquet", "train/features.parquet"]
    assert all((kept / p).read_bytes() == d for p, d in TRAIN.items())
    # Over HTTP through the service (each download audited), and base_url is back.
    assert _downloads(db) == [("1.0.0/manifest.json", "served"),
                              ("train/events.parquet", "served"),
                              ("train/features.parquet", "served")]
    assert base_url(db) == nobody
    issued = db.execute("SELECT actor, target, details FROM audit.log WHERE action ="
                        " 'file.url'").fetchall()
    assert [(r["target"], r["details"]["split"]) for r in issued] == [("events@1.0.0",
                                                                       "train")]
    assert issued[0]["actor"].startswith("key:")  # as the customer, not the admin
    line = download_line(got)
    assert line.startswith("downloaded train split of events@1.0.0: 2 files + manifest.json, ")
    assert "sha256 verified via signed URLs (file service started on http://127.0.0.1:" in line


def test_a_service_that_answers_at_base_url_is_used_and_base_url_left_alone(
        db: Conn, dsn: str, store: LocalStorage, project: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    store_version(db, store, project)
    with local_serve.serve_in_thread(create_app(store, ServiceDB(dsn, max_size=2))) as url:
        set_base_url(db, url)
        got = delivery.download_split(app_db, customer_key, PUBLISHED, REF, tmp_path,
                                      load_settings())
        assert (got["status"], got["service"], got["base_url"]) == ("verified", "running", url)
        assert base_url(db) == url
    assert "(file service at http://127.0.0.1:" in download_line(got)


def test_a_corrupted_stored_file_fails_the_download_with_the_fix(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    store_version(db, store, project)
    good = TRAIN["train/features.parquet"]
    bad = b"X" + good[1:]  # same size, one byte changed
    store.put_stream(_key(db, project, "train/features.parquet"), io.BytesIO(bad), len(bad))
    with pytest.raises(ChecksumMismatch) as err:
        delivery.download_split(app_db, customer_key, PUBLISHED, REF, tmp_path / "dl",
                                load_settings())
    assert str(err.value) == (
        "downloading the train split of dataset events@1.0.0: train/features.parquet: "
        f"downloaded {len(bad):,} bytes with sha256 {sha256(bad)}, but api.dataset_download "
        f"says {len(good):,} bytes with sha256 {sha256(good)}: the stored file is not the one "
        "that was published. `secinf datasets verify events@1.0.0 -p deliv/plaza` lists every "
        "damaged file; restore them from a backup, or publish a new version with "
        "`secinf export -p deliv/plaza --min-per-type 1 --max-class-share 1`")
    kept = tmp_path / "dl" / "events@1.0.0"
    assert not (kept / "train" / "features.parquet").exists()
    assert not list(kept.rglob("*.part"))
    assert base_url(db) == nobody  # restored after a failure too


def test_a_manifest_that_disagrees_with_the_rows_fails_the_download(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    listed = [{"path": "train/events.parquet", "bytes": 1, "sha256": "0" * 64},
              {"path": "train/features.parquet", "bytes": len(TRAIN["train/features.parquet"]),
               "sha256": sha256(TRAIN["train/features.parquet"])}]
    store_version(db, store, project, manifest_files=listed)
    with pytest.raises(ChecksumMismatch, match=r"train/events\.parquet: downloaded "
                       r"[\d,]+ bytes with sha256 [0-9a-f]{64}, but manifest\.json says 1 "
                       r"bytes with sha256 0{64}"):
        delivery.download_split(app_db, customer_key, PUBLISHED, REF, tmp_path,
                                load_settings())


def test_a_missing_file_names_the_services_refusal_and_the_storage_settings(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    store_version(db, store, project)
    store.local_path(_key(db, project, "train/events.parquet")).unlink()
    with pytest.raises(DownloadFailed) as err:
        delivery.download_split(app_db, customer_key, PUBLISHED, REF, tmp_path,
                                load_settings())
    message = str(err.value)
    assert not isinstance(err.value, ChecksumMismatch)
    assert message.startswith("downloading the train split of dataset events@1.0.0: "
                              "train/events.parquet: the file service at http://127.0.0.1:")
    assert "refused the download (HTTP 404 not_found: no object is stored under" in message
    assert "SECINF_DATASETS_DIR" in message
    assert base_url(db) == nobody


def test_a_version_the_api_refuses_names_the_call_and_its_hint(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    store_version(db, store, project, status="draft")
    with pytest.raises(DownloadFailed) as err:
        delivery.download_split(app_db, customer_key, PUBLISHED, REF, tmp_path,
                                load_settings())
    assert str(err.value) == (
        "downloading the train split of dataset events@1.0.0: api.dataset_download as the "
        "demo customer was refused: dataset version events@1.0.0 is draft: only published "
        "versions are downloadable (Publish it (secinf export) once its quality gates pass.)")
    assert base_url(db) == nobody


def test_a_blocked_new_version_downloads_the_newest_published_one(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    store_version(db, store, project, "1.0.0")
    store_version(db, store, project, "1.1.0", status="blocked")
    blocked = {"status": "blocked", "dataset": "events", "version": "1.1.0"}
    got = delivery.download_split(app_db, customer_key, blocked, REF, tmp_path,
                                  load_settings())
    assert (got["status"], got["version"], got["instead_of"]) == ("verified", "events@1.0.0",
                                                                  "1.1.0")
    assert download_line(got).startswith(
        "downloaded train split of events@1.0.0 (the newest published; 1.1.0 is blocked by a "
        "quality gate): 2 files + manifest.json, ")


def test_nothing_published_skips_the_download(app_db: AppDB, customer_key: str,
                                              tmp_path: Path) -> None:
    skipped = {"version": None, "status": "skipped"}  # no verified events: nothing exported
    got = delivery.download_split(app_db, customer_key, skipped, REF, tmp_path)
    assert got == {"status": "skipped", "split": "train"}
    assert download_line(got) == ("download: skipped — no published dataset version, nothing "
                                  "to fetch by signed URL")


@pytest.mark.slow
def test_a_real_export_downloads_and_an_old_layout_version_is_exported_again(
        db: Conn, store: LocalStorage, project: str, nobody: str, customer_key: str,
        app_db: AppDB, tmp_path: Path) -> None:
    """publish_dataset's real export (the demo's gates) downloads and verifies; a newest
    published version recorded in the layout before storage keys (api.dataset_download
    cannot sign it) makes the demo publish a new version instead of reporting it again."""
    populate_pipeline(db, project, "dl", tmp_path)
    db.execute("UPDATE candidates.candidates SET model_score = rule_score,"
               " model_version = 'test', status = 'scored' WHERE project_id = %s", (project,))
    db.commit()
    events = delivery.verify_events(db, REF, project)
    total = sum(r["events"] for r in events)
    first = delivery.publish_dataset(db, REF, project)
    got = delivery.download_split(app_db, customer_key, first, REF, tmp_path / "dl",
                                  load_settings())
    assert (got["status"], got["version"]) == ("verified", f"events@{first['version']}")
    train = [f for f in first["files"] if f["split"] == "train"]
    assert got["files"] == len(train) > 0
    kept = tmp_path / "dl" / got["version"]
    assert all(sha256((kept / f["path"]).read_bytes()) == f["sha256"] for f in train)

    like = db.execute("SELECT * FROM datasets.versions WHERE project_id = %s AND version = %s",
                      (project, first["version"])).fetchone()
    store_version(db, store, project, "9.0.0", events=total, like=like,
                  storage_path=f"/var/lib/secinf/datasets/{project}/events/9.0.0")
    again = delivery.publish_dataset(db, REF, project)
    assert (again["status"], again["unchanged"], again["version"]) == (
        "published", False, "9.1.0")
    got = delivery.download_split(app_db, customer_key, again, REF, tmp_path / "dl",
                                  load_settings())
    assert got["status"] == "verified" and base_url(db) == nobody
    assert delivery.publish_dataset(db, REF, project)["unchanged"]
