"""The `secinf` console script: one verb per job (see README)."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from workers import shards
from workers.cli import (
    accounts_cmd,
    analytics_cmd,
    audit_cmd,
    datasets_cmd,
    db_cmd,
    jobs_cmd,
    models_cmd,
    records_cmd,
    review_cmd,
    rules_cmd,
    shards_cmd,
    tenancy_cmd,
    truth_cmd,
    usage_cmd,
)
from workers.cli.bench_cmd import bench_app
from workers.cli.demo_cmd import demo_command
from workers.cli.ingest_cmd import ingest_command
from workers.cli.output import err_console
from workers.cli.pipeline_cmd import pipeline_app, tick_command
from workers.cli.route_cmd import route_command
from workers.cli.scoring_cmd import train_command
from workers.cli.serve_cmd import serve_command
from workers.cli.simulate_cmd import simulate_command
from workers.errors import SecinfError
from workers.worker_main import worker_command

app = typer.Typer(
    help="secinf: secondary inference on object tracks, in Postgres.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# In the order of the flow: platform, tenancy, data in, pipeline, rules, model, queue, tools.
app.add_typer(db_cmd.app, name="db")
app.add_typer(tenancy_cmd.project_app, name="project")
app.add_typer(shards_cmd.app, name="shards")
app.add_typer(tenancy_cmd.keys_app, name="keys")
app.add_typer(tenancy_cmd.analysts_app, name="analysts")
app.add_typer(accounts_cmd.accounts_app, name="accounts")
app.add_typer(review_cmd.review_app, name="review")
app.command("simulate")(simulate_command)
app.command("ingest")(ingest_command)
app.command("tick")(tick_command)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(rules_cmd.app, name="rules")
app.command("evaluate")(rules_cmd.evaluate_command)
app.command("tune")(rules_cmd.tune_command)
app.add_typer(truth_cmd.app, name="truth")
app.command("train")(train_command)
app.add_typer(models_cmd.app, name="models")
app.command("worker")(worker_command)
app.add_typer(jobs_cmd.app, name="jobs")
app.add_typer(usage_cmd.usage_app, name="usage")
app.add_typer(usage_cmd.quotas_app, name="quotas")
app.command("export")(datasets_cmd.export_command)
app.add_typer(datasets_cmd.app, name="datasets")
app.command("serve")(serve_command)
app.command("route")(route_command)
app.add_typer(analytics_cmd.app, name="analytics")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(records_cmd.retention_app, name="retention")
app.add_typer(records_cmd.hold_app, name="hold")
app.command("erase")(records_cmd.erase_command)
app.command("tombstones")(records_cmd.tombstones_command)
app.add_typer(records_cmd.subjects_app, name="subjects")
app.add_typer(bench_app, name="bench")
app.command("demo")(demo_command)


def route_by_project(typer_app: typer.Typer) -> None:
    """Every command's connections go to the shard of its `--project` (workers/shards.py);
    without a shard map nothing changes."""
    for info in typer_app.registered_commands:
        if info.callback is not None:
            info.callback = shards.routed(info.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            route_by_project(group.typer_instance)


route_by_project(app)


def main() -> None:
    """Entry point: user errors exit 2 with a message, internal failures exit 1."""
    try:
        app()
    except SecinfError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # an internal failure: say so, keep the trace for debugging
        if os.environ.get("SECINF_DEBUG"):
            traceback.print_exc()
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
                          "(set SECINF_DEBUG=1 for the traceback)", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
