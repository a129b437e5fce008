"""`secinf rules load|backfill|show`, `secinf evaluate`, `secinf tune`."""

from __future__ import annotations

from pathlib import Path

import typer

from workers import tenancy
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.evaluate.report import evaluate_source, table
from workers.evaluate.truth import load_truth
from workers.rules import store
from workers.rules.ontology import DEFAULT_PATH, load_ontology

app = typer.Typer(help="Event ontologies and the rules generated from them.",
                  no_args_is_help=True)

PROJECT = typer.Option(..., "--project", "-p", help="Project id, org/slug or unique slug.")
JSON = typer.Option(False, "--json", help="Machine-readable output.")


@app.command("load")
def rules_load(
    path: Path = typer.Argument(DEFAULT_PATH, help="Ontology YAML file."),
    project: str = PROJECT,
    json_out: bool = JSON,
) -> None:
    """Validate an ontology, store it as a version of the project, compile its rules and
    make it active (writes its feature settings to pipeline.settings)."""
    onto = load_ontology(path)
    with connect() as conn:
        result = store.load(conn, tenancy.resolve_project(conn, project), onto)
    if json_out:
        print_json(result.as_dict())
        return
    verb = "loaded" if result.created else "re-compiled"
    console.print(f"{verb} ontology {result.name} v{result.version} "
                  f"({result.rules} rules, sha256 {result.sha256[:12]}…), now active")


@app.command("backfill")
def rules_backfill(
    project: str = PROJECT,
    source: str | None = typer.Option(None, "--source", help="One source (name or id)."),
    json_out: bool = JSON,
) -> None:
    """Re-run the active rules over each source's history; never duplicates candidates."""
    with connect() as conn:
        pid = tenancy.resolve_project(conn, project)
        with console.status("running rules…") as status:
            out = store.backfill(conn, pid, source, on_source=lambda name, n: status.update(
                f"{name}: {n} new candidates"))
    if json_out:
        print_json({"sources": out, "inserted": sum(out.values())})
        return
    print_table(({"source": k, "new candidates": v} for k, v in out.items()),
                title="backfill")


@app.command("show")
def rules_show(
    project: str = PROJECT,
    sql: bool = typer.Option(False, "--sql", help="Print the active version's rule SQL."),
    json_out: bool = JSON,
) -> None:
    """Loaded ontology versions of the project (and the generated SQL with --sql)."""
    with connect() as conn:
        pid = tenancy.resolve_project(conn, project)
        versions = store.list_ontologies(conn, pid)
        compiled = store.compiled_sql(conn, pid) if sql else []
    if json_out:
        print_json({"ontologies": versions, "compiled": compiled})
        return
    print_table(versions, title="ontologies",
                columns=["name", "version", "active", "rules", "candidates", "loaded_at"])
    for row in compiled:
        console.rule(f"{row['type']} ({row['kind']}, lookback {row['lookback_s']:g} s)")
        console.print(row["sql"], highlight=False, markup=False)


def evaluate_command(
    truth: Path = typer.Option(..., "--truth", help="truth.json of the source."),
    source: str = typer.Option(..., "--source", help="Source name or id."),
    project: str | None = typer.Option(None, "--project", "-p", help="Project (if ambiguous)."),
    min_iou: float = typer.Option(0.5, "--min-iou", min=0.0, max=1.0,
                                  help="Temporal IoU a match needs."),
    json_out: bool = JSON,
) -> None:
    """Precision, recall and F1 per event type of a source's candidates against truth."""
    t = load_truth(truth)
    with connect() as conn:
        ev = evaluate_source(conn, t, source, project, min_iou)
    if json_out:
        print_json(ev.as_dict())
        return
    console.print(table(ev.result, f"{ev.source.name}: {ev.candidates} candidates vs "
                                   f"{ev.truth_events} truth events (IoU ≥ {min_iou:g})"))


def tune_command(
    project: str = PROJECT,
    preset: list[str] = typer.Option(["plaza"], "--preset", help="Preset(s) to tune on."),
    seeds: str = typer.Option("0-4", "--seeds", help="Tuning seeds, e.g. 0-4 or 0,2,3."),
    duration: float = typer.Option(120.0, "--duration", help="Seconds per tuning scene."),
    ontology: Path = typer.Option(DEFAULT_PATH, "--ontology", help="Starting ontology."),
    out: Path = typer.Option(..., "--out", help="Where to write the tuned ontology YAML."),
    load: bool = typer.Option(False, "--load", help="Also load the tuned version."),
    json_out: bool = JSON,
) -> None:
    """Fit rule thresholds on simulated scenes (tuning seeds only) by coordinate search and
    write a new ontology version with before/after F1."""
    from workers.evaluate.tune import parse_seeds, tune

    onto = load_ontology(ontology)
    with connect() as conn:
        pid = tenancy.resolve_project(conn, project)
        with console.status("tuning…") as status:
            report = tune(conn, pid, onto, preset, parse_seeds(seeds), duration,
                          progress=status.update)
        out.write_text(report.yaml, encoding="utf-8")
        if load:
            store.load(conn, pid, load_ontology(out))
    if json_out:
        print_json(report.as_dict())
        return
    rows = [{"type": t, "before": f"{b:.3f}", "after": f"{report.after[t]:.3f}"}
            for t, b in report.before.items()]
    print_table(rows, title=f"tuned v{report.version} on seeds {report.seeds}")
    console.print(f"wrote {out}")
