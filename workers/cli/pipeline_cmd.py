"""`secinf tick`, `secinf pipeline status`, `secinf pipeline retry` and `secinf pipeline
settings`: run the incremental pipeline, watch it, retry a failing source and tune it."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape

from workers import tenancy
from workers.cli.output import console, err_console, print_json, print_table
from workers.db.connect import connect
from workers.db.queries import query
from workers.errors import SecinfError, UserError
from workers.pipeline import TickReport, pipeline_status, retry_sources, tick
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
    retry_failing: bool = typer.Option(False, "--retry-failing",
                                       help="Also try the sources that are waiting for their "
                                            "retry time after a failure (`secinf pipeline "
                                            "status` lists them)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run pipeline.tick() now (what pg_cron runs every minute)."""
    with connect() as conn:
        if json_out:
            report = tick(conn, until_idle=until_idle, parallel=parallel,
                          retry_failing=retry_failing)
        else:
            with console.status("ticking…") as status:
                def progress(r: TickReport) -> None:
                    status.update(f"tick {r.ticks}: {r.points} points, {r.seconds:.1f} s")

                report = tick(conn, until_idle=until_idle, on_tick=progress, parallel=parallel,
                              retry_failing=retry_failing)
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
        detail = "; ".join(f"source {e.source_id}" + (f" ({e.stage})" if e.stage else "")
                           + f": {e.error}" for e in report.errors)
        raise SecinfError(f"the pipeline failed for {detail}; the other sources went on. "
                          "Failing sources wait for their retry time (see `secinf pipeline "
                          "status`; `secinf pipeline retry --source ID` retries one now)")


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
    failures in a row and the next retry of a failing source, and the warning codes of its
    checks (--json: the messages, the failing step and SQLSTATE too)."""
    with connect() as conn:
        rows = pipeline_status(conn)
    if json_out:
        print_json(rows)
        return
    print_table([{**r, "warnings": ", ".join(w["code"] for w in r["warnings"])} for r in rows],
                title="pipeline status",
                columns=["source_id", "source", "watermark", "newest", "lag_s", "dirty_pending",
                         "last_run_at", "last_status", "last_error", "failures", "warnings"])
    for r in rows:
        if r["failures"]:
            err_console.print(
                f"[red]failing:[/] source {r['source_id']} ({escape(str(r['source']))}) failed "
                f"{r['failures']} time(s) in a row in {r['failed_stage'] or 'an unknown step'} "
                f"({r['failed_sqlstate']}): {escape(str(r['last_error']))}; the next tick tries "
                f"it from {r['retry_at']:%Y-%m-%d %H:%M:%S %Z} "
                f"(`secinf pipeline retry --source {r['source_id']}`: now)", highlight=False)


@pipeline_app.command("retry")
def retry_command(
    source: int | None = typer.Option(None, "--source", help="The failing source's id "
                                                             "(`secinf pipeline status`)."),
    all_sources: bool = typer.Option(False, "--all", help="Every failing source."),
    json_out: bool = typer.Option(False, "--json", help="Print the sources as JSON."),
) -> None:
    """Make a failing source due now instead of at its retry time: the next tick (pg_cron's
    within a minute, or `secinf tick`) tries it again."""
    if (source is None) == (not all_sources):
        raise UserError("name one failing source with --source ID, or give --all")
    with connect() as conn:
        if source is not None:
            failing = conn.execute(query("pipeline", "failing_source"),
                                   {"source_id": source}).fetchone()
            conn.rollback()
            if failing is None:
                raise UserError(f"source {source} is not failing: nothing to retry "
                                "(`secinf pipeline status` lists the failing ones)")
        due = retry_sources(conn, source)
    if json_out:
        print_json({"retried": due})
    elif source is not None and not due:
        console.print(f"source {source} is already due: the next tick tries it")
    elif not due:
        console.print("no source is waiting for a retry")
    else:
        console.print(f"the next tick tries source(s) {', '.join(map(str, due))} again")


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


MODES = ("transaction", "queue")


@pipeline_app.command("mode")
def mode_command(
    mode: str | None = typer.Argument(None, help="transaction (pg_cron ticks every source "
                                                 "itself, one backend) or queue (pg_cron "
                                                 "queues a pipeline_tick_source job per "
                                                 "source with work; `secinf worker` runs "
                                                 "them). Omit to show the mode."),
    schedule_now: bool = typer.Option(False, "--schedule-now",
                                      help="In queue mode, queue the sources with work now "
                                           "instead of at pg_cron's next minute."),
    json_out: bool = typer.Option(False, "--json", help="Print the mode (and jobs) as JSON."),
) -> None:
    """How the scheduled pipeline works the sources (docs/pipeline.md, "Per-source jobs").
    A cluster-wide setting: pg_cron's call reads it every minute."""
    if mode is not None and mode not in MODES:
        raise UserError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    with connect() as conn:
        if mode is not None:
            conn.execute(query("pipeline", "set_scheduled_mode"), {"mode": mode})
            conn.commit()
        row = conn.execute(query("pipeline", "scheduled_mode")).fetchone()
        current = str(row["mode"]) if row else "transaction"
        jobs: list[dict[str, Any]] = []
        if schedule_now:
            if current != "queue":
                raise UserError("--schedule-now needs queue mode: `secinf pipeline mode queue "
                                "--schedule-now`")
            jobs = [dict(r) for r in conn.execute(query("pipeline", "schedule_sources"))]
            conn.commit()
    if json_out:
        print_json({"mode": current, "jobs": jobs})
        return
    console.print(f"scheduled ticks: {current}"
                  + (" (run `secinf worker` to work the queued sources)"
                     if current == "queue" else ""))
    if schedule_now:
        console.print(f"queued or found live: {len(jobs)} pipeline_tick_source job(s)")
