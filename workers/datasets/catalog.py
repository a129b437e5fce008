"""The recorded dataset versions: list them, show one, and verify one's files in storage
against its manifest and the database (`secinf datasets list|show|verify`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import psycopg

from workers import tenancy
from workers.datasets import storage
from workers.db.queries import query
from workers.errors import NotFound, UserError
from workers.storage import Storage, join

Conn = psycopg.Connection[Any]


def list_versions(conn: Conn, project: str | None = None, name: str | None = None
                  ) -> list[dict[str, Any]]:
    """Every version (newest first per dataset), optionally of one project and dataset."""
    project_id = tenancy.resolve_project(conn, project) if project else None
    return [dict(r) for r in conn.execute(query("datasets", "list_versions"),
                                          {"project_id": project_id, "name": name})]


def find_version(conn: Conn, version: str, project: str | None = None,
                 name: str | None = None) -> dict[str, Any]:
    """The one version named X.Y.Z or dataset@X.Y.Z (of the project, if given)."""
    project_id = tenancy.resolve_project(conn, project) if project else None
    rows = [dict(r) for r in conn.execute(query("datasets", "find_versions"), {
        "version": version, "project_id": project_id, "name": name})]
    if not rows:
        where = f" in project {project}" if project else ""
        raise NotFound(f"no dataset version {version!r}{where}; list them with "
                       "`secinf datasets list`")
    if len(rows) > 1:
        names = ", ".join(f"{r['project']} {r['name']}@{r['version']}" for r in rows)
        raise UserError(f"dataset version {version!r} is ambiguous ({names}): pass --project "
                        "and/or name it as dataset@X.Y.Z")
    return rows[0]


def show_version(conn: Conn, version: str, project: str | None = None,
                 name: str | None = None) -> dict[str, Any]:
    """A version with its files and quality reports."""
    row = find_version(conn, version, project, name)
    vid = {"version_id": row["version_id"]}
    row["files"] = [dict(r) for r in conn.execute(query("datasets", "version_files"), vid)]
    row["quality_reports"] = [dict(r) for r in conn.execute(
        query("datasets", "version_reports"), vid)]
    row["statistics"] = row.pop("manifest").get("statistics", {})
    return row


@dataclass
class Verification:
    project: str
    name: str
    version: str
    path: str                       # where the version is: a directory or an s3:// URL
    files: int
    problems: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "dataset": self.name, "version": self.version,
                "path": self.path, "files": self.files, "ok": self.ok,
                "problems": self.problems}


def _entries(rows: list[dict[str, Any]]) -> list[storage.FileEntry]:
    return [storage.FileEntry(str(r["path"]), str(r["kind"]), r["split"], r["rows"],
                              int(r["bytes"]), str(r["sha256"])) for r in rows]


def verify_version(conn: Conn, version: str, project: str | None = None,
                   name: str | None = None, store: Storage | None = None) -> Verification:
    """Re-check every file of a version: size and sha256 in storage against the database,
    the stored manifest against the database (bytes and content), and the manifest's file
    list against the database's. Problems name the file. Reads go through `store` (default
    the configured backend); versions recorded as an absolute directory are read there."""
    row = find_version(conn, version, project, name)
    backend, prefix = storage.located(str(row["storage_path"]), store)
    db_files = _entries([dict(r) for r in conn.execute(query("datasets", "version_files"),
                                                       {"version_id": row["version_id"]})])
    problems: list[dict[str, str]] = []
    out = Verification(row["project"], row["name"], row["version"], backend.describe(prefix),
                       len(db_files), problems)
    if not backend.list(prefix):
        problems.append({"path": out.path, "problem": "nothing is stored for the version"})
        return out
    manifest_key = join(prefix, storage.MANIFEST)
    if not backend.exists(manifest_key):
        problems.append({"path": storage.MANIFEST, "problem": "missing"})
    else:
        with backend.open_read(manifest_key) as fh:
            raw = fh.read()
        digest = hashlib.sha256(raw).hexdigest()
        if digest != row["manifest_sha256"]:
            problems.append({"path": storage.MANIFEST, "problem": (
                f"sha256 {digest[:12]}…, recorded {str(row['manifest_sha256'])[:12]}…")})
        try:
            on_disk = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append({"path": storage.MANIFEST, "problem": f"not JSON: {exc}"})
            on_disk = None
        if on_disk is not None:
            if on_disk != row["manifest"]:
                problems.append({"path": storage.MANIFEST,
                                 "problem": "content differs from the recorded manifest"})
            listed = {f["path"]: f for f in on_disk.get("files", [])}
            for e in db_files:
                m = listed.pop(e.path, None)
                if m is None:
                    problems.append({"path": e.path, "problem": "not in manifest.json"})
                elif (m.get("bytes"), m.get("sha256"), m.get("rows")) != (
                        e.bytes, e.sha256, e.rows):
                    problems.append({"path": e.path,
                                     "problem": "manifest.json and the database disagree"})
            problems += [{"path": p, "problem": "in manifest.json but not recorded"}
                         for p in sorted(listed)]
    problems += storage.check_files(backend, prefix, db_files)
    return out
