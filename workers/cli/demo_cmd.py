"""`secinf demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

import typer

from workers import tenancy
from workers.cli.db_cmd import bring_up
from workers.cli.output import console
from workers.db.connect import connect
from workers.settings import load_settings

DEMO_ORG = "demo"
DEMO_PROJECT = "plaza"

EXAMPLE_QUERIES = """\
  -- projects and keys (as admin)
  SELECT * FROM api.projects;
  SELECT lookup_prefix, role, expires_at FROM core.api_keys;
  -- what a customer sees through the API (PostgREST does exactly this per request)
  BEGIN; SET LOCAL ROLE customer;
  SELECT set_config('request.jwt.claims', '{{"role":"customer","project_id":"{pid}"}}', true);
  SELECT * FROM api.projects; ROLLBACK;"""


def demo_command(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Set up the database and run the whole product on the built-in demo scene."""
    settings = load_settings()
    with console.status("database…"):
        info = bring_up(settings)
    with connect(settings) as conn:
        project = tenancy.create_project(conn, DEMO_ORG, DEMO_PROJECT)
        key = tenancy.create_key(conn, f"{DEMO_ORG}/{DEMO_PROJECT}", "customer", "30d", "demo")
    if json_out:
        from workers.cli.output import print_json

        print_json({"database": info, "project": project,
                    "customer_key_prefix": key["lookup_prefix"]})
        return
    console.rule("[bold]secinf demo")
    console.print(f"project [bold]{DEMO_ORG}/{DEMO_PROJECT}[/] · id {project['project_id']}")
    console.print(f"connect:  [bold]secinf db psql[/]   or   psql \"{info['conninfo']}\"")
    console.print(f"customer API key (30 days, shown once): {key['api_key']}")
    console.print("example queries:")
    console.print(EXAMPLE_QUERIES.format(pid=project["project_id"]), markup=False)
