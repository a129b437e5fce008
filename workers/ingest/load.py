"""One ingest run: open and check inputs, then one transaction that stages, merges and
records the batch.

Order matters for "nothing partial": every check that can fail without the data (file,
format, schema, project, source settings, scene) runs before the transaction; inside it
`ingest.open_batch` records the batch and locks the source, the rows stream through
validation to the server (workers/ingest/stream.py: append chunks straight into
ingest.track_points, overlapping or late ones into a temporary stage), and
`ingest.close_batch` merges the stage and finishes the batch row. Any failure before the
commit rolls all of it back: no source, no batch, no point. A KPF batch also records the
person heights its boxes give (`attributes -> 'observed' -> 'person_height_m'`), which
`pipeline.source_checks` reads; `IngestRequest.on_warning` hears the warnings about them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from workers import tenancy
from workers.db.errors import DbFailure, wrap_db_errors
from workers.db.queries import query
from workers.db.quota_warnings import QuotaWarnings
from workers.errors import UserError
from workers.ingest.formats import TrackReader, open_tracks
from workers.ingest.kpf import KpfOptions
from workers.ingest.poses import PoseReader
from workers.ingest.scene import SceneFile, normalise_scene, read_scene
from workers.ingest.schema import (
    DEFAULT_TIME_ORIGIN,
    ResolvedSource,
    RowError,
    SourceSpec,
    Transform,
)
from workers.ingest.stream import Router, stream_rows
from workers.ingest.summary import IngestSummary, Rejected
from workers.ingest.transform import build_transform, resolve_source
from workers.ingest.validate import Validator

Conn = psycopg.Connection[dict[str, Any]]
Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) as the load advances."""
INGEST_CHECKS = ("implausible_height",)
"""Codes of pipeline.source_checks that an ingest reports (what it has just measured)."""
HASH_BLOCK = 8 << 20


@dataclass
class IngestRequest:
    """Everything `secinf ingest` was asked to do."""

    project: str
    source: str
    path: Path | None = None
    fmt: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    fps: float | None = None
    units: str | None = None
    scale: float | None = None
    homography: str | None = None
    time_origin: datetime | None = None
    scene: Path | None = None
    poses: Path | None = None
    idempotency_key: str | None = None
    strict: bool = False
    kpf: KpfOptions | None = None
    """KPF geom side files (camera, types, activities) and time base."""
    ended: bool = False
    """The recording ends with this file: mark the source ended at its newest point
    (ingest.sources.ended_at), so intervals lasting to the last frame are emitted."""
    before_merge: Callable[[Conn], None] | None = None
    """Test hook: runs after staging, before the merge (crash injection)."""
    on_warning: Callable[[str], None] | None = None
    """Called after the commit with each warning about what was loaded (people of a KPF
    clip far from 1.7 m tall: pipeline.source_checks, code implausible_height)."""


def content_key(source: str, paths: list[Path]) -> str:
    """sha256 of the source name and the bytes of every input file (streamed)."""
    digest = hashlib.sha256(source.encode() + b"\x00")
    for path in paths:
        with path.open("rb") as fh:
            while block := fh.read(HASH_BLOCK):
                digest.update(block)
        digest.update(b"\x00")
    return "sha256:" + digest.hexdigest()


def _check_fps(fps: float | None) -> None:
    if fps is not None and not (fps > 0 and fps < 1e6):
        raise UserError(f"--fps {fps}: frames per second must be a positive number")


def _source_row(conn: Conn, project_id: str, name: str) -> dict[str, Any] | None:
    row = conn.execute(query("ingest", "find_source"),
                       {"project_id": project_id, "name": name}).fetchone()
    return dict(row) if row else None


def _agrees(stored: dict[str, Any], src: ResolvedSource) -> None:
    """A source created concurrently must match what this batch resolved (transforms
    compared as numbers: jsonb gives 1e300 back as an integer)."""
    if (stored["units"] != src.units or Transform.from_json(stored["transform"]) != src.transform
            or stored["time_origin"] != src.time_origin):
        raise UserError(f"source {src.name!r} was just created with other settings "
                        f"(units {stored['units']}, transform {stored['transform']}); "
                        "submit again to use them or pick a new --source")


