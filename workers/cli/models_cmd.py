"""`secinf models …`: a project's own scoring models and the examples they learn from.

list (models and the activation history), activate, rollback (one step back, recorded),
examples (counts, invalid ones and why; --refresh re-admits them under today's settings),
import-truth (a source's candidates labelled from a truth.json). Training itself is
`secinf train --project P`; the train_model job does the same on a schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from workers import tenancy
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.db.queries import query

app = typer.Typer(help="Project scoring models: list, activate, rollback, examples.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")
PROJECT = typer.Option(..., "--project", "-p", help="Project (org/project or id).")


def _ap(metrics: dict[str, Any], key: str) -> Any:
    m = (metrics or {}).get("held_out") or {}
    return ((m.get(key) or {}).get("ap") if key != "rule_score" else
            (m.get("rule_score") or {}).get("ap"))


@app.command("list")
def list_command(project: str | None = typer.Option(None, "--project", "-p",
                                                     help="Only this project's models."),
                 json_out: bool = JSON) -> None:
    """Registered models (a project's, with its activation history, or every one)."""
    from workers.scoring.registry import list_models

    with connect() as conn:
        pid = tenancy.resolve_project(conn, project) if project else None
        rows = list_models(conn, pid)
        history = ([dict(r) for r in conn.execute(query("training", "activations"),
                                                  {"project_id": pid}).fetchall()]
                   if pid else [])
    if json_out:
        print_json({"models": rows, "activations": history} if pid else rows)
        return
    print_table([{"version": r["version"], "scope": r["scope"], "active": r["active"],
                  "parent": r["parent_version"] or "", "held-out AP": _ap(r["metrics"], "model"),
                  "in charge before": _ap(r["metrics"], "in_charge"),
                  "rule AP": _ap(r["metrics"], "rule_score"), "created": r["created_at"]}
                 for r in rows], title="scoring models")
    if history:
        print_table(history, title="activations (newest first)")


@app.command("activate")
def activate_command(version: str = typer.Argument(..., help="A project model's version."),
                     reason: str = typer.Option("activated by hand", help="Recorded."),
                     json_out: bool = JSON) -> None:
    """Make a project model its project's active one; its open candidates are rescored."""
    from workers.scoring.registry import activate

    with connect() as conn:
        result = activate(conn, version, reason)
    if json_out:
        print_json(result)
        return
    console.print(f"{result['version']} active (was {result['previous'] or 'the global model'}); "
                  f"{result['rescoring']} open candidates queued for rescoring", highlight=False)


@app.command("rollback")
def rollback_command(project: str = PROJECT,
                     reason: str = typer.Option("rolled back by hand", help="Recorded."),
                     json_out: bool = JSON) -> None:
    """Back to the model that was active before the current one (or the global model)."""
    from workers.scoring.registry import rollback

    with connect() as conn:
        result = rollback(conn, tenancy.resolve_project(conn, project), reason)
    if json_out:
        print_json(result)
        return
    console.print(f"rolled back {result['rolled_back']}: now scoring with "
                  f"{result['in_charge'] or 'no model'}"
                  f"{'' if result['version'] else ' (global)'}; "
                  f"{result['rescoring']} open candidates queued for rescoring", highlight=False)


@app.command("examples")
def examples_command(project: str = PROJECT,
                     refresh: bool = typer.Option(False, "--refresh", help="Re-admit invalid "
                                                  "examples under today's feature settings."),
                     json_out: bool = JSON) -> None:
    """The project's training examples: per origin, new since the last model, invalid ones."""
    from workers.scoring import examples as ex

    with connect() as conn:
        pid = tenancy.resolve_project(conn, project)
        synced = ex.refresh(conn, pid)
        readmitted = ex.readmit(conn, pid) if refresh else 0
        conn.commit()
        status = ex.status(conn, pid)
    report = {"synced": synced, "readmitted": readmitted, **status}
    if json_out:
        print_json(report)
        return
    print_table([{"origin": k, **v} for k, v in status["by_origin"].items()],
                title=f"examples of {project}")
    console.print(f"new since the last model: {status['new_since_last_model']} "
                  f"(auto-training at {status['train_min_new_examples']}, "
                  f"train_auto {status['train_auto']})", highlight=False)
    for why, n in status["invalid_reasons"].items():
        console.print(f"[yellow]{n} invalid[/]: {why} (`--refresh` re-admits them)",
                      highlight=False)
    if readmitted:
        console.print(f"{readmitted} re-admitted under today's settings", highlight=False)


@app.command("import-truth")
def import_truth_command(
    truth: Path = typer.Argument(..., exists=True, dir_okay=False, help="truth.json"),
    project: str = PROJECT,
    source: str = typer.Option(..., "--source", "-s", help="The source the truth is of."),
    types: list[str] = typer.Option([], "--type", help="Judged types (default: the types "
                                                       "the truth file has)."),
    json_out: bool = JSON,
) -> None:
    """Label a source's candidates from human labels as training examples."""
    from workers.scoring.examples import import_truth

    with connect() as conn:
        result = import_truth(conn, project, source, truth, types or None)
    if json_out:
        print_json(result.as_dict())
        return
    judged = ", ".join(f"{t} ({', '.join(c) or 'any class'})"
                       for t, c in result.judged.items())
    console.print(f"{result.source}: {result.candidates} candidates labelled "
                  f"({result.positives} true; {result.matched_truth} of "
                  f"{result.truth_events} labelled events have a candidate), judged {judged}",
                  highlight=False)
