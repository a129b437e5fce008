"""The delivery half of `secinf demo`: verified events, analytics, a dataset version, one
query through the API the way PostgREST runs it, and one split downloaded by signed URL.

Auto-accept (events.promote) turns the demo's confidently scored candidates into events;
the analytics views are refreshed; a dataset version is published (or, when nothing
changed since the last published one, that version is reported again); a customer's API
key is exchanged for claims and `api.query_events` runs as that customer; as the same
customer, `api.dataset_download` signs the train split's URLs, and every file is fetched
over HTTP from the file service (started here for the download when none answers) and
checked against its published bytes and sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workers.appdb.session import AppDB, Identity
from workers.datasets import GateConfig, catalog
from workers.datasets.export import ExportRequest, export
from workers.db.queries import fetch_all, fetch_one, query
from workers.errors import SecinfError
from workers.files import local_serve
from workers.files.download import ChecksumMismatch, DownloadFailed, download_verified
from workers.review import settings as review_settings
from workers.settings import Settings

CURL_EXAMPLE = (
    "curl -s -X POST localhost:3000/rpc/exchange_key -H 'Content-Type: application/json' "
    "-d '{{\"api_key\": \"{key}\"}}'   # → token\n"
    "  curl -s 'localhost:3000/rpc/query_events?p_limit=5' -H \"Authorization: Bearer $TOKEN\""
    "   (PostgREST: docker/README.md)")


DEMO_AUTO_ACCEPT_MODEL = "0.8"
"""The demo's small model (trained in a minute on first run) is less confident than a full
`secinf train` model, so the demo project auto-accepts from 0.8 instead of the default
0.95; what stays below goes to the review queue."""


def verify_events(conn: Any, ref: str, project_id: str) -> list[dict[str, Any]]:
    """Auto-accept above the project's thresholds (idempotent); events per type and source."""
    review_settings.update(conn, ref, auto_accept_model=DEMO_AUTO_ACCEPT_MODEL)
    with conn.transaction():  # review_settings.update committed: a transaction of its own
        fetch_one(conn, "demo", "promote", {"project_id": project_id})
    return [dict(r) for r in fetch_all(conn, "demo", "events_by_source",
                                       {"project_id": project_id})]


def refresh_analytics(conn: Any) -> float:
    """Refresh every analytics view now (the cron job does it every 5 minutes); ms taken."""
    with conn.transaction():
        rows = fetch_all(conn, "analytics", "refresh", {"concurrently": False})
    return float(sum(float(r["ms"]) for r in rows))


def publish_dataset(conn: Any, ref: str, project_id: str) -> dict[str, Any]:
    """Publish the next dataset version, unless the newest published one already holds
    exactly the project's current verified events (then that one is reported again).

    The demo scene is one source of a few minutes, so the gates are relaxed to what one
    scene can meet (one example per type, any class share); `secinf export` keeps the
    defaults (docs/datasets.md)."""
    # A second `make demo` publishes nothing when the events did not change.
    with conn.transaction():
        state = fetch_one(conn, "demo", "events_state", {"project_id": project_id})
    if not state or state["events"] == 0:
        return {"version": None, "status": "skipped", "unchanged": True, "events": 0,
                "failed_gates": [], "files": [], "bytes": None, "path": None}
    published = [v for v in catalog.list_versions(conn, ref) if v["status"] == "published"]
    conn.commit()
    if published:
        newest = published[0]
        if (state["changed_at"] <= newest["published_at"]
                and state["events"] == newest["events"]
                and _downloadable(conn, project_id, newest)):
            return {"version": newest["version"], "dataset": newest["name"],
                    "status": "published", "unchanged": True, "events": newest["events"],
                    "failed_gates": [], "files": [], "bytes": None, "path": None}
    gates = GateConfig(min_per_type=1, max_class_share=1.0)
    result = export(conn, ExportRequest(project=ref, gates=gates))
    return result.as_dict() | {"unchanged": False}


