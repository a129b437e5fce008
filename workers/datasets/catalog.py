"""The recorded dataset versions: list them, show one, and verify one's files on disk
against its manifest and the database (`secinf datasets list|show|verify`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from workers import tenancy
from workers.datasets import storage
from workers.db.queries import query
from workers.errors import NotFound, UserError

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
    path: Path
    files: int
    problems: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "dataset": self.name, "version": self.version,
                "path": str(self.path), "files": self.files, "ok": self.ok,
                "problems": self.problems}


def _entries(rows: list[dict[str, Any]]) -> list[storage.FileEntry]:
    return [storage.FileEntry(str(r["path"]), str(r["kind"]), r["split"], r["rows"],
                              int(r["bytes"]), str(r["sha256"])) for r in rows]


def verify_version(conn: Conn, version: str, project: str | None = None,
                   name: str | None = None) -> Verification:
    """Re-check every file of a version: size and sha256 on disk against the database, the
    manifest on disk against the database (bytes and content), and the manifest's file list
    against the database's. Problems name the file."""
    row = find_version(conn, version, project, name)
    base = Path(row["storage_path"])
    db_files = _entries([dict(r) for r in conn.execute(query("datasets", "version_files"),
                                                       {"version_id": row["version_id"]})])
    problems: list[dict[str, str]] = []
    out = Verification(row["project"], row["name"], row["version"], base, len(db_files),
                       problems)
    if not base.is_dir():
        problems.append({"path": str(base), "problem": "the version's directory is missing"})
        return out
    manifest_path = base / storage.MANIFEST
    if not manifest_path.is_file():
        problems.append({"path": storage.MANIFEST, "problem": "missing"})
    else:
        digest = storage.sha256_file(manifest_path)
        if digest != row["manifest_sha256"]:
            problems.append({"path": storage.MANIFEST, "problem": (
                f"sha256 {digest[:12]}…, recorded {str(row['manifest_sha256'])[:12]}…")})
        try:
            on_disk = json.loads(manifest_path.read_text(encoding="utf-8"))
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
    problems += storage.check_files(base, db_files)
    return out
