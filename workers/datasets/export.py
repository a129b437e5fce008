"""`secinf export`: build a dataset version of a project's verified events, check the
quality gates, and publish it (or record it as blocked, with the report naming the gates).

Reads happen in one REPEATABLE READ snapshot; files are written to a local staging
directory and published into the storage backend (workers/storage: a rename on the local
tree, uploads with manifest.json last on S3) just before the database rows commit. One
export per dataset at a time (advisory lock).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import IsolationLevel
from psycopg.types.json import Jsonb

from workers import tenancy
from workers.datasets import card, splits, storage
from workers.datasets.collect import Collected, OntologyRef, active_ontology, collect, events_table
from workers.datasets.gates import GateConfig, GateInputs, GateResult, WrittenTable, run_gates
from workers.datasets.schema import SCHEMA_VERSION, SPLITS, TABLES, describe, table_path
from workers.datasets.semver import Bump, next_version
from workers.datasets.stats import summarise
from workers.db.locks import advisory_lock
from workers.db.queries import query
from workers.errors import UserError
from workers.storage import LocalStorage, Storage, storage_from_settings

Conn = psycopg.Connection[Any]
Progress = Callable[[str], None]
DATASET_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
STEPS = ("resolving the version", "reading events and features", "writing Parquet",
         "checking quality gates", "writing the data card and manifest", "recording")


@dataclass(frozen=True)
class ExportRequest:
    project: str
    name: str = "events"
    version: str | None = None
    bump: Bump = "minor"
    seed: int = 0
    ratios: splits.Ratios = splits.DEFAULT_RATIOS
    context_s: float = 2.0
    gates: GateConfig = field(default_factory=GateConfig)
    storage_root: Path | None = None
    """A local root to write to (the CLI's --storage) instead of the configured backend."""
    storage: Storage | None = None
    """A backend to write to (wins over storage_root); default storage_from_settings()."""


@dataclass
class ExportResult:
    project_id: str
    project: str
    name: str
    version: str
    status: str                     # published | blocked
    key: str                        # the storage key written (datasets.versions.storage_path)
    location: str                   # where that is, for people: a directory or an s3:// URL
    local_dir: Path | None          # the version's directory on the local backend
    previous_version: str | None
    statistics: dict[str, Any]
    files: list[storage.FileEntry]
    gates: list[GateResult]
    manifest_sha256: str
    seconds: float

    @property
    def path(self) -> Path:
        """The version's directory (local backend only)."""
        if self.local_dir is None:
            raise UserError(f"dataset {self.name}@{self.version} is stored at "
                            f"{self.location}, not in a local directory")
        return self.local_dir

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {"project_id": self.project_id, "project": self.project, "dataset": self.name,
                "version": self.version, "status": self.status, "key": self.key,
                "path": self.location,
                "previous_version": self.previous_version,
                "events": self.statistics["events"], "by_split": self.statistics["by_split"],
                "by_type": self.statistics["by_type"], "bytes": self.bytes,
                "files": [f.as_dict() for f in self.files],
                "gates": [g.as_dict() for g in self.gates],
                "failed_gates": [g.gate for g in self.failed],
                "manifest_sha256": self.manifest_sha256, "seconds": round(self.seconds, 3)}


def _project_label(conn: Conn, project_id: str) -> tuple[str, str]:
    """(org/project label, org_id) of the project."""
    row = conn.execute(query("datasets", "project_label"), {"project_id": project_id}
                       ).fetchone()
    if row is None:
        raise UserError(f"project {project_id} does not exist")
    return str(row["label"]), str(row["org_id"])


def _plan_version(conn: Conn, project_id: str, req: ExportRequest
                  ) -> tuple[str, dict[str, Any] | None, OntologyRef | None]:
    """(version to write, previous published row or None, active ontology)."""
    prev = conn.execute(query("datasets", "latest_published"),
                        {"project_id": project_id, "name": req.name}).fetchone()
    onto = active_ontology(conn, project_id)
    why = ""
    if prev is not None:
        if int(prev["schema_version"]) != SCHEMA_VERSION:
            why = f"the file schema changed (v{prev['schema_version']} → v{SCHEMA_VERSION})"
        elif onto is not None and (prev["ontology_name"], prev["ontology_version"]) != (
                onto.name, onto.version):
            why = (f"the ontology changed ({prev['ontology_name']} v{prev['ontology_version']}"
                   f" → {onto.name} v{onto.version})")
    version = next_version(prev["version"] if prev else None, breaking=bool(why),
                           bump=req.bump, requested=req.version, why=why)
    existing = conn.execute(query("datasets", "version_status"),
                            {"project_id": project_id, "name": req.name, "version": version}
                            ).fetchone()
    if existing is not None and existing["status"] == "published":
        raise UserError(f"dataset {req.name}@{version} is already published and immutable: "
                        "export a newer version")
    return version, dict(prev) if prev else None, onto


def _write_tables(base: Path, events: pa.Table, features: pa.Table
                  ) -> tuple[list[storage.FileEntry], list[WrittenTable]]:
    entries, written = [], []
    event_split = dict(zip(events.column("event_id").to_pylist(),
                           events.column("split").to_pylist(), strict=True))
    for split in SPLITS:
        ids = pa.array([i for i, s in event_split.items() if s == split], pa.int64())
        parts = {"events": events.filter(pc.equal(events.column("split"), split)),
                 "features": features.filter(pc.is_in(features.column("event_id"), ids))}
        for table, data in parts.items():
            rel = table_path(split, table)
            path = storage.write_parquet(base, rel, data)
            entries.append(storage.entry(base, rel, table, split, data.num_rows))
            written.append(WrittenTable(path, table, data.num_rows))
    return entries, written


def _model_metrics(conn: Conn, version: str | None) -> dict[str, Any] | None:
    if version is None:
        return None
    row = conn.execute(query("datasets", "model_metrics"), {"version": version}).fetchone()
    return dict(row["metrics"] or {}) if row else None


def _record(conn: Conn, project_id: str, req: ExportRequest, version: str, storage_key: str,
            manifest: dict[str, Any], manifest_sha: str, card_text: str, data: Collected,
            entries: list[storage.FileEntry], results: list[GateResult]) -> str:
    """Insert the draft, its files and reports, then move it to published or blocked."""
    key = {"project_id": project_id, "name": req.name, "version": version}
    conn.execute(query("datasets", "delete_unpublished"), key)
    row = conn.execute(query("datasets", "insert_version"), {
        **key, "schema_version": SCHEMA_VERSION, "split_seed": req.seed,
        "train_ratio": req.ratios[0], "val_ratio": req.ratios[1], "test_ratio": req.ratios[2],
        "context_s": req.context_s,
        "ontology_name": data.ontology.name if data.ontology else None,
        "ontology_version": data.ontology.version if data.ontology else None,
        "ontology_sha256": data.ontology.sha256 if data.ontology else None,
        "model_version": data.model_version, "events": len(data.events),
        "manifest": Jsonb(manifest), "manifest_sha256": manifest_sha, "data_card": card_text,
        "storage_path": storage_key}).fetchone()
    assert row is not None
    version_id = row["version_id"]
    for e in entries:
        conn.execute(query("datasets", "insert_file"), {
            "project_id": project_id, "version_id": version_id, **e.as_dict()})
    # The tracks the version holds (its events' actors), so an erasure finds it exactly.
    conn.execute(query("datasets", "insert_version_tracks"), {
        "project_id": project_id, "version_id": version_id,
        "event_ids": [int(e["event_id"]) for e in data.events]})
    for g in results:
        conn.execute(query("datasets", "insert_report"), {
            "project_id": project_id, "version_id": version_id, "gate": g.gate,
            "passed": g.passed, "summary": g.summary, "details": Jsonb(g.details)})
    status = "published" if all(g.passed for g in results) else "blocked"
    conn.execute(query("datasets", "set_status"),
                 {"status": status, "by": None, "version_id": version_id})
    return status


@dataclass(frozen=True)
class Snapshot:
    """What the export read, in one REPEATABLE READ transaction."""

    version: str
    prev: dict[str, Any] | None
    data: Collected
    metrics: dict[str, Any] | None


@dataclass(frozen=True)
class Built:
    """The version's files in the staging directory, checked by the gates."""

    status: str
    entries: list[storage.FileEntry]
    statistics: dict[str, Any]
    results: list[GateResult]
    card_text: str
    manifest: dict[str, Any]
    manifest_sha: str


def export(conn: Conn, req: ExportRequest, progress: Progress | None = None) -> ExportResult:
    """Build, check and record one dataset version; returns what happened (a blocked
    version is a result, not an exception: the caller decides the exit code)."""
    started = time.perf_counter()
    step = progress or (lambda _msg: None)
    _check_request(conn, req)
    project_id = tenancy.resolve_project(conn, req.project)
    label, org_id = _project_label(conn, project_id)
    store = req.storage or storage_from_settings(
        local_root=req.storage_root.expanduser().resolve() if req.storage_root else None)
    conn.commit()  # the lookups above, and whatever the caller left open: the lock needs idle
    with advisory_lock(conn, f"secinf.datasets:{project_id}:{req.name}",
                       busy=f"another export of {label} dataset {req.name} is running; "
                            "wait for it and try again"):
        step(STEPS[0])
        snap = _snapshot(conn, project_id, req, step)
        if not snap.data.events:
            raise UserError(f"project {label} has no verified events: accept candidates in "
                            "the review app (or let events.promote auto-accept them) first")
        key = storage.version_key(org_id, project_id, req.name, snap.version)
        staging = store.staging_dir(key)
        published = False
        try:
            built = _build(staging, req, project_id, label, snap, step)
            step(STEPS[5])
            with conn.transaction():
                status = _record(conn, project_id, req, snap.version, key, built.manifest,
                                 built.manifest_sha, built.card_text, snap.data,
                                 built.entries, built.results)
                published = True  # from here on, objects under the key may exist
                storage.publish(store, staging, key)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if published:  # nothing recorded refers to them: a reader never finds them
                with contextlib.suppress(Exception):
                    store.delete_prefix(key)
            raise
    local = store.root / key if isinstance(store, LocalStorage) else None
    prev = snap.prev
    return ExportResult(project_id, label, req.name, snap.version, status, key,
                        store.describe(key), local, prev["version"] if prev else None,
                        built.statistics, built.entries, built.results, built.manifest_sha,
                        time.perf_counter() - started)


def _check_request(conn: Conn, req: ExportRequest) -> None:
    if conn.autocommit:
        raise UserError("export needs a transactional connection (autocommit off): its rows "
                        "and files are committed together")
    if not DATASET_NAME.fullmatch(req.name):
        raise UserError(f"--name {req.name!r}: use lower-case letters, digits, '_' and '-', "
                        "starting with a letter (e.g. events)")
    if req.context_s < 0:
        raise UserError(f"--context {req.context_s:g}: give a non-negative number of seconds")


def _snapshot(conn: Conn, project_id: str, req: ExportRequest, step: Progress) -> Snapshot:
    """The version to write and everything it holds, read in one REPEATABLE READ snapshot."""
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            version, prev, _ = _plan_version(conn, project_id, req)
            step(STEPS[1])
            data = collect(conn, project_id, req.context_s)
            metrics = _model_metrics(conn, data.model_version)
    finally:
        conn.isolation_level = None
    return Snapshot(version, prev, data, metrics)


def _build(staging: Path, req: ExportRequest, project_id: str, label: str, snap: Snapshot,
           step: Progress) -> Built:
    """Write the Parquet files, run the gates, write the data card, report and manifest."""
    data, prev, version = snap.data, snap.prev, snap.version
    per_source = Counter(data.sources[int(e["source_id"])].name for e in data.events)
    assignment = splits.assign(per_source, req.seed, req.ratios)
    events = events_table(data.events, data.sources, assignment)
    step(STEPS[2])
    entries, written = _write_tables(staging, events, data.features)
    statistics = summarise(events, data.features.num_rows, data.reviewers)
    step(STEPS[3])
    previous = (prev["version"], prev["manifest"].get("statistics", {})) if prev else None
    results = run_gates(GateInputs(events, data.features, data.lifetimes, data.ontology,
                                   data.sources, statistics, previous, written), req.gates)
    status = "published" if all(g.passed for g in results) else "blocked"
    step(STEPS[4])
    plots = card.plot(events, staging / "card")
    text = card.render(card.CardInputs(
        name=req.name, version=version, project=label, status=status, seed=req.seed,
        ratios=req.ratios, context_s=req.context_s,
        ontology=data.ontology.as_dict() if data.ontology else None,
        model_version=data.model_version, model_metrics=snap.metrics,
        statistics=statistics, gates=results, config=req.gates, files=entries,
        sources_total=len(data.sources),
        sources_simulated=sum(s.simulated for s in data.sources.values()),
        pixel_sources=sum(s.units == "px" for s in data.sources.values())))
    (staging / card.CARD).write_text(text, encoding="utf-8")
    entries.append(storage.entry(staging, card.CARD, "card"))
    entries += [storage.entry(staging, card.PLOTS[k], "plot") for k in sorted(plots)]
    report = {"dataset": req.name, "version": version, "status": status,
              "config": req.gates.as_dict(), "gates": [g.as_dict() for g in results]}
    storage.write_json(staging, "quality_report.json", report)
    entries.append(storage.entry(staging, "quality_report.json", "report"))
    manifest = _manifest(req, project_id, label, version, status, prev, data, statistics,
                         entries, results, assignment)
    storage.write_json(staging, storage.MANIFEST, manifest)
    return Built(status, entries, statistics, results, text, manifest,
                 storage.sha256_file(staging / storage.MANIFEST))


def _manifest(req: ExportRequest, project_id: str, label: str, version: str, status: str,
              prev: dict[str, Any] | None, data: Collected, statistics: dict[str, Any],
              entries: list[storage.FileEntry], results: list[GateResult],
              assignment: dict[str, str]) -> dict[str, Any]:
    return {
        "dataset": req.name, "version": version, "status": status,
        "project_id": project_id, "project": label,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous_version": prev["version"] if prev else None,
        "schema_version": SCHEMA_VERSION,
        "schema": {name: describe(schema) for name, schema in TABLES.items()},
        "ontology": data.ontology.as_dict() if data.ontology else None,
        "model_version": data.model_version,
        "split": {"seed": req.seed, "group": "source",
                  "method": "sources shuffled by sha256(seed:name), cut at the ratios by "
                            "event counts",
                  "ratios": dict(zip(SPLITS, req.ratios, strict=True)),
                  "sources": assignment},
        "context_s": req.context_s,
        "files": [e.as_dict() for e in entries],
        "statistics": statistics,
        "quality": {"passed": all(g.passed for g in results), "config": req.gates.as_dict(),
                    "gates": [{"gate": g.gate, "passed": g.passed, "summary": g.summary}
                              for g in results]},
    }
