"""`secinf db …`: the project's Postgres (or the server in SECINF_DSN)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import typer

from workers.cli import backup_cmd, replica_cmd
from workers.cli.output import console, print_json, print_table
from workers.db import migrate as migrations
from workers.db import replica as replicas
from workers.db.checks import (
    analyst_limit_problems,
    analyst_limits,
    check_server,
    require_server,
)
from workers.db.cluster import LocalCluster
from workers.db.connect import connect
from workers.errors import UserError
from workers.records import retention
from workers.settings import Settings, load_settings
from workers.tenancy import jwt_secret

app = typer.Typer(help="Manage the database: cluster, migrations, checks, backups.",
                  no_args_is_help=True)


def _ensure_database(settings: Settings) -> bool:
    """Create the application database in the local cluster if it is missing."""
    with connect(settings, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.dbname,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{settings.dbname}"')
            return True
    return False


def bring_up(settings: Settings, quiet: bool = False) -> dict[str, Any]:
    """Start (managed) or reach (SECINF_DSN) the server, check it, migrate, apply sql/."""
    started = created = False
    if settings.managed:
        cluster = LocalCluster(settings)
        started = cluster.start()
        created = _ensure_database(settings)
    with connect(settings) as conn:
        require_server(conn)
    report = migrations.migrate(settings.conninfo())
    return {
        "managed": settings.managed, "started": started, "database_created": created,
        "migrations_applied": report.applied, "sql_files": len(report.sql_files),
        "conninfo": settings.conninfo(),
    }


@app.command()
def up(json_out: bool = typer.Option(False, "--json", help="Print a JSON summary.")) -> None:
    """Start the cluster (unless SECINF_DSN is set), apply migrations and sql/."""
    settings = load_settings()
    with console.status("bringing the database up…"):
        info = bring_up(settings)
    if json_out:
        print_json(info)
        return
    where = "local cluster" if settings.managed else "SECINF_DSN server"
    console.print(f"[green]✓[/] {where} ready · {len(info['migrations_applied'])} migration(s) "
                  f"applied · {info['sql_files']} sql/ files · [bold]{info['conninfo']}[/]")


@app.command()
def down() -> None:
    """Stop the project's cluster (nothing to do with SECINF_DSN)."""
    settings = load_settings()
    if not settings.managed:
        raise UserError("SECINF_DSN is set: secinf does not stop servers it did not start.")
    stopped = LocalCluster(settings).stop()
    console.print("[green]✓[/] stopped" if stopped else "not running")


