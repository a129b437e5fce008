"""The Datasets page: the project's dataset versions and, for a published one and a split,
the signed download links of api.dataset_download; first as pure shaping of rows, then as
the people who use it (AppTest), with the links fetched over real HTTP from the file
service (workers/files/local_serve.py) and a role the grant leaves out shown a message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from applib import datasets_view as dv

from tests.app.conftest import app_test
from tests.support.factories import make_key
from tests.support.stored_dataset import (
    FILES,
    dead_url,
    set_base_url,
    sha256,
    store_version,
    version_prefix,
)
from workers.appdb import AppDB, Identity
from workers.files import local_serve
from workers.files.download import fetch
from workers.settings import load_settings
from workers.storage import LocalStorage

Conn = psycopg.Connection[dict[str, Any]]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LINK = re.compile(r"\[download\]\((http[^)\s]+)\)")


# ---------------------------------------------------------------- pure shaping
def _version(version: str, status: str = "published", **kw: Any) -> dict[str, Any]:
    return {"name": "events", "version": version, "status": status, "events": 12,
            "files": 4, "bytes": 1_234_567, "failed_gates": [],
            "published_at": T0 if status == "published" else None, **kw}


def test_versions_table_and_the_published_choices() -> None:
    rows = [_version("1.2.0"), _version("1.1.0", "blocked", failed_gates=["balance", "drift"]),
            _version("1.0.0", bytes=512)]
    frame = dv.versions_frame(rows)
    assert list(frame.columns) == dv.VERSION_COLUMNS
    blocked = frame.to_dict("records")[1]
    assert pd.isna(blocked.pop("published_at"))
    assert blocked == {"version": "events@1.1.0", "status": "blocked", "events": 12,
                       "files": 4, "size": "1.2 MB", "failed gates": "balance, drift"}
    assert frame["published_at"].iloc[0] == datetime(2026, 3, 1, 12, 0)  # UTC, no tzinfo
    assert list(frame["size"]) == ["1.2 MB", "1.2 MB", "512 B"]
    assert dv.published(rows) == ["events@1.2.0", "events@1.0.0"]
    assert dv.published([_version("1.0.0", "draft")]) == []
    assert [dv.size_text(n) for n in (None, 0, 999, 1000, 2_500_000_000)] == [
        "—", "0 B", "999 B", "1.0 kB", "2.5 GB"]
    assert [dv.split_param(s) for s in dv.SPLITS] == ["train", "val", "test", None]
    with pytest.raises(ValueError, match="use one of train, val, test, every file"):
        dv.split_param("holdout")


def test_links_are_a_table_of_download_links_with_their_expiry() -> None:
    until = T0 + timedelta(minutes=15)
    links: list[dict[str, Any]] = [
        {"path": "manifest.json", "kind": "manifest", "split": None, "rows": None,
         "bytes": None, "sha256": "a" * 64, "url": "http://f/files/k/manifest.json?s=1",
         "expires_at": until},
        {"path": "train/events.parquet", "kind": "events", "split": "train", "rows": 1234,
         "bytes": 4096, "sha256": "b" * 64, "url": "http://f/files/k/train/events.parquet?s=2",
         "expires_at": until}]
    table = dv.links_markdown(links).splitlines()
    assert table[0] == "| file | split | rows | size | sha256 | |"
    assert table[2] == (f"| `manifest.json` | — | — | — | `{'a' * 64}` | "
                        "[download](http://f/files/k/manifest.json?s=1) |")
    assert table[3] == (f"| `train/events.parquet` | train | 1,234 | 4.1 kB | `{'b' * 64}` | "
                        "[download](http://f/files/k/train/events.parquet?s=2) |")
    assert dv.total_bytes(links) == 4096
    assert dv.expiry_text(links, now=T0) == ("The links expire at 2026-03-01 12:15:00 UTC "
                                             "(in 15 min).")
    assert not dv.expired(links, now=T0)
    assert dv.expired(links, now=T0 + timedelta(minutes=14, seconds=45))
    assert dv.expired([]) and dv.expiry_text([]) == "These links carry no expiry."


# ---------------------------------------------------------------- as the people
@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secinf_env: str) -> LocalStorage:
    """The configured storage (SECINF_DATASETS_DIR), read by the file service."""
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path / "datasets"))
    return LocalStorage(tmp_path / "datasets")


@pytest.fixture
def service(db: Conn, store: LocalStorage) -> Iterator[str]:
    """The file service for the test, started by the demo's helper (nothing answers at
    base_url first): the page's links name it."""
    set_base_url(db, dead_url())
    with local_serve.file_service(load_settings()) as svc:
        assert svc.started
        yield svc.base_url


def _who(app_db: AppDB, db: Conn, project: str, role: str) -> Identity:
    return app_db.sign_in_key(str(make_key(db, project, role)["api_key"]))


