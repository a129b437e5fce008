"""A dataset version with its files really in storage, its rows written as `secinf export`
writes them (datasets.versions, datasets.files, a quality report) and a manifest.json that
lists every file with bytes and sha256: what api.dataset_download signs and the file
service serves, in a fraction of the time a real export takes."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import psycopg

from workers.storage import Storage

Conn = psycopg.Connection[dict[str, Any]]

FILES = {
    "train/events.parquet": b"train events " * 300,
    "train/features.parquet": b"train features " * 500,
    "val/events.parquet": b"val events " * 40,
    "test/events.parquet": b"test events " * 60,
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_prefix(db: Conn, project: str, version: str, name: str = "events") -> str:
    row = db.execute("SELECT org_id FROM core.projects WHERE project_id = %s",
                     (project,)).fetchone()
    assert row is not None
    return f"org/{row['org_id']}/project/{project}/datasets/{name}/{version}"


def store_version(db: Conn, store: Storage, project: str, version: str = "1.0.0", *,
                  files: dict[str, bytes] | None = None, status: str = "published",
                  manifest_files: list[dict[str, Any]] | None = None,
                  storage_path: str | None = None, events: int = 12,
                  like: dict[str, Any] | None = None) -> str:
    """A version of dataset `events` (status published, draft or blocked) whose files and
    manifest are stored under its key; its key prefix. `manifest_files` replaces the
    manifest's list of files (to make it disagree with the rows); `storage_path` is
    recorded instead of the key (a version exported before keys existed); `like`, a
    datasets.versions row, lends its schema_version, ontology and manifest statistics (so
    the next export's gates compare with it as with a real one)."""
    files = FILES if files is None else files
    prefix = version_prefix(db, project, version)
    entries = [{"path": p, "kind": p.split("/")[1].split(".")[0], "split": p.split("/")[0],
                "rows": 3, "bytes": len(d), "sha256": sha256(d)} for p, d in files.items()]
    doc: dict[str, Any] = {"name": "events", "version": version,
                           "files": entries if manifest_files is None else manifest_files}
    if like is not None:
        doc["statistics"] = like["manifest"].get("statistics", {})
    manifest = json.dumps(doc, sort_keys=True).encode()
    for path, data in {**files, "manifest.json": manifest}.items():
        store.put_stream(f"{prefix}/{path}", io.BytesIO(data), len(data))
    row = db.execute(
        "INSERT INTO datasets.versions (project_id, version, schema_version, split_seed,"
        " train_ratio, val_ratio, test_ratio, context_s, storage_path, data_card, manifest,"
        " manifest_sha256, events) VALUES (%s, %s, 1, 0, 0.7, 0.15, 0.15, 2, %s, '# card',"
        " %s, %s, %s) RETURNING version_id",
        (project, version, storage_path or prefix, manifest.decode(), sha256(manifest),
         events)).fetchone()
    assert row is not None
    if like is not None:
        db.execute("UPDATE datasets.versions SET schema_version = %s, ontology_name = %s,"
                   " ontology_version = %s WHERE version_id = %s",
                   (like["schema_version"], like["ontology_name"], like["ontology_version"],
                    row["version_id"]))
    for e in entries:
        db.execute("INSERT INTO datasets.files (project_id, version_id, path, kind, split, rows,"
                   " bytes, sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                   (project, row["version_id"], e["path"], e["kind"], e["split"], e["rows"],
                    e["bytes"], e["sha256"]))
    passed = status != "blocked"
    db.execute("INSERT INTO datasets.quality_reports (project_id, version_id, gate, passed,"
               " summary) VALUES (%s, %s, 'schema', %s, 'ok')",
               (project, row["version_id"], passed))
    if status != "draft":
        db.execute("UPDATE datasets.versions SET status = %s WHERE version_id = %s",
                   (status, row["version_id"]))
    db.commit()
    return prefix


def set_base_url(db: Conn, url: str) -> None:
    db.execute("UPDATE files.service SET base_url = %s", (url,))
    db.commit()


def base_url(db: Conn) -> str:
    row = db.execute("SELECT base_url FROM files.service").fetchone()
    assert row is not None
    return str(row["base_url"])


def dead_url() -> str:
    """A loopback URL nothing answers at (a port just freed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