def _duplicate_summary(row: dict[str, Any], started: float) -> IngestSummary:
    return IngestSummary(
        batch_id=row["batch_id"], source=row["source"], rows_total=row["rows_total"],
        inserted=row["rows_inserted"], duplicate=row["rows_duplicate"],
        invalid=row["rows_invalid"], ignored=row["rows_ignored"], errors=row["errors"],
        duplicate_batch=True, seconds=time.perf_counter() - started)


def ingest(conn: Conn, req: IngestRequest, progress: Progress | None = None) -> IngestSummary:
    """Run one ingest on `conn` (committed on success, rolled back on any failure)."""
    started = time.perf_counter()
    if req.path is None and req.scene is None:
        raise UserError("nothing to ingest: give a track file and/or --scene scene.json")
    _check_fps(req.fps)
    if req.units not in (None, "px", "m", "cm", "mm"):
        raise UserError(f"--units {req.units!r}: use px, m, cm or mm")
    reader = open_tracks(req.path, req.fmt, req.mapping, kpf=req.kpf) if req.path else None
    scene: SceneFile | None = read_scene(req.scene) if req.scene else None
    poses = PoseReader(req.poses).open() if req.poses else None
    if poses and not reader:
        raise UserError("--poses needs the track file the poses belong to")

    project_id = tenancy.resolve_project(conn, req.project)
    stored = _source_row(conn, project_id, req.source)
    conn.rollback()
    spec = SourceSpec(
        name=req.source, fps=req.fps if req.fps is not None else (scene.fps if scene else None),
        units=req.units, transform=build_transform(req.units, req.scale, req.homography),
        time_origin=req.time_origin or (scene.time_origin if scene else None))
    if stored is not None and req.fps is None:
        spec = SourceSpec(spec.name, None, spec.units, spec.transform, spec.time_origin)
    src = resolve_source(spec, stored, reader.default_units if reader else (
        scene.units if scene and scene.units else "m"),
        reader.fps_hint if reader else None, DEFAULT_TIME_ORIGIN)
    if reader and "t" not in reader.columns and src.fps is None:
        raise UserError(f"{req.path}: no t column and no frame rate; pass --fps (t = "
                        "frame / fps) or add a t column")
    scene_doc = normalise_scene(scene, src) if scene else None
    side = (req.kpf.camera, req.kpf.types, req.kpf.activities) if req.kpf else ()
    files = [p for p in (req.path, req.poses, req.scene, *side) if p is not None]
    key = req.idempotency_key or content_key(req.source, files)
    fmt_name = reader.format if reader else "scene"
    observed: dict[str, Any] = {}
    nbytes = sum(p.stat().st_size for p in files)
    quota_warnings = QuotaWarnings()

    # The database's refusals (a quota, a source that disagrees) are the user's, named with
    # the file; any other failure (a deadlock, a lost connection) propagates as it is, so a
    # worker retries it. Either way the transaction is rolled back: nothing was stored.
    with wrap_db_errors(context=f"ingest of {req.path or req.scene} failed and nothing was "
                                "stored: "):
        with conn.transaction(), quota_warnings.collecting(conn):
            conn.execute(query("ingest", "lock_key"), {"project_id": project_id, "key": key})
            dup = conn.execute(query("ingest", "find_batch"),
                               {"project_id": project_id, "key": key}).fetchone()
            if dup is not None:
                again = _duplicate_summary(dict(dup), started)
                if req.ended:  # the same file again, now known to end the recording
                    again.ended_at = _end_recording(conn, int(dup["source_id"]))
                return again
            if reader is not None:  # metering: docs/billing.md
                conn.execute(query("ingest", "check_bytes_quota"),
                             {"project_id": project_id, "bytes": nbytes})
            row = conn.execute(query("ingest", "ensure_source"), {
                "project_id": project_id, "name": src.name, "units": src.units,
                "transform": Jsonb(src.transform.as_json()) if src.transform else None,
                "fps": src.fps, "time_origin": src.time_origin}).fetchone()
            assert row is not None
            _agrees(dict(row), src)
            source_id = row["source_id"]
            summary = IngestSummary(batch_id=None, source=src.name, units=src.units)
            if reader is not None:
                summary = _load_points(conn, req, reader, poses, src, project_id, source_id,
                                       key, fmt_name, progress)
                if not summary.duplicate_batch:
                    observed = _record_observed(conn, source_id, reader)
                    conn.execute(query("ingest", "count_bytes"), {
                        "project_id": project_id, "bytes": nbytes,
                        "batch_id": summary.batch_id})
            if req.ended:
                summary.ended_at = _end_recording(conn, source_id)
            if scene_doc is not None:
                got = conn.execute(query("ingest", "upsert_scene"), {
                    "project_id": project_id, "source_id": source_id,
                    "scene": Jsonb(scene_doc)}).fetchone()
                assert got is not None
                summary.scene = {k: int(v) for k, v in got.items()}
    if req.on_warning is not None:
        for warning in quota_warnings.messages:
            req.on_warning(warning)
    if observed and req.on_warning is not None:
        _warn(conn, source_id, req.on_warning)
    summary.seconds = time.perf_counter() - started
    return summary


