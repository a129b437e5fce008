"""`secinf retention …`, `secinf hold …`, `secinf erase`, `secinf subjects link` and
`secinf tombstones`: what a project keeps and for how long, legal holds, and erasure of one
actor (issue 19). The rules and the audit rows are the database's (sql/770-790_records_*.sql);
an operator's connection (the admin DSN) may act on any project."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from workers import tenancy
from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.errors import UserError
from workers.records import erasure, holds, retention
from workers.storage.factory import storage_from_settings

retention_app = typer.Typer(help="How long each category of a project's data is kept.",
                            no_args_is_help=True)
hold_app = typer.Typer(help="Legal holds: data retention keeps and erasure refuses.",
                       no_args_is_help=True)
subjects_app = typer.Typer(help="Subject hashes linked to tracks, for erasure.",
                           no_args_is_help=True)
PROJECT = typer.Option(..., "--project", "-p", help="Project as org/project.")
JSON = typer.Option(False, "--json", help="Print JSON.")
REASON = typer.Option(..., "--reason", help="Why (kept in the audit log, 3-500 characters).")


def _when(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"{flag} {text!r}: give an ISO time, e.g. 2026-03-01 or "
                        "2026-03-01T12:00:00Z") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# ---------------------------------------------------------------- retention
@retention_app.command("show")
def retention_show(project: str = PROJECT, json_out: bool = JSON) -> None:
    """Each category's retention for the project: the project's own or its plan's."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        rows = retention.retention_of(conn, project_id)
    if json_out:
        print_json({"project": project, "project_id": project_id, "retention": rows})
        return
    table = Table(title=f"retention of {project}")
    for col in ("category", "keep", "source", "set by", "set at", "reason", "what"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["category"], r["keep"] or "forever",
                      r["source"], r["set_by"] or "",
                      f"{r['set_at']:%Y-%m-%d}" if r["set_at"] else "",
                      escape(r["reason"] or ""), escape(r["description"]))
    console.print(table)


@retention_app.command("set")
def retention_set(
    category: str = typer.Argument(..., help="track_points, features, candidates, events, "
                                             "dataset_files or audit."),
    keep: str = typer.Option(..., "--keep", help="90d, 6mo, 2y, or 'forever'."),
    project: str = PROJECT, reason: str = REASON, json_out: bool = JSON,
) -> None:
    """Keep a category of the project's data this long (over its plan's default)."""
    value = retention.parse_keep(keep)
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        change = retention.set_retention(conn, project_id, category, value, reason)
    _changed(change, project, json_out)


@retention_app.command("clear")
def retention_clear(category: str = typer.Argument(...), project: str = PROJECT,
                    reason: str = REASON, json_out: bool = JSON) -> None:
    """Return a category to the plan's default."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        change = retention.set_retention(conn, project_id, category, None, reason, clear=True)
    _changed(change, project, json_out)


def _changed(change: dict[str, Any], project: str, json_out: bool) -> None:
    if json_out:
        print_json({"project": project, **change})
        return
    console.print(f"[green]✓[/] {project}: {change['category']} kept "
                  f"{change['keep'] or 'forever'} ({change['source']}; before: "
                  f"{change['before'] or 'forever'})", highlight=False)


@retention_app.command("run")
def retention_run(
    batch: int = typer.Option(50_000, "--batch", help="Rows per delete (one transaction each)."),
    at: str | None = typer.Option(None, "--at", help="Run as of this time instead of now "
                                                     "(see what a later run would take)."),
    json_out: bool = JSON,
) -> None:
    """Apply every project's retention now (what the nightly pg_cron job does)."""
    with connect() as conn, console.status("retention: dropping and deleting what expired"):
        result = retention.run(conn, batch=batch, at=_when(at, "--at"))
    if json_out:
        print_json(result)
        return
    if "run_id" not in result:
        console.print(f"[yellow]{result.get('skipped', 'nothing ran')}[/]")
        return
    table = Table(title=f"retention run {result['run_id']}: {result['rows']:,} rows, "
                        f"{result['chunks']} chunks in {result['seconds']} s")
    for col in ("project", "category", "table", "how", "cut-off", "rows", "chunks", "s"):
        table.add_column(col)
    for s in result["steps_detail"]:
        table.add_row(s["project"] or "(all)", s["category"], s["relation"], s["method"],
                      f"{s['cutoff']:%Y-%m-%d %H:%M}" if s["cutoff"] else "", f"{s['rows']:,}",
                      str(s["chunks"]), f"{s['seconds']:.2f}")
    console.print(table)


