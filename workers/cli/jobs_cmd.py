"""`secinf jobs list|show|retry|cancel|enqueue`: the work queue from the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import typer

from workers import tenancy
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.errors import UserError
from workers.queue import client, registry

app = typer.Typer(help="The work queue: list, show, retry, cancel, enqueue.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")
STATES = ("queued", "running", "succeeded", "dead", "cancelled")


@app.command("list")
def jobs_list(
    state: str | None = typer.Option(None, help=f"Only this state: {', '.join(STATES)}."),
    kind: str | None = typer.Option(None, help="Only this job kind."),
    project: str | None = typer.Option(None, "--project", "-p", help="Only this org/project."),
    limit: int = typer.Option(50, min=1, max=10_000, help="Newest first, at most this many."),
    summary: bool = typer.Option(False, "--summary",
                                 help="Instead: the queue per plan (queued, due, running, the "
                                      "oldest due job's wait), in claim order."),
    json_out: bool = JSON,
) -> None:
    """List jobs, newest first, with each job's plan and priority (claims take the highest
    priority first: the plan's job_priority when the job was queued; FIFO within one)."""
    if state is not None and state not in STATES:
        raise UserError(f"--state {state!r} is not a job state: use one of {', '.join(STATES)}")
    if summary and (state or kind or project):
        raise UserError("--summary counts every queued and running job: leave out --state, "
                        "--kind and --project (or drop --summary to list jobs)")
    with connect() as conn:
        if summary:
            plans = client.queue_by_plan(conn)
        else:
            project_id = tenancy.resolve_project(conn, project) if project else None
            rows = client.list_jobs(conn, state=state, kind=kind, project_id=project_id,
                                    limit=limit)
    if summary:
        if json_out:
            print_json(plans)
            return
        print_table([{**r, "oldest_wait_s": "" if r["oldest_wait_s"] is None
                      else f"{r['oldest_wait_s']:.1f}"} for r in plans],
                    title="queue by plan (claimed in this order)",
                    columns=["plan", "priority", "queued", "due", "running", "projects",
                             "oldest_due_at", "oldest_wait_s"])
    elif json_out:
        print_json(rows)
    else:
        print_table(rows, title="jobs", columns=["job_id", "project", "plan", "kind", "state",
                                                 "priority", "attempt", "failures",
                                                 "run_after", "last_error"])


@app.command("show")
def jobs_show(job_id: int = typer.Argument(..., help="The job's id."), json_out: bool = JSON
              ) -> None:
    """Show a job, its result and every attempt."""
    with connect() as conn:
        job = client.show_job(conn, job_id)
    if json_out:
        print_json(job)
        return
    attempts = job.pop("attempts")
    for key, value in job.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)
    print_table(attempts, title=f"attempts of job {job_id}")


@app.command("retry")
def jobs_retry(job_id: int = typer.Argument(..., help="A dead or cancelled job's id."),
               json_out: bool = JSON) -> None:
    """Re-queue a dead or cancelled job with a fresh set of attempts."""
    with connect() as conn:
        state = client.retry(conn, job_id)
        conn.commit()
    print_json({"job_id": job_id, "state": state}) if json_out else console.print(
        f"[green]✓[/] job {job_id} is {state}")


@app.command("cancel")
def jobs_cancel(job_id: int = typer.Argument(..., help="A queued or running job's id."),
                json_out: bool = JSON) -> None:
    """Cancel a queued or running job (a running attempt's write-backs are then refused)."""
    with connect() as conn:
        state = client.cancel(conn, job_id)
        conn.commit()
    print_json({"job_id": job_id, "state": state}) if json_out else console.print(
        f"[green]✓[/] job {job_id} is {state}")


@app.command("enqueue")
def jobs_enqueue(
    kind: str = typer.Argument(..., help="Job kind (see `secinf jobs kinds`)."),
    project: str = typer.Option(..., "--project", "-p", help="Project as org/project."),
    payload: str = typer.Option("{}", help="Payload as a JSON object."),
    priority: int | None = typer.Option(None, help="Higher runs first (default: the plan's)."),
    max_attempts: int | None = typer.Option(None, min=1, max=1000, help="Default 5."),
    retry_delay: float | None = typer.Option(None, min=0.0,
                                             help="Backoff base in seconds (default 2)."),
    dedupe_key: str | None = typer.Option(None, help="At most one live job per key."),
    json_out: bool = JSON,
) -> None:
    """Queue a job after validating its payload against the kind's model."""
    try:
        data: Any = json.loads(payload)
    except ValueError as exc:
        raise UserError(f"--payload is not JSON ({exc}): pass an object like '{{\"a\": 1}}'"
                        ) from exc
    if not isinstance(data, dict):
        raise UserError("--payload must be a JSON object, e.g. '{\"message\": \"hi\"}'")
    registry.load_plugins()
    checked = registry.validate_enqueue(kind, data)
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        job_id = client.enqueue(
            conn, project_id, kind, checked, priority=priority, max_attempts=max_attempts,
            retry_delay=timedelta(seconds=retry_delay) if retry_delay is not None else None,
            dedupe_key=dedupe_key)
        conn.commit()
    print_json({"job_id": job_id, "kind": kind}) if json_out else console.print(
        f"[green]✓[/] queued job {job_id} ({kind})")


@app.command("kinds")
def jobs_kinds(json_out: bool = JSON) -> None:
    """List the declared job kinds and whether this install has their handler."""
    registry.load_plugins()
    rows = [{"kind": k.name, "handler": k.handler is not None, "timeout_s": k.timeout_s,
             "description": k.description} for k in registry.kinds().values()]
    print_json(rows) if json_out else print_table(rows, title="job kinds")
