"""`secinf analytics refresh|export`: the analytics views from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from workers import tenancy
from workers.analytics import METRIC_COLUMNS, project_metrics, refresh, write_csv
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect, connect_read
from workers.errors import UserError

app = typer.Typer(help="Analytics over verified events: refresh the views, export metrics.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{option} {value!r} is not an ISO 8601 time: "
                        "write e.g. 2026-01-01 or 2026-01-01T12:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("refresh")
def refresh_command(
    plain: bool = typer.Option(False, "--plain",
                               help="Refresh without CONCURRENTLY (faster; blocks readers)."),
    json_out: bool = JSON,
) -> None:
    """Refresh every analytics view now (what the pg_cron job runs every 5 minutes)."""
    with connect() as conn, console.status("refreshing analytics views…"):
        views = refresh(conn, concurrently=not plain)
    rows = [{"matview": v.matview, "concurrent": v.concurrent, "ms": round(v.ms, 1)}
            for v in views]
    if json_out:
        print_json(rows)
    else:
        print_table(rows, title="analytics views refreshed")


@app.command("export")
def export_command(
    project: str = typer.Option(..., "--project", "-p", help="The org/project (or its id)."),
    start: str | None = typer.Option(None, "--from", help="Events starting at or after this "
                                     "time (ISO 8601, UTC unless a zone is given)."),
    end: str | None = typer.Option(None, "--to", help="… and before this time."),
    source: list[str] | None = typer.Option(None, "--source", "-s",
                                            help="Only this source (repeatable)."),
    out: Path | None = typer.Option(None, "--out", help="Write one CSV per metric here."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics document as JSON."),
) -> None:
    """A project's metrics (api.project_metrics) as JSON and/or CSV files, read from the
    replica in SECINF_READ_DSN when it is set."""
    t0, t1 = parse_time(start, "--from"), parse_time(end, "--to")
    with connect_read() as conn:  # the read replica in SECINF_READ_DSN, if any
        project_id = tenancy.resolve_project(conn, project)
        doc = project_metrics(conn, project_id, t0, t1, source or None)
    paths = write_csv(doc, out) if out is not None else []
    if json_out:
        print_json(doc)
        return
    if doc["refreshed_at"] is None:
        console.print("[yellow]the analytics views have not been computed yet:[/] "
                      "run `secinf analytics refresh`")
    summary = [{"metric": m, "rows": len(doc[m])} for m in METRIC_COLUMNS]
    print_table(summary, title=f"metrics of {project} (as of {doc['refreshed_at']}, "
                               f"buckets: {doc['bucket']})")
    for path in paths:
        console.print(f"[green]✓[/] {path}")
