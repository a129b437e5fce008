"""`secinf tick`, `secinf pipeline status` and `secinf pipeline settings`: run the
incremental pipeline, watch it and tune it."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape

from workers import tenancy
from workers.cli.output import console, err_console, print_json, print_table
from workers.db.connect import connect
from workers.errors import SecinfError
from workers.pipeline import TickReport, pipeline_status, tick
from workers.pipeline import settings as pipeline_settings

pipeline_app = typer.Typer(help="The incremental feature pipeline.", no_args_is_help=True)


def tick_command(
    until_idle: bool = typer.Option(False, "--until-idle",
                                    help="Process every point (no settle margin) and repeat "
                                         "until no source has work left."),
    parallel: int = typer.Option(1, "--parallel", min=1,
                                 help="Work this many sources at once, one connection each, "
                                      "committing after every stage (docs/pipeline.md, "
                                      "\"Parallel lanes\"); 1: pipeline.tick(), one "
                                      "transaction per tick."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run pipeline.tick() now (what pg_cron runs every minute)."""
    with connect() as conn:
        if json_out:
            report = tick(conn, until_idle=until_idle, parallel=parallel)
        else:
            with console.status("ticking…") as status:
                def progress(r: TickReport) -> None:
                    status.update(f"tick {r.ticks}: {r.points} points, {r.seconds:.1f} s")

                report = tick(conn, until_idle=until_idle, on_tick=progress, parallel=parallel)
    if json_out:
        print_json(report.as_dict())
    elif report.busy:
        console.print("another tick is running; nothing done")
    else:
        rows = ", ".join(f"{k} {v}" for k, v in report.rows.items()) or "nothing to do"
        console.print(f"{report.ticks} tick(s), {report.points} points, "
                      f"{report.dirty} dirty ranges, {report.seconds:.2f} s: {rows}")
        print_warnings(report.warnings)
    if report.errors:
        detail = "; ".join(f"source {e.source_id}: {e.error}" for e in report.errors)
        raise SecinfError(f"the pipeline failed for {detail} (see `secinf pipeline status`)")


def print_warnings(warnings: list[dict[str, Any]]) -> None:
    """Each {code, message} on stderr, in yellow."""
    for w in warnings:
        err_console.print(f"[yellow]warning ({w['code']}):[/] {escape(str(w['message']))}",
                          highlight=False)


@pipeline_app.command("status")
def status_command(
    json_out: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Per source: watermark, newest data, lag, pending dirty ranges, last run and error,
    and the warning codes of its checks (--json: the messages too)."""
    with connect() as conn:
        rows = pipeline_status(conn)
    if json_out:
        print_json(rows)
        return
    print_table([{**r, "warnings": ", ".join(w["code"] for w in r["warnings"])} for r in rows],
                title="pipeline status",
                columns=["source_id", "source", "watermark", "newest", "lag_s", "dirty_pending",
                         "last_run_at", "last_status", "last_error", "warnings"])


def _json_text(value: Any) -> str:
    return "" if value is None else json.dumps(value)


@pipeline_app.command("settings")
def settings_command(
    assignments: list[str] | None = typer.Argument(
        None, metavar="KEY=VALUE",
        help="Settings to change (KEY=default removes an override); none: show them."),
    project: str = typer.Option(..., "--project", "-p", help="Project as org/project."),
    source: str | None = typer.Option(
        None, "--source", help="One source (name or id): its own settings (only "
                               f"{', '.join(pipeline_settings.SOURCE_KEYS)})."),
    recompute: bool = typer.Option(
        False, "--recompute", help="Delete the watermarks of the source (or of every source "
                                   "of the project) so the next tick recomputes everything."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show the effective pipeline settings (default, project, source), or set them."""
    values = pipeline_settings.parse_assignments(assignments or [])
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        change = None
        if values or recompute:
            change = pipeline_settings.apply(conn, project_id, values, source, recompute,
                                             project_ref=project)
        rows = pipeline_settings.show(conn, project_id, source)
    if json_out:
        print_json({**(change.as_dict() if change else {"project_id": project_id,
                                                           "source": source}),
                    "settings": rows})
        return
    if change is not None:
        level = f"source {change.source}" if change.source else f"project {project}"
        for key, value in change.changed.items():
            console.print(f"{level}: {key} = "
                          f"{'(removed)' if value is None else json.dumps(value)}",
                          highlight=False)
        for note in change.notes:
            err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    columns = ["key", "default", "project", *(["source"] if source else []), "effective"]
    print_table([{c: (_json_text(r[c]) if c != "key" else r[c]) for c in columns} for r in rows],
                title=f"pipeline settings of {project}" + (f", source {source}" if source
                                                            else ""),
                columns=columns)