@app.command()
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Cluster state, pending migrations, extension check, cron jobs and what of the analyst
    limits does not hold."""
    settings = load_settings()
    info: dict[str, Any] = {"managed": settings.managed, "database": settings.database}
    if settings.managed:
        st = LocalCluster(settings).status()
        info.update(initialised=st.initialised, running=st.running, pgdata=str(st.pgdata),
                    port=st.port)
        if not st.running:
            if json_out:
                print_json(info)
            else:
                console.print(f"cluster at {st.pgdata}: [red]not running[/] "
                              "(start it with `secinf db up`)")
            raise typer.Exit(3)
    with connect(settings) as conn:
        check = check_server(conn)
        info["missing_extensions"] = list(check.missing_extensions)
        info["missing_preload"] = check.missing_preload
        info["cron_database"] = check.cron_database
        has_cron = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'"
        ).fetchone()
        info["cron_jobs"] = (
            [dict(r) for r in conn.execute(
                "SELECT jobname, schedule, active FROM cron.job ORDER BY jobname").fetchall()]
            if has_cron else []
        )
        info["analyst_limits"] = analyst_limits(conn)
        info["retention"] = _retention_status(conn)
        info["replication"] = replicas.primary_view(conn)
    info["analyst_limit_problems"] = analyst_limit_problems(info["analyst_limits"])
    info["pending_migrations"] = migrations.pending(settings.conninfo())
    if json_out:
        print_json(info)
        return
    console.print(f"database [bold]{settings.database}[/] · pending migrations: "
                  f"{len(info['pending_migrations'])} · missing extensions: "
                  f"{info['missing_extensions'] or 'none'} · cron in: {info['cron_database']}")
    if info["cron_jobs"]:
        print_table(info["cron_jobs"], title="cron jobs")
    for line in info["analyst_limit_problems"]:
        console.print(f"[yellow]analyst limits:[/] {line}", highlight=False)
    last = info["retention"]["last_run"]
    console.print("retention: " + (
        "never run (pg_cron runs it nightly; `secinf retention run` runs it now)" if last is None
        else f"last run {last['run_id']} {last['status']} at {last['started_at']:%Y-%m-%d %H:%M} "
             f"UTC: {last['rows']:,} rows, {last['chunks']} chunks in {last['seconds']:.1f} s"
             + (f" ({last['error']})" if last["error"] else "")
        ) + f" · active legal holds: {info['retention']['active_holds']}", highlight=False)
    for r in info["replication"]:
        lag = "?" if r["replay_lag_seconds"] is None else f"{r['replay_lag_seconds']:.1f} s"
        console.print(f"replica {r['application_name']}: {r['state']} · lag "
                      f"{r['lag_bytes'] or 0:,} B, {lag} (`secinf db replica status`)",
                      highlight=False)


def _retention_status(conn: Any) -> dict[str, Any]:
    """The last retention run and the number of active legal holds (`secinf retention
    runs` has more)."""
    runs = retention.history(conn, 1)
    held = conn.execute("SELECT count(*) AS n FROM records.holds WHERE lifted_at IS NULL"
                        ).fetchone()
    return {"last_run": runs[0] if runs else None,
            "active_holds": int(held["n"] if isinstance(held, dict) else held[0])}


@app.command()
def migrate(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Apply pending migrations, then re-apply every sql/ file."""
    settings = load_settings()
    with connect(settings) as conn:
        require_server(conn)
    report = migrations.migrate(settings.conninfo())
    if json_out:
        print_json({"applied": report.applied, "sql_files": report.sql_files})
        return
    console.print(f"[green]✓[/] applied {report.applied or 'no new migrations'}; "
                  f"re-applied {len(report.sql_files)} sql/ files")


@app.command()
def rollback(steps: int = typer.Option(1, min=1, help="How many migrations to undo.")) -> None:
    """Roll back the newest migrations (their .rollback.sql files)."""
    settings = load_settings()
    undone = migrations.rollback_migrations(settings.conninfo(), steps)
    console.print(f"[yellow]rolled back[/] {undone or 'nothing'}")


@app.command()
def check() -> None:
    """Check that the server has the extensions and preloads secinf needs."""
    settings = load_settings()
    with connect(settings) as conn:
        result = require_server(conn)
    console.print(f"[green]✓[/] all extensions available; pg_cron runs in "
                  f"database {result.cron_database!r}")


@app.command()
def psql() -> None:
    """Open psql on the application database as the admin."""
    settings = load_settings()
    exe = shutil.which("psql")
    if exe is None:
        raise UserError("psql not found: apt-get install postgresql-client-15")
    os.execv(exe, [exe, settings.conninfo()])


@app.command()
def destroy(yes: bool = typer.Option(False, "--yes", help="Really delete all data.")) -> None:
    """Stop the project's cluster and delete its data directory (all data is lost)."""
    settings = load_settings()
    if not settings.managed:
        raise UserError("SECINF_DSN is set: secinf never deletes a server it did not create.")
    if not yes:
        raise UserError(f"this deletes {settings.pgdata} and every database in it; "
                        "repeat with --yes to confirm")
    LocalCluster(settings).destroy()
    console.print(f"[yellow]deleted[/] {settings.pgdata}")


@app.command("jwt-secret")
def jwt_secret_cmd() -> None:
    """Print the JWT secret PostgREST must use (PGRST_JWT_SECRET)."""
    with connect() as conn:
        print(jwt_secret(conn))


backup_cmd.register(app)  # backup, backups, restore (pgBackRest): workers/cli/backup_cmd.py
app.add_typer(replica_cmd.app, name="replica")  # workers/cli/replica_cmd.py
