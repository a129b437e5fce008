"""`secinf export` and `secinf datasets list|show|verify`: versioned datasets of verified
events (docs/datasets.md)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from workers.cli.output import console, err_console, print_json, print_table
from workers.datasets import (
    ExportRequest,
    GateConfig,
    export,
    list_versions,
    show_version,
    verify_version,
)
from workers.datasets.export import STEPS
from workers.datasets.schema import SPLITS
from workers.datasets.semver import Bump
from workers.datasets.splits import parse_ratios
from workers.db.connect import connect
from workers.errors import UserError
from workers.storage import LocalStorage

app = typer.Typer(help="Dataset versions: list, show, verify.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")
NAME = typer.Option("events", "--name", help="Dataset name within the project.")
BUMPS = ("major", "minor", "patch")


def export_command(
    project: str = typer.Option(..., "--project", "-p",
                                help="Project id, org/slug or unique slug."),
    version: str | None = typer.Option(None, "--version",
                                       help="X.Y.Z; default: the next after the latest "
                                            "published (minor, major on schema/ontology "
                                            "changes)."),
    bump: str = typer.Option("minor", "--bump", help="Default bump: major, minor or patch."),
    seed: int = typer.Option(0, "--seed", help="Split seed (same seed, same splits)."),
    ratios: str = typer.Option("0.7,0.15,0.15", "--ratios", help="train,val,test shares."),
    context: float = typer.Option(2.0, "--context", help="Seconds of features before and "
                                                         "after each event's span."),
    min_per_type: int = typer.Option(GateConfig.min_per_type, "--min-per-type", min=0,
                                     help="Gate: fewest events of any type present."),
    max_class_share: float = typer.Option(GateConfig.max_class_share, "--max-class-share",
                                          min=0.0, max=1.0,
                                          help="Gate: largest share of one type."),
    max_imbalance: float = typer.Option(GateConfig.max_imbalance, "--max-imbalance", min=1.0,
                                        help="Gate: largest/smallest type count."),
    max_drift_tvd: float = typer.Option(GateConfig.max_type_tvd, "--max-drift-tvd", min=0.0,
                                        max=1.0, help="Gate: type-mix total-variation "
                                                      "distance to the previous version."),
    max_drift_ks: float = typer.Option(GateConfig.max_duration_ks, "--max-drift-ks", min=0.0,
                                       max=1.0, help="Gate: duration KS statistic to the "
                                                     "previous version."),
    name: str = NAME,
    storage: Path | None = typer.Option(None, "--storage",
                                        help="A local storage root to write to instead of "
                                             "the configured backend (SECINF_STORAGE_BACKEND"
                                             "; local: SECINF_DATASETS_DIR)."),
    json_out: bool = JSON,
) -> None:
    """Export the project's verified events as a dataset version: Parquet splits grouped by
    source, manifest.json with sha256, a data card with plots; publish it if every quality
    gate passes, else record it as blocked and exit 2 naming the gates."""
    if bump not in BUMPS:
        raise UserError(f"--bump {bump!r}: use one of {', '.join(BUMPS)}")
    req = ExportRequest(
        project=project, name=name, version=version, bump=cast(Bump, bump),
        seed=seed, ratios=parse_ratios(ratios), context_s=context, storage_root=storage,
        gates=GateConfig(min_per_type=min_per_type, max_class_share=max_class_share,
                         max_imbalance=max_imbalance, max_type_tvd=max_drift_tvd,
                         max_duration_ks=max_drift_ks))
    with connect() as conn, Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                     BarColumn(), TimeElapsedColumn(), console=err_console,
                                     transient=True) as bar:
        task = bar.add_task("exporting", total=len(STEPS))

        def step(msg: str) -> None:
            bar.update(task, description=msg, completed=STEPS.index(msg))

        result = export(conn, req, progress=step)
        bar.update(task, completed=len(STEPS))
    if json_out:
        print_json(result.as_dict())
    else:
        console.print(f"[bold]{result.project}[/] dataset {result.name} [bold]{result.version}"
                      f"[/]: {result.status} · {result.statistics['events']} events · "
                      f"{len(result.files)} files, {result.bytes / 1e6:.2f} MB · "
                      f"{result.seconds:.1f} s", highlight=False)
        console.print(f"  {result.location}", highlight=False)
        print_table(({"gate": g.gate, "passed": g.passed, "summary": g.summary}
                     for g in result.gates), title="quality gates")
    if result.failed:
        names = ", ".join(f"{g.gate} ({g.summary})" for g in result.failed)
        raise UserError(f"dataset {result.name}@{result.version} is blocked by quality gates: "
                        f"{names}. Fix the data, or export again with relaxed limits.")


@app.command("list")
def datasets_list(
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
    name: str | None = typer.Option(None, "--name", help="Only this dataset."),
    json_out: bool = JSON,
) -> None:
    """Dataset versions, newest first."""
    with connect() as conn:
        rows = list_versions(conn, project, name)
    if json_out:
        print_json(rows)
        return
    print_table(rows, title="dataset versions",
                columns=["project", "name", "version", "status", "events", "published_at",
                         "failed_gates"])


@app.command("show")
def datasets_show(
    version: str = typer.Argument(..., help="X.Y.Z or dataset@X.Y.Z."),
    project: str | None = typer.Option(None, "--project", "-p", help="Project (if ambiguous)."),
    json_out: bool = JSON,
) -> None:
    """A version: its summary, files and quality reports."""
    with connect() as conn:
        row = show_version(conn, version, project)
    if json_out:
        print_json(row)
        return
    files, reports = row.pop("files"), row.pop("quality_reports")
    stats = row.pop("statistics")
    for key in ("project", "name", "version", "status", "events", "storage_path",
                "ontology_name", "ontology_version", "model_version", "split_seed",
                "created_at", "published_at", "manifest_sha256"):
        console.print(f"[bold]{key}[/]: {row.get(key)}", highlight=False)
    by_split = stats.get("by_split", {})
    console.print("[bold]by split[/]: " + ", ".join(f"{s} {by_split.get(s, 0)}" for s in SPLITS),
                  highlight=False)
    console.print("[bold]by type[/]: " + ", ".join(
        f"{t} {n}" for t, n in sorted(stats.get("by_type", {}).items())), highlight=False)
    print_table(files, title="files", columns=["path", "kind", "split", "rows", "bytes",
                                               "sha256"])
    print_table(reports, title="quality gates", columns=["gate", "passed", "summary"])


@app.command("verify")
def datasets_verify(
    version: str = typer.Argument(..., help="X.Y.Z or dataset@X.Y.Z."),
    project: str | None = typer.Option(None, "--project", "-p", help="Project (if ambiguous)."),
    storage: Path | None = typer.Option(None, "--storage",
                                        help="The local storage root the version was "
                                             "exported to with --storage (default: the "
                                             "configured backend)."),
    json_out: bool = JSON,
) -> None:
    """Re-check every file's size and sha256 against the manifest and the database; exit 2
    naming each tampered, missing or unlisted file."""
    store = LocalStorage(storage.expanduser().resolve()) if storage else None
    with connect() as conn, err_console.status(f"verifying {version}…"):
        result = verify_version(conn, version, project, store=store)
    if json_out:
        print_json(result.as_dict())
    elif result.ok:
        console.print(f"{result.project} {result.name}@{result.version}: {result.files} files "
                      "match the manifest and the database", highlight=False)
    if not result.ok:
        if not json_out:
            print_table(result.problems, title="problems", columns=["path", "problem"])
        listed = "; ".join(f"{p['path']}: {p['problem']}" for p in result.problems)
        raise UserError(f"{result.name}@{result.version} failed verification under "
                        f"{result.path}: {listed}")
