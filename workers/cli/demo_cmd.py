"""`secinf demo`: the main job on the embedded default scene, end to end.

Database up → demo organization and project → a simulated `plaza` scene with ground truth →
ingest → pipeline until idle → what each stage produced → how to look at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from workers import tenancy
from workers.cli.db_cmd import bring_up
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.ingest import IngestRequest, ingest
from workers.pipeline.runner import tick
from workers.settings import REPO_ROOT, load_settings
from workers.simulate import preset_config, simulate, write_outputs

DEMO_ORG = "demo"
DEMO_PROJECT = "plaza"
DEMO_SEED = 7
DEMO_SOURCE = f"plaza-{DEMO_SEED}"

EXAMPLE_QUERIES = """\
  -- as admin: what the pipeline derived
  SELECT track_id, ts, speed, heading FROM features.kinematics ORDER BY ts LIMIT 5;
  SELECT zone_name, track_id, entered_at, left_at FROM features.zone_presence LIMIT 5;
  -- what a customer sees through the API (PostgREST runs each request exactly like this)
  BEGIN; SET LOCAL ROLE customer;
  SELECT set_config('request.jwt.claims', '{{"role":"customer","project_id":"{pid}"}}', true);
  SELECT * FROM api.projects; ROLLBACK;"""

FEATURE_COUNTS = """
SELECT (SELECT count(*) FROM ingest.track_points WHERE source_id = %(s)s) AS track_points,
       (SELECT count(*) FROM features.kinematics WHERE source_id = %(s)s) AS kinematics,
       (SELECT count(*) FROM features.zone_presence WHERE source_id = %(s)s) AS zone_presence,
       (SELECT count(*) FROM features.relations WHERE source_id = %(s)s) AS relations,
       (SELECT count(*) FROM features.change_points WHERE source_id = %(s)s) AS change_points
"""


def run_demo(out_dir: Path) -> dict[str, Any]:
    """Run every stage that exists on the demo scene; returns what each produced."""
    settings = load_settings()
    with console.status("database…"):
        info = bring_up(settings)
    with connect(settings) as conn:
        project = tenancy.create_project(conn, DEMO_ORG, DEMO_PROJECT)
        ref = f"{DEMO_ORG}/{DEMO_PROJECT}"
        key = tenancy.create_key(conn, ref, "customer", "30d", "demo")

        with console.status("simulating the plaza scene…"):
            result = simulate(preset_config("plaza", seed=DEMO_SEED))
            files = write_outputs(result, out_dir)
        with console.status("ingesting…"):
            summary = ingest(conn, IngestRequest(project=ref, source=DEMO_SOURCE,
                                                 path=files["parquet"], scene=files["scene"]))
        with console.status("running the pipeline until idle…"):
            report = tick(conn, until_idle=True)
        source = conn.execute("SELECT source_id FROM ingest.sources WHERE project_id = %s "
                              "AND name = %s", (project["project_id"], DEMO_SOURCE)).fetchone()
        assert source is not None
        counts = conn.execute(FEATURE_COUNTS, {"s": source["source_id"]}).fetchone()
    return {
        "database": info, "project": project, "customer_key": key["api_key"],
        "customer_key_prefix": key["lookup_prefix"], "files": {k: str(v) for k, v in files.items()},
        "truth_events": len(result.truth["events"]) if isinstance(result.truth, dict)
        else None,
        "ingest": summary.as_json(), "tick": report.as_dict(), "features": dict(counts or {}),
    }


def demo_command(
    out: Path = typer.Option(REPO_ROOT / "out" / "demo", help="Where the scene files go."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Set up the database and run the whole product on the built-in demo scene."""
    res = run_demo(out)
    if json_out:
        res.pop("customer_key")
        print_json(res)
        return
    pid = res["project"]["project_id"]
    console.rule("[bold]secinf demo")
    console.print(f"project [bold]{DEMO_ORG}/{DEMO_PROJECT}[/] · id {pid}")
    console.print(f"scene {DEMO_SOURCE}: files in {out}")
    ing = res["ingest"]
    dup = " (already ingested: duplicate batch)" if ing.get("duplicate_batch") else ""
    console.print(f"ingest: {ing['rows_total']:,} rows, {ing['inserted']:,} inserted, "
                  f"{ing['invalid']:,} invalid{dup}")
    tk = res["tick"]
    console.print(f"pipeline: {tk['ticks']} tick(s), {tk['points']:,} points in "
                  f"{tk['seconds']:.1f} s, errors: {len(tk['errors'])}")
    print_table([res["features"]], title="feature rows for the demo scene")
    conninfo = res["database"]["conninfo"]
    console.print(f'connect:  [bold]secinf db psql[/]   or   psql "{conninfo}"')
    console.print(f"customer API key (30 days, shown once): {res['customer_key']}")
    console.print("example queries:")
    console.print(EXAMPLE_QUERIES.format(pid=pid), markup=False, highlight=False)
