"""`secinf shards list|add|place|projects|migrate`: the shard map (docs/scale.md)."""

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
    json_out: bool = JSON,
) -> None:
    """Add a shard (or change its conninfo): a migrated secinf database (`secinf db up`)."""
    row = shards.add_shard(name, conninfo)
    if json_out:
        print_json(row)
    else:
        console.print(f"[green]✓[/] shard [bold]{row['name']}[/] at {row['conninfo']}")


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
