"""`secinf project|keys|analysts …`: tenancy from the command line (admin connection)."""

from __future__ import annotations

import typer
from psycopg.conninfo import conninfo_to_dict

from workers import shards, tenancy
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.errors import UserError
from workers.settings import Settings, load_settings

project_app = typer.Typer(help="Organizations and projects.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke; rotate the JWT "
                            "signing secret.", no_args_is_help=True)
analysts_app = typer.Typer(help="Direct SQL logins for analysts.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON.")
PROJECT = typer.Option(..., "--project", "-p", help="Project as org/project (or its uuid).")


@project_app.command("create")
def project_create(
    org: str = typer.Option(..., help="Organization slug (created if missing)."),
    name: str = typer.Option(..., help="Project name."),
    slug: str | None = typer.Option(None, help="Project slug (default: from the name)."),
    plan: str = typer.Option("free", help="Plan of a new organization: free, team, enterprise."),
    shard: str | None = typer.Option(
        None, help="With a shard map (SECINF_SHARDS): the shard to create it on "
                   "(default: the one with the fewest projects)."),
    json_out: bool = JSON,
) -> None:
    """Create an organization (if new) and a project in it. Idempotent."""
    settings = load_settings()
    if settings.shards is None and shard is None:
        with connect(settings) as conn:
            row = tenancy.create_project(conn, org, name, slug, plan)
    else:
        row = shards.create_project(org, name, slug, plan, shard, settings)
    if json_out:
        print_json(row)
    else:
        where = f" on shard {row['shard']}" if "shard" in row else ""
        console.print(f"[green]✓[/] project [bold]{row['org']}/{row['slug']}[/] "
                      f"({row['project_id']}){where}")


@project_app.command("list")
def project_list(json_out: bool = JSON) -> None:
    """List projects (of every shard, with a shard map)."""
    settings = load_settings()
    if settings.shards is not None:
        rows = shards.list_projects(settings)
    else:
        with connect(settings) as conn:
            rows = tenancy.list_projects(conn)
    print_json(rows) if json_out else print_table(rows, title="projects")


@keys_app.command("create")
def keys_create(
    project: str = PROJECT,
    role: str = typer.Option(..., "--role", "-r",
                             help="customer, reviewer, analyst or project_admin."),
    expires: str | None = typer.Option(None, help="Lifetime (30d, 12h, 45m) or ISO timestamp."),
    label: str | None = typer.Option(None, help="A note to recognise the key by."),
    owner: str | None = typer.Option(
        None, help="The account (a member of the project) the key acts for: a key decides "
                   "candidates only with an owner, and then as that person."),
    json_out: bool = JSON,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    with connect() as conn:
        key = tenancy.create_key(conn, project, role, expires, label, owner)
    if json_out:
        print_json(key)
        return
    console.print(f"[green]✓[/] {role} key for {project} (prefix {key['lookup_prefix']}, "
                  f"expires {key['expires_at'] or 'never'}). Store it now; it is not shown again:")
    print(key["api_key"])


@keys_app.command("revoke")
def keys_revoke(prefix: str = typer.Argument(..., help="The key's lookup prefix (sik_…).")) -> None:
    """Revoke a key at once: tokens minted from it stop working too. With a shard map, on
    whichever shard holds it."""
    settings = load_settings()
    if settings.shards is None:
        with connect(settings) as conn:
            tenancy.revoke_key(conn, prefix)
    else:
        shards.revoke_key_anywhere(prefix, settings)
    console.print(f"[green]✓[/] revoked {prefix}")


@keys_app.command("list")
def keys_list(project: str = PROJECT, json_out: bool = JSON) -> None:
    """List a project's keys (never the keys themselves)."""
    with connect() as conn:
        rows = tenancy.list_keys(conn, project)
    print_json(rows) if json_out else print_table(rows, title=f"keys of {project}")


@keys_app.command("rotate-secret")
def keys_rotate_secret(
    yes: bool = typer.Option(False, "--yes", help="Confirm: tokens signed with the old "
                                                  "secret stop working."),
    json_out: bool = JSON,
) -> None:
    """Replace the JWT signing secret (after a restore, or a leak): new tokens are signed
    with a new secret; PostgREST must restart with it (PGRST_JWT_SECRET), and then tokens
    signed with the old one get 401. API keys are unaffected."""
    if not yes:
        raise UserError("rotating the signing secret ends every token issued so far once "
                        "PostgREST restarts with the new one (clients exchange their API key "
                        "again); repeat with --yes to confirm")
    with connect() as conn:
        rotated = tenancy.rotate_secret(conn)
    if json_out:
        print_json(rotated)
        return
    old = ", ".join(rotated["deactivated"]) or "none"
    console.print(f"[green]✓[/] new signing key {rotated['kid']} is active (deactivated: "
                  f"{old}). Now, at once: put `secinf db jwt-secret` into PGRST_JWT_SECRET "
                  "(docker/.env) and restart PostgREST: "
                  "docker compose -f docker/compose.yaml up -d postgrest")


def analyst_server(settings: Settings, host: str, port: int) -> tuple[str, int]:
    """Where analysts connect: the read replica of SECINF_READ_DSN when set (over TCP:
    a replica of the local cluster is reached on 127.0.0.1), else the primary."""
    if settings.read_dsn is None:
        return host, port
    params = conninfo_to_dict(settings.read_dsn)
    rhost = str(params.get("host") or "127.0.0.1")
    return ("127.0.0.1" if rhost.startswith("/") else rhost), int(params.get("port") or 5432)


@analysts_app.command("add")
def analysts_add(
    project: str = PROJECT,
    name: str = typer.Option(..., "--name", "-n", help="Analyst name (login analyst_<name>)."),
    json_out: bool = JSON,
) -> None:
    """Create an analyst login (or reuse it) scoped to the project, and say how to connect."""
    settings = load_settings()
    with connect(settings) as conn:
        login = tenancy.add_analyst(conn, project, name)
        host = conn.info.host if settings.dsn else "127.0.0.1"
        port = conn.info.port
    host, port = analyst_server(settings, host, port)
    dsn = f"host={host} port={port} dbname={settings.database} user={login.role_name}"
    if json_out:
        print_json({"role": login.role_name, "password": login.password, "dsn": dsn,
                    "project_id": login.project_id})
        return
    console.print(f"[green]✓[/] analyst login [bold]{login.role_name}[/] can read {project}.")
    if login.password:
        console.print("Password (shown once):")
        print(login.password)
    else:
        console.print("The login existed already; its password is unchanged.")
    on = " (the read replica of SECINF_READ_DSN)" if settings.read_dsn else ""
    console.print(f'Connect{on}: PGPASSWORD=… psql "{dsn}"', highlight=False)


@analysts_app.command("list")
def analysts_list(json_out: bool = JSON) -> None:
    """List analyst logins and their projects."""
    with connect() as conn:
        rows = tenancy.list_analysts(conn)
    print_json(rows) if json_out else print_table(rows, title="analysts")
