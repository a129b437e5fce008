"""`secinf ingest`: tracks, poses, scene geometry and triggers into the database.

Exit codes: 0 applied (invalid rows, if any, are reported and skipped), 2 user error or a
batch rejected by --strict (nothing stored), 1 internal failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from workers.cli.output import console, err_console, print_json
from workers.db.connect import connect
from workers.errors import UserError
from workers.ingest import IngestRequest, Rejected, ingest
from workers.ingest.formats import detect_format, parse_mapping
from workers.ingest.kpf import KpfOptions
from workers.ingest.load import Progress as ProgressFn
from workers.ingest.schema import FORMATS, parse_iso_time
from workers.ingest.summary import render_errors


def _time_origin(value: str | None) -> datetime | None:
    return None if value is None else parse_iso_time(value)


def _kpf_options(file: Path | None, fmt: str | None, fps: float | None,
                 camera: Path | None, types: Path | None, activities: Path | None,
                 transform_given: bool) -> KpfOptions | None:
    """The KPF reader's side files; None for other formats (where they are an error)."""
    given = [name for name, v in (("--camera", camera), ("--types", types),
                                  ("--activities", activities)) if v is not None]
    is_kpf = file is not None and (fmt or detect_format(file)) == "kpf"
    if not is_kpf:
        if given:
            raise UserError(f"{given[0]} applies to KPF geom files (*.geom.yml, "
                            "--format kpf) only")
        return None
    if transform_given:
        raise UserError(f"{file}: KPF boxes reach the ground through the camera model "
                        "(--camera FILE.krtd); drop --scale/--homography/--units")
    return KpfOptions(camera=camera, types=types, activities=activities, fps=fps)


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[ProgressFn | None]:
    if not enabled:
        yield None
        return
    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   DownloadColumn(), TimeRemainingColumn(), console=err_console,
                   transient=True)
    task = bar.add_task(label, total=None)
    with bar:
        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
        yield update


def ingest_command(
    file: Path | None = typer.Argument(None, help="Track file: CSV, Parquet, JSONL, MOT "
                                                  "gt.txt/det.txt, ETH/UCY text or KPF "
                                                  "*.geom.yml."),
    project: str = typer.Option(..., "--project", "-p", help="Project as org/project."),
    source: str = typer.Option(..., "--source", help="Source (camera/scene) name; created "
                                                     "on first ingest."),
    fmt: str | None = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)} "
                                                          "(default: from the file name)."),
    mapping: str | None = typer.Option(None, "--map", help="Column mapping, e.g. "
                                                           "x=pos_x,y=pos_y,track_id=id."),
    fps: float | None = typer.Option(None, "--fps", help="Frames per second (t = frame/fps "
                                                         "where t is absent)."),
    units: str | None = typer.Option(None, "--units", help="px | m | cm | mm (cm, mm are "
                                                           "converted to metres)."),
    scale: float | None = typer.Option(None, "--scale", help="Metres per pixel."),
    homography: str | None = typer.Option(None, "--homography",
                                          help="3x3 image→ground matrix: a file or JSON."),
    time_origin: str | None = typer.Option(None, "--time-origin",
                                           help="ISO time of t = 0 (default: scene.json's, "
                                                "else 2026-01-01T00:00:00Z)."),
    scene: Path | None = typer.Option(None, "--scene", help="scene.json: zones, routes, "
                                                            "triggers."),
    poses: Path | None = typer.Option(None, "--poses", help="Keypoints JSONL (COCO-17)."),
    camera: Path | None = typer.Option(None, "--camera", help="KPF: the clip's .krtd camera "
                                                              "model (default: the only "
                                                              ".krtd beside the file)."),
    types: Path | None = typer.Option(None, "--types", help="KPF: *.types.yml, the tracks' "
                                                            "classes (default: the clip's, "
                                                            "beside the file)."),
    activities: Path | None = typer.Option(None, "--activities",
                                           help="KPF: *.activities.yml; merges the track of "
                                                "a vehicle_starts into the vehicle_stops "
                                                "track it continues."),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key",
                                               help="Default: sha256 of source + content."),
    strict: bool = typer.Option(False, "--strict", help="Reject the whole batch if any row "
                                                        "is invalid."),
    ended: bool = typer.Option(False, "--ended", help="The recording ends with this file "
                               "(a recorded clip, not a live stream): events still holding "
                               "at its last frame are emitted (docs/ingest.md)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary (no progress "
                                                        "bar)."),
) -> None:
    """Validate and load tracks (and optionally poses, scene geometry, triggers)."""
    req = IngestRequest(
        project=project, source=source, path=file, fmt=fmt, mapping=parse_mapping(mapping),
        fps=fps, units=units, scale=scale, homography=homography,
        time_origin=_time_origin(time_origin), scene=scene, poses=poses,
        idempotency_key=idempotency_key, strict=strict, ended=ended,
        kpf=_kpf_options(file, fmt, fps, camera, types, activities,
                         any(v is not None for v in (scale, homography, units))),
        on_warning=lambda m: err_console.print(f"[yellow]warning:[/] {escape(m)}",
                                               highlight=False))
    with connect() as conn, _progress(not json_out, f"ingest {source}") as progress:
        # Before the session's first temporary table: keep the stage in memory.
        conn.execute("SET temp_buffers = '256MB'")
        try:
            summary = ingest(conn, req, progress)
        except Rejected as exc:
            if json_out:
                print_json({**exc.summary.as_json(), "rejected": True})
            else:
                render_errors(err_console, exc.summary.errors, exc.summary.error_counts)
            raise
    if summary.units == "px":
        err_console.print(f"[yellow]warning:[/] source {source!r} has no --scale or "
                          "--homography: coordinates stay in pixels (units 'px'), so "
                          "metre-based thresholds downstream must scale or refuse",
                          highlight=False)
    if json_out:
        print_json(summary.as_json())
        return
    summary.render(console)
