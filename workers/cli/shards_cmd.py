"""`secinf shards list|add|replica|place|projects|migrate`: the shard map (docs/scale.md)."""

from __future__ import annotations

import typer

from workers import shards
from workers.cli.output import console, print_json, print_table
from workers.db import migrate as migrations
from workers.errors import UserError
from workers.settings import load_settings

app = typer.Typer(help="Tenant shards: which cluster holds which project (SECINF_SHARDS).",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")


@app.command("list")
def list_command(json_out: bool = JSON) -> None:
    """The shards, in the order added, with their project counts."""
    rows = shards.list_shards()
    print_json(rows) if json_out else print_table(rows, title="shards")


@app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Shard name (e.g. eu-1)."),
    conninfo: str = typer.Argument(..., help="libpq conninfo of the shard's secinf database "
                                             "(an admin login; passwords belong in ~/.pgpass)."),
    read_conninfo: str | None = typer.Option(
        None, "--read-conninfo", help="libpq conninfo of the shard's read replica (a hot "
        "standby): its projects' read-only work goes there. Default: keep the one it has."),
    api_url: str | None = typer.Option(
        None, "--api-url", help="Base URL of the shard's PostgREST, for `secinf route` "
        "(e.g. http://postgrest-eu-1:3000). Default: keep the one it has."),
    files_url: str | None = typer.Option(
        None, "--files-url", help="Base URL of the shard's file service, for `secinf route` "
        "(e.g. http://files-eu-1:8600). Default: keep the one it has."),
    read_api_url: str | None = typer.Option(
        None, "--read-api-url", help="Base URL of a read-only PostgREST on the shard's "
        "replica: `secinf route` sends the shard's API GET and HEAD requests there (e.g. "
        "http://postgrest-eu-1-replica:3000). Default: keep the one it has."),
    json_out: bool = JSON,
) -> None:
    """Add a shard (or change it): a migrated secinf database (`secinf db up`), with its
    read replica and HTTP upstreams if given."""
    row = shards.add_shard(name, conninfo, read_conninfo=read_conninfo, api_url=api_url,
                           files_url=files_url, read_api_url=read_api_url)
    if json_out:
        print_json(row)
    else:
        console.print(f"[green]✓[/] shard [bold]{row['name']}[/] at {row['conninfo']}"
                      + (f", reads at {row['read_conninfo']}" if row["read_conninfo"] else "")
                      + (f", API {row['api_url']}" if row["api_url"] else "")
                      + (f", files {row['files_url']}" if row["files_url"] else "")
                      + (f", API reads {row['read_api_url']}" if row["read_api_url"] else ""),
                      highlight=False)


@app.command("replica")
def replica_command(
    name: str = typer.Argument(..., help="Shard name."),
    conninfo: str | None = typer.Argument(
        None, help="libpq conninfo of the shard's read replica (a hot standby of it). "
                   "Omitted: the shard has no replica, its reads go to its primary."),
    api_url: str | None = typer.Option(
        None, "--api-url", help="Base URL of the replica's read-only PostgREST: `secinf "
        "route` sends the shard's API GET and HEAD requests there. Omitted: they go to "
        "the shard's PostgREST."),
    json_out: bool = JSON,
) -> None:
    """Send a shard's read-only work to its read replica (or, without CONNINFO, back to
    the shard itself)."""
    row = shards.set_replica(name, conninfo, read_api_url=api_url)
    if json_out:
        print_json(row)
    elif row["read_conninfo"]:
        console.print(f"[green]✓[/] shard [bold]{name}[/] reads at {row['read_conninfo']}"
                      + (f", API reads at {row['read_api_url']}" if row["read_api_url"]
                         else ""), highlight=False)
    else:
        console.print(f"[green]✓[/] shard [bold]{name}[/] has no replica: its reads go to "
                      f"{row['conninfo']}", highlight=False)


@app.command("place")
def place_command(
    project: str = typer.Argument(..., help="org/project, before it is created."),
    shard: str | None = typer.Argument(None, help="Shard (default: the least loaded)."),
    json_out: bool = JSON,
) -> None:
    """Place a project that does not exist yet; `secinf project create` then creates it
    there. (A project that exists keeps its shard: moving it is a shard move.)"""
    org, sep, slug = project.partition("/")
    if not sep or not org or not slug:
        raise UserError(f"{project!r}: name the project as org/project")
    placed = shards.place(org, slug, shard)
    if json_out:
        print_json({"org": placed.org, "project": placed.project, "shard": placed.shard.name,
                    "project_id": placed.project_id})
    else:
        console.print(f"[green]✓[/] {placed.org}/{placed.project} → shard "
                      f"[bold]{placed.shard.name}[/]")


@app.command("projects")
def projects_command(json_out: bool = JSON) -> None:
    """Every placement: org/project → shard (and the project's id once created)."""
    rows = shards.placements()
    print_json(rows) if json_out else print_table(rows, title="placements")


@app.command("migrate")
def migrate_command(json_out: bool = JSON) -> None:
    """Apply migrations and sql/ on every shard (`secinf db up` does one server)."""
    done = []
    for shard in shards.shards(load_settings()):
        report = migrations.migrate(shard.conninfo)
        done.append({"shard": shard.name, "migrations_applied": report.applied,
                     "sql_files": len(report.sql_files)})
        if not json_out:
            console.print(f"[green]✓[/] {shard.name}: {len(report.applied)} migration(s), "
                          f"{len(report.sql_files)} sql/ files")
    if json_out:
        print_json(done)
