"""Files of a dataset version on the storage root: where they go, how they are written and
checksummed, and how they are checked again.

    <root>/<project_id>/<dataset>/<version>/
        manifest.json                  every other file with rows, bytes and sha256
        quality_report.json            the gates' results
        {train,val,test}/events.parquet
        {train,val,test}/features.parquet
        card/README.md, card/*.png     the data card and its plots

A version is written into a hidden staging directory beside its final place and renamed
into place in one step, so a reader never sees half a version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
CHUNK = 1 << 20


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


def version_dir(root: Path, project_id: str, name: str, version: str) -> Path:
    return root / project_id / name / version


def staging_dir(final: Path) -> Path:
    return final.parent / f".{final.name}.staging-{uuid.uuid4().hex[:12]}"


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


def move_into_place(staging: Path, final: Path) -> None:
    """Rename the staging directory to the version's directory, replacing a leftover one
    (a blocked version of the same number, or an export that crashed before recording)."""
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def check_files(base: Path, expected: Iterable[FileEntry]) -> list[dict[str, str]]:
    """Problems of the files under `base` against the expected entries: missing, size or
    sha256 differs, or a file nobody listed. Empty when every byte is as recorded."""
    problems: list[dict[str, str]] = []
    listed = set()
    for e in expected:
        listed.add(e.path)
        path = base / e.path
        if not path.is_file():
            problems.append({"path": e.path, "problem": "missing"})
            continue
        size = path.stat().st_size
        if size != e.bytes:
            problems.append({"path": e.path,
                             "problem": f"size {size} bytes, recorded {e.bytes}"})
            continue
        digest = sha256_file(path)
        if digest != e.sha256:
            problems.append({"path": e.path, "problem": f"sha256 {digest[:12]}…, recorded "
                                                        f"{e.sha256[:12]}…"})
    if base.is_dir():
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.relative_to(base).as_posix()
            if rel != MANIFEST and rel not in listed:
                problems.append({"path": rel, "problem": "not listed in the manifest"})
    return problems
