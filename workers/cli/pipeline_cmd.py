"""`secinf tick` and `secinf pipeline status`: run the incremental pipeline and watch it."""

from __future__ import annotations

import typer

from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.errors import SecinfError
from workers.pipeline import TickReport, pipeline_status, tick

pipeline_app = typer.Typer(help="The incremental feature pipeline.", no_args_is_help=True)


def tick_command(
    until_idle: bool = typer.Option(False, "--until-idle",
                                    help="Process every point (no settle margin) and repeat "
                                         "until no source has work left."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run pipeline.tick() now (what pg_cron runs every minute)."""
    with connect() as conn:
        if json_out:
            report = tick(conn, until_idle=until_idle)
        else:
            with console.status("ticking…") as status:
                def progress(r: TickReport) -> None:
                    status.update(f"tick {r.ticks}: {r.points} points, {r.seconds:.1f} s")

                report = tick(conn, until_idle=until_idle, on_tick=progress)
    if json_out:
        print_json(report.as_dict())
    elif report.busy:
        console.print("another tick is running; nothing done")
    else:
        rows = ", ".join(f"{k} {v}" for k, v in report.rows.items()) or "nothing to do"
        console.print(f"{report.ticks} tick(s), {report.points} points, "
                      f"{report.dirty} dirty ranges, {report.seconds:.2f} s: {rows}")
    if report.errors:
        detail = "; ".join(f"source {e.source_id}: {e.error}" for e in report.errors)
        raise SecinfError(f"the pipeline failed for {detail} (see `secinf pipeline status`)")


@pipeline_app.command("status")
def status_command(
    json_out: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Per source: watermark, newest data, lag, pending dirty ranges, last run and error."""
    with connect() as conn:
        rows = pipeline_status(conn)
    if json_out:
        print_json(rows)
        return
    print_table(rows, title="pipeline status",
                columns=["source_id", "source", "watermark", "newest", "lag_s", "dirty_pending",
                         "last_run_at", "last_status", "last_error"])
