"""Files of a dataset version in storage (workers/storage): where they go, how they are
written and checksummed, and how they are checked again.

    org/{org_id}/project/{project_id}/datasets/{dataset}/{version}/   (the version's key)
        manifest.json                  every other file with rows, bytes and sha256
        quality_report.json            the gates' results
        {train,val,test}/events.parquet
        {train,val,test}/features.parquet
        card/README.md, card/*.png     the data card and its plots

A version is built in a local staging directory and then published into the backend, so
a reader never sees half a version: on the local backend the staging directory lies beside
the version's own and is renamed into place in one step; on S3 every file is uploaded and
manifest.json last. datasets.versions.storage_path records the key that was written.
Versions exported before keys existed recorded an absolute directory
(`<root>/<project_id>/<dataset>/<version>`); they are read where they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workers.storage import (
    CHUNK,
    LocalStorage,
    Storage,
    dataset_version_key,
    join,
    storage_from_settings,
)

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileEntry:
    """One file of a version as the manifest and datasets.files list it."""

    path: str
    kind: str           # events | features | card | plot | report
    split: str | None
    rows: int | None
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_key(org_id: str, project_id: str, name: str, version: str) -> str:
    """The storage key of a version: org/{org}/project/{project}/datasets/{name}/{version}."""
    return dataset_version_key(org_id, project_id, name, version)


def located(storage_path: str, store: Storage | None = None) -> tuple[Storage, str]:
    """(backend, prefix) of a recorded storage_path: an absolute directory (the layout
    before keys) is read in place; a key is read from `store` (default: the settings')."""
    if PurePosixPath(storage_path).is_absolute():
        return LocalStorage(Path(storage_path)), ""
    return (store or storage_from_settings()), storage_path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def entry(base: Path, rel: str, kind: str, split: str | None = None,
          rows: int | None = None) -> FileEntry:
    path = base / rel
    return FileEntry(rel, kind, split, rows, path.stat().st_size, sha256_file(path))


def write_parquet(base: Path, rel: str, table: pa.Table) -> Path:
    """Write a table (zstd, statistics on) and return its path."""
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical text of manifest.json: sorted keys, two-space indent, final newline."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_json(base: Path, rel: str, data: Any) -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest_bytes(data))
    return path


def publish(store: Storage, staging: Path, key: str) -> None:
    """Publish the staging directory as the version under key (replacing a leftover of a
    blocked version or a crashed export), manifest.json last."""
    store.publish_dir(staging, key, last=(MANIFEST,))


def check_files(store: Storage, prefix: str, expected: Iterable[FileEntry]
                ) -> list[dict[str, str]]:
    """Problems of the objects under `prefix` against the expected entries: missing, size
    or sha256 differs, or an object nobody listed. Empty when every byte is as recorded."""
    problems: list[dict[str, str]] = []
    listed = set()
    for e in expected:
        listed.add(e.path)
        key = join(prefix, e.path)
        if not store.exists(key):
            problems.append({"path": e.path, "problem": "missing"})
            continue
        size = store.size(key)
        if size != e.bytes:
            problems.append({"path": e.path,
                             "problem": f"size {size} bytes, recorded {e.bytes}"})
            continue
        digest = store.sha256(key)
        if digest != e.sha256:
            problems.append({"path": e.path, "problem": f"sha256 {digest[:12]}…, recorded "
                                                        f"{e.sha256[:12]}…"})
    cut = len(prefix) + 1 if prefix else 0
    for key in store.list(prefix):
        rel = key[cut:]
        if rel != MANIFEST and rel not in listed:
            problems.append({"path": rel, "problem": "not listed in the manifest"})
    return problems