@retention_app.command("runs")
def retention_runs(limit: int = typer.Option(10, "--limit"), json_out: bool = JSON) -> None:
    """The last retention runs: when, how much, how long."""
    with connect() as conn:
        rows = retention.history(conn, limit)
    if json_out:
        print_json({"runs": rows})
        return
    table = Table(title="retention runs")
    for col in ("run", "started", "by", "status", "rows", "chunks", "held", "s", "error"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["run_id"]), f"{r['started_at']:%Y-%m-%d %H:%M:%S}", r["started_by"],
                      r["status"], f"{r['rows']:,}", str(r["chunks"]), str(r["held"]),
                      f"{r['seconds']:.2f}", escape(r["error"] or ""))
    console.print(table)


# ---------------------------------------------------------------- legal holds
@hold_app.command("set")
def hold_set(
    project: str = PROJECT, reason: str = REASON,
    source: str | None = typer.Option(None, "--source", help="Only this source (by name)."),
    from_ts: str | None = typer.Option(None, "--from", help="Only from this time (ISO)."),
    to_ts: str | None = typer.Option(None, "--to", help="Only until this time (ISO)."),
    json_out: bool = JSON,
) -> None:
    """Hold the project's data (or a source's, or a time range): retention keeps it and
    erasure refuses it until the hold is lifted."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        hold = holds.set_hold(conn, project_id, reason, source=source,
                              from_ts=_when(from_ts, "--from"), to_ts=_when(to_ts, "--to"))
    if json_out:
        print_json(hold)
        return
    console.print(f"[green]✓[/] legal hold {hold['hold_id']} on {project}"
                  f"{', source ' + source if source else ''}", highlight=False)


@hold_app.command("lift")
def hold_lift(hold_id: int = typer.Argument(...), project: str = PROJECT,
              reason: str = REASON, json_out: bool = JSON) -> None:
    """Lift a legal hold (the matter is closed)."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        hold = holds.lift_hold(conn, project_id, hold_id, reason)
    if json_out:
        print_json(hold)
        return
    console.print(f"[green]✓[/] legal hold {hold_id} lifted", highlight=False)


