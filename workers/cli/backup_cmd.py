"""`secinf db backup|backups|restore`: pgBackRest backups and point-in-time restore of the
project's cluster (workers/db/backup.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from workers.cli.output import console, err_console, print_json, print_table
from workers.db import backup as bk
from workers.db.archiving import STANZA, backup_paths
from workers.errors import UserError
from workers.settings import load_settings

JSON = typer.Option(False, "--json", help="Print JSON.")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@contextmanager
def _progress(description: str) -> Iterator[tuple[Callable[[float], None],
                                                  Callable[[str], None]]]:
    """A progress bar on stderr: (set percentage, set description)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TaskProgressColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task(description, total=100.0)
        yield (lambda pct: bar.update(task, completed=pct),
               lambda text: bar.update(task, description=text))
        bar.update(task, completed=100.0)


def backup_cmd(
    kind: str = typer.Option("incr", "--type",
                             help="full, diff or incr (the first backup is always full)."),
    restart: bool = typer.Option(False, "--restart",
                                 help="If archive_mode is still off, restart the cluster "
                                      "once to switch it on (cuts every connection)."),
    json_out: bool = JSON,
) -> None:
    """Back up the project's cluster with pgBackRest (WAL archived continuously).

    Sets up the stanza on first use: its configuration under <home>/pgbackrest, the
    repository (SECINF_BACKUP_REPO, default <home>/backups), the server's archive_command.
    """
    settings = load_settings()
    if kind not in bk.BACKUP_TYPES:
        raise UserError(f"--type {kind!r}: use one of {', '.join(bk.BACKUP_TYPES)}")
    if not settings.managed:
        err_console.print(
            "SECINF_DSN is set: secinf backs up only the cluster it runs itself. Backups of "
            "an external server are that server's operator's job; a pgBackRest "
            "configuration they could use follows.", highlight=False)
        print(bk.external_config(settings), end="")
        raise typer.Exit(2)
    with err_console.status("configuring pgBackRest and WAL archiving…"):
        pgbr, notes = bk.prepare(settings, restart=restart)
    for note in notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    with _progress(f"{kind} backup (checking WAL archiving first)") as (pct, _):
        done = bk.backup(pgbr, kind, progress=pct)
    if json_out:
        print_json({**done.row(), "repo": str(pgbr.paths.repo)})
        return
    took = (done.stopped - done.started).total_seconds()
    console.print(f"[green]✓[/] {done.type} backup [bold]{done.label}[/] · database "
                  f"{_size(done.size)} · stored {_size(done.repo_size)} · {took:.0f} s · "
                  f"repository {pgbr.paths.repo}", highlight=False)


def backups_cmd(json_out: bool = JSON) -> None:
    """List the backups in the repository (from `pgbackrest info --output=json`)."""
    settings = load_settings()
    with err_console.status("reading the repository…"):
        stanza = bk.info(settings)
    sets = bk.parse_backups(stanza)
    archive = (stanza.get("archive") or [{}])[-1]
    status = stanza.get("status", {})
    if not sets and status.get("code", 0) != 0 and not json_out:
        console.print(f"no backups in {backup_paths(settings).repo} "
                      f"({status.get('message', '?')}): run `secinf db backup`",
                      highlight=False)
        return
    if json_out:
        print_json({"repo": str(backup_paths(settings).repo),
                    "status": status.get("message"),
                    "wal_min": archive.get("min"), "wal_max": archive.get("max"),
                    "backups": [b.row() for b in sets]})
        return
    print_table([{**b.row(), "size": _size(b.size), "repo_size": _size(b.repo_size)}
                 for b in sets],
                title=f"backups in {backup_paths(settings).repo}",
                columns=["label", "type", "started", "stopped", "size", "repo_size", "prior",
                         "wal_start", "wal_stop"])
    console.print(f"stanza {STANZA}: {status.get('message', '?')} · archived WAL "
                  f"{archive.get('min') or '—'} … {archive.get('max') or '—'}",
                  highlight=False)


def restore_cmd(
    to: str = typer.Option(..., "--to",
                           help="Recover to this time (ISO 8601 with a zone, e.g. "
                                "'2026-05-01 12:00:00+00')."),
    target_dir: Path | None = typer.Option(
        None, "--target-dir",
        help="Home of the restored cluster (data in DIR/pg15; default <home>/restore-TIME)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535,
                                    help="Port of the restored cluster (default: the first "
                                         "free one above the cluster's)."),
    in_place: bool = typer.Option(False, "--in-place",
                                  help="Restore over the project's own data directory "
                                       "(stopped with `secinf db down` first)."),
    yes: bool = typer.Option(False, "--yes",
                             help="Confirm --in-place: the cluster's data after --to is lost."),
    json_out: bool = JSON,
) -> None:
    """Point-in-time restore into a second cluster (or, --in-place --yes, over this one),
    started and promoted on its own port."""
    settings = load_settings()
    target = bk.parse_time(to)
    if in_place and not yes:
        raise UserError(f"--in-place replaces {settings.pgdata} with its state at "
                           f"{target.isoformat()}: everything after that is lost. Repeat "
                           "with --yes to confirm")
    if in_place and (target_dir or port):
        raise UserError("--in-place restores into the cluster's own directory and port: "
                           "leave out --target-dir and --port")
    with _progress("preparing the restore") as (pct, step):
        done = bk.restore(settings, target, target_home=target_dir, port=port,
                          in_place=in_place, progress=pct, on_step=step)
    if json_out:
        print_json({"home": done.home, "pgdata": done.pgdata, "port": done.port,
                    "conninfo": done.conninfo, "backup": done.backup, "target": done.target,
                    "in_place": done.in_place})
        return
    console.print(f"[green]✓[/] restored {done.backup} to {done.target.isoformat()} "
                  f"into {done.pgdata}, running on port [bold]{done.port}[/]", highlight=False)
    if not done.in_place:
        console.print(
            f"  psql '{done.conninfo}'\n"
            f"  manage it: SECINF_HOME={done.home} SECINF_PORT={done.port} secinf db status"
            f" | down\n"
            "  it runs the cron jobs of sql/ like any secinf cluster; before PostgREST "
            "serves it, rotate the JWT secret (docs/operations.md, 'Restore')",
            highlight=False)


def register(app: typer.Typer) -> None:
    """Add the backup commands to `secinf db`."""
    app.command("backup")(backup_cmd)
    app.command("backups")(backups_cmd)
    app.command("restore")(restore_cmd)