def observed_heights(heights: dict[str, float]) -> dict[str, Any] | None:
    """p10/p50/p90 (m, linear interpolation) of per-track median heights, and the number
    of tracks; None without any."""
    if not heights:
        return None
    p10, p50, p90 = np.percentile(np.fromiter(heights.values(), dtype=float), [10, 50, 90])
    return {"p10": round(float(p10), 3), "p50": round(float(p50), 3),
            "p90": round(float(p90), 3), "tracks": len(heights)}


def _end_recording(conn: Conn, source_id: int) -> datetime:
    """Mark the source's recording ended at its newest point; UserError without points."""
    row = conn.execute(query("ingest", "end_recording"), {"source_id": source_id}).fetchone()
    if row is None or row["ended_at"] is None:
        raise UserError("--ended: the source has no points, so its recording has no end; "
                        "ingest its track file with --ended")
    return cast(datetime, row["ended_at"])


def _record_observed(conn: Conn, source_id: int, reader: TrackReader) -> dict[str, Any]:
    """Store what the batch measured in ingest.sources.attributes -> 'observed' (merged
    key by key; a KPF batch replaces `person_height_m`). Returns what was stored."""
    kpf = reader.kpf_geom
    heights = observed_heights(kpf.person_heights()) if kpf is not None else None
    if heights is None:
        return {}
    observed = {"person_height_m": heights}
    conn.execute(query("pipeline", "record_observed"),
                 {"source_id": source_id, "observed": Jsonb(observed)})
    return observed


def _warn(conn: Conn, source_id: int, on_warning: Callable[[str], None]) -> None:
    """Pass the committed source's ingest-side warnings to `on_warning` (read-only)."""
    try:
        rows = conn.execute(query("pipeline", "source_checks"),
                            {"source_ids": [source_id]}).fetchall()
    except psycopg.Error as exc:  # the batch is committed: say so, do not fail it
        on_warning(f"the batch is stored, but checking source {source_id} failed: "
                   f"{DbFailure.of(exc).text}")
        return
    finally:
        conn.rollback()
    for r in rows:
        if r["code"] in INGEST_CHECKS:
            on_warning(str(r["message"]))