@hold_app.command("list")
def hold_list(project: str = PROJECT,
              all_: bool = typer.Option(False, "--all", help="Lifted holds too."),
              json_out: bool = JSON) -> None:
    """The project's legal holds."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        rows = holds.list_holds(conn, project_id, include_lifted=all_)
    if json_out:
        print_json({"project": project, "holds": rows})
        return
    table = Table(title=f"legal holds of {project}")
    for col in ("hold", "source", "from", "to", "reason", "set by", "set at", "lifted"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["hold_id"]), r["source"] or "(all)",
                      f"{r['from_ts']:%Y-%m-%d %H:%M}" if r["from_ts"] else "",
                      f"{r['to_ts']:%Y-%m-%d %H:%M}" if r["to_ts"] else "",
                      escape(r["reason"]), r["set_by"], f"{r['set_at']:%Y-%m-%d}",
                      "" if r["active"] else f"{r['lifted_at']:%Y-%m-%d} by {r['lifted_by']}")
    console.print(table)


# ---------------------------------------------------------------- erasure
def erase_command(
    project: str = PROJECT, reason: str = REASON,
    source: str | None = typer.Option(None, "--source", help="The track's source (by name)."),
    track: str | None = typer.Option(None, "--track", help="The track id, as ingested."),
    subject: str | None = typer.Option(None, "--subject",
                                       help="A subject hash: every track linked to it."),
    queue: bool = typer.Option(False, "--queue", help="Leave it to a worker (an erase_subject "
                                                      "job) instead of running it here."),
    json_out: bool = JSON,
) -> None:
    """Erase one actor from points, features, candidates, events and unpublished datasets;
    published dataset versions holding it are marked superseded. A tombstone keeps what
    was deleted (never the data) for 7 years."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        stone = erasure.request(conn, project_id, reason, source=source, track=track,
                                subject=subject)
        tid = int(stone["tombstone_id"])
        if queue:
            job_id = erasure.enqueue(conn, project_id, tid)
            if json_out:
                print_json({"tombstone_id": tid, "job_id": job_id, "status": "queued"})
            else:
                console.print(f"erasure {tid} queued as job {job_id} (`secinf jobs show "
                              f"{job_id}` follows it)", highlight=False)
            return
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(),
                      console=console, disable=json_out) as bar:
            task = bar.add_task(f"erasing {len(stone['tracks'])} track(s)", total=None, rows=0)

            def step(got: dict[str, Any]) -> None:
                done = sum(int(v) for v in (got.get("counts") or {}).values())
                bar.update(task, rows=done,
                           description=f"erasing: {got.get('relation') or 'datasets'}")

            final = erasure.run(conn, tid, store=storage_from_settings(), progress=step)
    if json_out:
        print_json(final)
        return
    _tombstone_report(final)


def _tombstone_report(t: dict[str, Any]) -> None:
    console.print(f"[green]✓[/] erasure {t['tombstone_id']} done: "
                  f"{t['subject_kind']} {escape(t['subject'])}, {len(t['tracks'])} track(s)",
                  highlight=False)
    for table, n in sorted((t["counts"] or {}).items()):
        console.print(f"  {table:28} {int(n):>10,} rows", highlight=False)
    for v in t["versions_superseded"] or []:
        console.print(f"  [yellow]superseded[/] dataset {v['dataset']}@{v['version']} (published; "
                      "export a new version)", highlight=False)
    for v in t["versions_deleted"] or []:
        console.print(f"  deleted unpublished dataset {v['dataset']}@{v['version']} "
                      f"({v['status']})", highlight=False)
    console.print(f"  tombstone kept until {t['keep_until']:%Y-%m-%d}", highlight=False)


def tombstones_command(project: str = PROJECT, limit: int = typer.Option(50, "--limit"),
                       json_out: bool = JSON) -> None:
    """The project's erasures: what was asked, by whom, why, and what went."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        rows = erasure.list_tombstones(conn, project_id, limit)
    if json_out:
        print_json({"project": project, "tombstones": rows})
        return
    table = Table(title=f"erasures of {project}")
    for col in ("id", "kind", "subject", "tracks", "status", "rows", "superseded", "by",
                "requested", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["tombstone_id"]), r["subject_kind"], escape(r["subject"]),
                      str(r["tracks"]), r["status"],
                      f"{sum(int(v) for v in (r['counts'] or {}).values()):,}",
                      str(len(r["versions_superseded"] or [])), r["requested_by"],
                      f"{r['requested_at']:%Y-%m-%d %H:%M}", escape(r["reason"]))
    console.print(table)


@subjects_app.command("link")
def subjects_link(
    file: Path = typer.Argument(..., help="CSV with columns source, track_id, subject."),
    project: str = PROJECT, json_out: bool = JSON,
) -> None:
    """Link subject hashes to tracks (all or nothing): `secinf erase --subject` then erases
    every track of one."""
    links = erasure.read_links(file)
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        added = erasure.link_subjects(conn, project_id, links)
    if json_out:
        print_json({"links": len(links), "added": added})
        return
    console.print(f"[green]✓[/] {added} of {len(links)} link(s) added", highlight=False)