def _links(at: Any) -> list[str]:
    return [u for m in at.markdown for u in LINK.findall(m.value)]


@pytest.mark.db
def test_the_page_lists_versions_and_links_that_download_the_published_files(
        app_db: AppDB, db: Conn, project: str, store: LocalStorage, service: str) -> None:
    for version, status in (("1.0.0", "published"), ("1.1.0", "blocked"),
                            ("1.2.0", "published")):
        store_version(db, store, project, version, status=status)
    customer = _who(app_db, db, project, "customer")
    at = app_test("pages/7_Datasets.py", customer).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Datasets"
    [versions] = [d.value for d in at.dataframe]
    assert list(versions["version"]) == ["events@1.2.0", "events@1.1.0", "events@1.0.0"]
    assert list(versions["status"]) == ["published", "blocked", "published"]
    assert list(at.selectbox(key="d_version").options) == ["events@1.2.0", "events@1.0.0"]
    assert at.selectbox(key="d_split").value == "train"
    assert at.subheader[0].value == "Download · events@1.2.0 · train"

    # Every link is a signed URL of the service that serves exactly the published bytes.
    prefix = version_prefix(db, project, "1.2.0")
    urls = _links(at)
    assert [u.split("?")[0] for u in urls] == [
        f"{service}/files/{prefix}/{p}" for p in
        ("manifest.json", "train/events.parquet", "train/features.parquet")]
    for url in urls[1:]:
        path = url.split("?")[0].split(f"{prefix}/")[1]
        assert fetch(url, path) == (len(FILES[path]), sha256(FILES[path]))
    table = next(m.value for m in at.markdown if "[download](" in m.value)
    assert f"`{sha256(FILES['train/events.parquet'])}`" in table
    [summary] = [m.value for m in at.markdown if m.value.startswith("**2 file(s)**")]
    assert "The links expire at " in summary and "(in 15 min)" in summary

    at.selectbox(key="d_split").set_value("every file").run()
    assert not at.exception and not at.error
    assert len(_links(at)) == len(FILES) + 1
    at.selectbox(key="d_version").set_value("events@1.0.0")
    at.selectbox(key="d_split").set_value("val").run()
    old = version_prefix(db, project, "1.0.0")
    assert [u.split("?")[0] for u in _links(at)] == [
        f"{service}/files/{old}/manifest.json", f"{service}/files/{old}/val/events.parquet"]
    # Issued as the customer (audited), once per version and split, not per rerun.
    issued = db.execute("SELECT target, details ->> 'split' AS split FROM audit.log"
                        " WHERE action = 'file.url' ORDER BY audit_id").fetchall()
    assert [(r["target"], r["split"]) for r in issued] == [
        ("events@1.2.0", "train"), ("events@1.2.0", None), ("events@1.0.0", "val")]


@pytest.mark.db
def test_a_role_without_the_grant_gets_a_message_not_links(
        app_db: AppDB, db: Conn, project: str, store: LocalStorage) -> None:
    store_version(db, store, project)
    db.execute("REVOKE EXECUTE ON FUNCTION api.dataset_download(text, text) FROM analyst")
    db.commit()
    analyst = _who(app_db, db, project, "analyst")
    at = app_test("pages/7_Datasets.py", analyst).run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == [dv.not_for_role("analyst")]
    assert not at.dataframe and not _links(at)
    # Whoever keeps the grant still gets the links.
    reviewer = _who(app_db, db, project, "reviewer")
    at = app_test("pages/7_Datasets.py", reviewer).run()
    assert not at.exception and not at.error and len(_links(at)) == 3


@pytest.mark.db
def test_no_version_no_published_version_and_a_refused_version_say_why(
        app_db: AppDB, db: Conn, project: str, other_project: str,
        store: LocalStorage) -> None:
    store_version(db, store, other_project, "2.0.0", status="blocked")
    # acme/north sees none of globex/south's versions.
    at = app_test("pages/7_Datasets.py", _who(app_db, db, project, "customer")).run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == [dv.NO_VERSIONS]
    at = app_test("pages/7_Datasets.py", _who(app_db, db, other_project, "customer")).run()
    assert [i.value for i in at.info] == [dv.NO_PUBLISHED]
    assert list(at.dataframe[0].value["failed gates"]) == ["schema"]
    # A version exported before storage keys existed is listed, and refused with the fix.
    store_version(db, store, project, "1.0.0",
                  storage_path=f"/var/lib/secinf/datasets/{project}/events/1.0.0")
    at = app_test("pages/7_Datasets.py", _who(app_db, db, project, "customer")).run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith("No download links for events@1.0.0: dataset version "
                            "events@1.0.0 was exported before downloads existed")
    assert "secinf export" in error