def _load_points(conn: Conn, req: IngestRequest, reader: Any, poses: PoseReader | None,
                 src: ResolvedSource, project_id: str, source_id: int, key: str,
                 fmt_name: str, progress: Progress | None) -> IngestSummary:
    """Open the batch, stream every chunk (append or stage), then close the batch (inside
    the transaction)."""
    validator = Validator(src)
    conn.execute(query("ingest", "tune_session"))
    conn.execute(query("ingest", "stage_tables"))
    opened = conn.execute(query("ingest", "open_batch"), {
        "project_id": project_id, "source_id": source_id, "key": key, "format": fmt_name,
        "file_name": req.path.name if req.path else None}).fetchone()
    assert opened is not None
    if opened["duplicate_batch"]:  # committed since find_batch by a caller without the lock
        dup = conn.execute(query("ingest", "find_batch"),
                           {"project_id": project_id, "key": key}).fetchone()
        assert dup is not None
        return _duplicate_summary(dict(dup), time.perf_counter())
    batch_id = opened["batch_id"]
    # COPY straight into the hypertable where row-level security does not apply to the
    # session (an administrator's CLI), or as ingest_loader where the session's role may
    # switch to it (a worker's pipeline role, migration 0025); anyone else stages and merges.
    rls = conn.execute(query("ingest", "bypasses_rls")).fetchone()
    assert rls is not None
    router = Router(validator, project_id, source_id, batch_id, opened["high_water"],
                    opened["high_frame"],
                    allow_append=poses is None and bool(rls["bypass"] or rls["loader"]))
    streamed = stream_rows(conn, reader, router, progress,
                           loader_from=rls["role"] if rls["loader"] else None)
    errors = validator.errors
    pose_rows = 0
    if poses is not None:
        with conn.cursor() as cur, cur.copy(query("ingest", "copy_pose_stage")) as copy:
            for frame in poses.chunks():
                if frame.height:
                    copy.write(frame.write_csv(include_header=False).encode())
        orphans = conn.execute(query("ingest", "orphan_poses")).fetchall()
        for o in orphans:
            poses.errors.add(RowError(o["row_no"], "frame", "unknown_point",
                                      f"no valid point of track {o['track_id']} at frame "
                                      f"{o['frame']} in this batch"))
            poses.errors.invalid_rows += 1
        conn.execute(query("ingest", "drop_orphan_poses"))
        pose_rows = poses.rows_total
    all_errors = errors.as_list() + (poses.errors.as_list() if poses else [])
    invalid = errors.invalid_rows
    if req.strict and (errors.total or (poses and poses.errors.total)):
        raise Rejected(IngestSummary(
            batch_id=None, source=src.name, rows_total=reader.rows_read + reader.ignored,
            invalid=invalid, ignored=reader.ignored, errors=all_errors[:100],
            error_counts={**errors.by_code, **(poses.errors.by_code if poses else {})},
            units=src.units, poses_total=pose_rows,
            poses_invalid=poses.errors.invalid_rows if poses else 0))
    if req.before_merge is not None:
        req.before_merge(conn)
    merged = conn.execute(query("ingest", "close_batch"), {
        "batch_id": batch_id, "poses": poses is not None,
        "rows_total": reader.rows_read + reader.ignored, "rows_invalid": invalid,
        "rows_ignored": reader.ignored, "errors": Jsonb(all_errors[:100]),
        "direct": streamed.direct_rows, "direct_min": streamed.direct_min,
        "direct_max": streamed.direct_max, "dropped": streamed.dropped}).fetchone()
    assert merged is not None
    late = None
    if merged["late_from"] is not None:
        late = {"from_ts": merged["late_from"], "to_ts": merged["late_to"]}
    return IngestSummary(
        batch_id=batch_id, source=src.name,
        rows_total=reader.rows_read + reader.ignored, inserted=merged["rows_inserted"],
        duplicate=merged["rows_duplicate"], invalid=invalid, ignored=reader.ignored,
        errors=all_errors[:100],
        error_counts={**errors.by_code, **(poses.errors.by_code if poses else {})},
        duplicate_batch=False, units=src.units,
        poses_total=pose_rows, poses_inserted=merged["poses_inserted"],
        poses_invalid=poses.errors.invalid_rows if poses else 0, late=late,
        min_t=validator.min_ts, max_t=validator.max_ts,
        idempotency_key=key)


__all__ = ["IngestRequest", "content_key", "ingest", "observed_heights"]
