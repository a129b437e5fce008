"""`secinf jobs list|show|retry|replay|cancel|enqueue`: the work queue from the command line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from workers import tenancy
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.errors import UserError
from workers.queue import client, registry

app = typer.Typer(help="The work queue: list, show, retry, replay, cancel, enqueue.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")
STATES = ("queued", "running", "succeeded", "dead", "cancelled")
_AGO = re.compile(r"^(\d+)\s*([dhm])$")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now (7d, 12h, 30m) or an ISO timestamp (UTC if no
    zone is given)."""
    m = _AGO.match(value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        step = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}
        return (now or datetime.now(UTC)) - step[unit]
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise UserError(f"--since {value!r} is neither a duration (7d, 12h, 30m) nor an ISO "
                        "timestamp (2026-05-01T12:00:00+00:00)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


@app.command("replay")
def jobs_replay(
    state: str = typer.Option("dead", help="Replay jobs in this state: dead or cancelled."),
    kind: str | None = typer.Option(None, help="Only this job kind."),
    project: str | None = typer.Option(None, "--project", "-p", help="Only this org/project."),
    since: str | None = typer.Option(None, help="Only jobs that ended since: 7d, 12h, 30m or "
                                                "an ISO timestamp."),
    limit: int = typer.Option(1000, min=1, max=100_000, help="Oldest first, at most this many."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Show what would be replayed; change nothing."),
    json_out: bool = JSON,
) -> None:
    """Re-queue dead letters in bulk (each with a fresh set of attempts, as `retry` does),
    in one transaction. Fix the cause first: a replayed job fails again the same way."""
    since_at = parse_since(since) if since is not None else None
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project) if project else None
        rows = client.replay(conn, state=state, kind=kind, project_id=project_id,
                             since=since_at, limit=limit)
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    if json_out:
        print_json({"dry_run": dry_run, "replayed": [] if dry_run else rows,
                    "would_replay": rows if dry_run else []})
        return
    if not rows:
        console.print(f"no {state} jobs match: nothing to replay")
        return
    print_table([{**r, "state": "(would be queued)" if dry_run else r["state"]} for r in rows],
                title=f"{'would replay' if dry_run else 'replayed'} {len(rows)} {state} job(s)",
                columns=["job_id", "kind", "finished_at", "last_error", "state"])
    if not dry_run:
        console.print(f"[green]✓[/] {len(rows)} job(s) queued again"
                      + (f" (at most --limit {limit}: run again for more)"
                         if len(rows) == limit else ""))


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