def _downloadable(conn: Any, project_id: str, version: dict[str, Any]) -> bool:
    """Whether api.dataset_download can sign the version's files (a version exported
    before storage keys existed cannot: the demo then publishes a new one)."""
    with conn.transaction():
        row = fetch_one(conn, "demo", "version_downloadable",
                        {"project_id": project_id, "name": version["name"],
                         "version": version["version"]})
    return bool(row and row["downloadable"])


def api_sample(db: AppDB, customer_key: str) -> list[dict[str, Any]]:
    """`api.query_events` as the customer whose key this is (PostgREST's request model)."""
    ident = db.sign_in_key(customer_key)
    rows = db.request(ident.role, ident.claims, query("demo", "api_events"),
                      path="/rpc/query_events")
    return [dict(r) for r in rows]


DOWNLOAD_SPLIT = "train"
DEMO_GATES = "--min-per-type 1 --max-class-share 1"
"""publish_dataset's gates as `secinf export` options."""


def download_split(db: AppDB, customer_key: str, dataset: dict[str, Any], ref: str,
                   dest: Path, settings: Settings | None = None,
                   split: str = DOWNLOAD_SPLIT) -> dict[str, Any]:
    """The split of the published version, as the customer whose key this is: its signed
    URLs from `api.dataset_download` (PostgREST's request model), every file fetched over
    HTTP into dest/<dataset>@<version> and verified (bytes and sha256 as published, and as
    manifest.json lists them). The file service is the one at files.service.base_url, or
    one started for the download (workers/files/local_serve.py). Raises DownloadFailed
    (ChecksumMismatch for a file that is not the published one) with what failed and the
    fix. When `dataset` (publish_dataset's answer) is not published (blocked by a gate),
    the newest version the customer may download is; when there is none, nothing is."""
    ident = db.sign_in_key(customer_key)
    label = _downloadable_label(db, ident, dataset)
    if label is None:
        return {"status": "skipped", "split": split}
    what = f"downloading the {split} split of dataset {label}"
    with local_serve.file_service(settings) as service:
        try:
            rows = db.request(ident.role, ident.claims, query("app_datasets", "dataset_download"),
                              {"version": label, "split": split}, path="/rpc/dataset_download")
        except SecinfError as exc:
            raise DownloadFailed(f"{what}: api.dataset_download as the demo customer was "
                                 f"refused: {exc}") from exc
        try:
            got = download_verified(rows, dest / label)
        except ChecksumMismatch as exc:
            raise ChecksumMismatch(
                f"{what}: {exc}. `secinf datasets verify {label} -p {ref}` lists every "
                "damaged file; restore them from a backup, or publish a new version with "
                f"`secinf export -p {ref} {DEMO_GATES}`") from exc
        except DownloadFailed as exc:
            raise DownloadFailed(f"{what}: {exc}") from exc
    return {"status": "verified", "version": label, "split": split,
            "instead_of": None if label.endswith(f"@{dataset.get('version')}")
            else dataset.get("version"),
            "files": len(got.data_files), "bytes": got.bytes, "dest": str(dest / label),
            "service": "started" if service.started else "running",
            "base_url": service.base_url,
            "expires_at": min((r["expires_at"] for r in rows), default=None)}


def _downloadable_label(db: AppDB, ident: Identity, dataset: dict[str, Any]) -> str | None:
    """dataset@X.Y.Z to download: the version just published or reported again, else the
    newest published version the customer sees (api.datasets)."""
    if dataset.get("status") == "published" and dataset.get("version"):
        return f"{dataset.get('dataset') or 'events'}@{dataset['version']}"
    rows = db.request(ident.role, ident.claims, query("app_datasets", "dataset_versions"),
                      path="/datasets")
    name = dataset.get("dataset") or "events"
    newest = next((r for r in rows if r["status"] == "published" and r["name"] == name), None)
    return f"{newest['name']}@{newest['version']}" if newest else None
