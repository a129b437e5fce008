"""`secinf train` (train and register the scoring model) and `secinf bench scoring`
(`bench_scoring`: candidates scored per second on CPU, NOTIFY-to-written-score latency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from workers.cli.output import console, err_console, print_json, print_table
from workers.db.connect import connect

# The scoring modules import torch (seconds): they load inside the commands, so that
# `secinf --help` and every other command start fast.

JSON = typer.Option(False, "--json", help="Print JSON.")


def train_command(
    scenes: int = typer.Option(12, min=2, max=500, help="Simulated scenes (a quarter held out)."),
    seed: int = typer.Option(0, help="Seed of the scenes, the split and the weights."),
    epochs: int = typer.Option(30, min=1, max=1000, help="Training epochs."),
    duration: float = typer.Option(120.0, min=20.0, max=3600.0, help="Seconds per scene."),
    out: Path | None = typer.Option(None, "--out", help="Also write model.pt and model.json "
                                    "into this directory."),
    list_: bool = typer.Option(False, "--list", help="List registered models and exit."),
    project: str | None = typer.Option(None, "--project", "-p", help="Train this project "
                                       "its own model from its review decisions and imported "
                                       "labels instead (docs/scoring.md, Project models)."),
    mode: str = typer.Option("auto", help="--project: auto, fine-tune or scratch."),
    holdout: float = typer.Option(0.25, help="--project: share of examples held out, by "
                                             "source."),
    json_out: bool = JSON,
) -> None:
    """Train the scoring model on simulated scenes and register it (scoring.models); with
    --project, a project's own model from what its people decided."""
    from workers.scoring.training import run_training

    if project is not None and not list_:
        train_project_command(project, mode, holdout, seed,
                              None if epochs == 30 else epochs, json_out)
        return
    with connect() as conn:
        if list_:
            from workers.scoring.registry import list_models

            rows = list_models(conn)
            if json_out:
                print_json(rows)
            else:
                print_table(rows, title="scoring models",
                            columns=["version", "scope", "active", "created_at", "sha256"])
            return
        with Progress(console=err_console, transient=True, disable=json_out) as progress:
            scene_task = progress.add_task("simulate, ingest, tick, label", total=scenes)
            epoch_task = progress.add_task("train", total=epochs)

            def on_scene(stats: dict[str, Any]) -> None:
                progress.advance(scene_task)

            def on_epoch(epoch: int, loss: float) -> None:
                progress.update(epoch_task, advance=1, description=f"train (loss {loss:.3f})")

            report = run_training(conn, scenes=scenes, seed=seed, epochs=epochs,
                                  duration=duration, out=out, on_scene=on_scene,
                                  on_epoch=on_epoch)
    if json_out:
        print_json(report)
        return
    console.print(f"model [bold]{report['version']}[/] "
                  f"({'registered' if report['created'] else 'already registered'})",
                  highlight=False)
    rows = [{"held-out set": name, "n": m["n"], "positives": m["positives"],
             "model AUC": m["model"]["auc"], "rule AUC": m["rule_score"]["auc"],
             "model AP": m["model"]["ap"], "rule AP": m["rule_score"]["ap"],
             "AP gain": m["ap_gain"], "headroom (1 - rule AP)": m["ap_headroom"],
             "share taken": m["headroom_taken"]}
            for name, m in report["metrics"].items() if isinstance(m, dict)]
    print_table(rows, title="model_score vs rule_score on held-out scenes")


def train_project_command(project: str, mode: str, holdout: float, seed: int,
                          epochs: int | None, json_out: bool) -> None:
    """`secinf train --project P`: examples → split by source → train → compare → publish."""
    from workers import tenancy
    from workers.scoring.project_training import ProjectTrainConfig, publish, train_project

    cfg = ProjectTrainConfig(epochs=epochs, seed=seed, mode=mode, holdout=holdout)
    with connect() as conn:
        pid = tenancy.resolve_project(conn, project)
        with Progress(console=err_console, transient=True, disable=json_out) as progress:
            task = progress.add_task("examples", total=None)

            def on_progress(p: dict[str, Any]) -> None:
                if p.get("phase") == "train":
                    progress.update(task, description=f"train (loss {p['loss']:.3f})",
                                    total=p["epochs"], completed=p["epoch"])
                else:
                    progress.update(task, description=str(p.get("phase")))

            pm = train_project(conn, pid, cfg, on_progress)
            report = publish(conn, pm)
    if json_out:
        print_json(report)
        return
    console.print(f"model [bold]{report['version']}[/] ({report['mode']}): {report['verdict']}",
                  highlight=False)
    rows = []
    for name, m in report["metrics"].items():
        if not name.startswith("held_out") or not isinstance(m, dict):
            continue
        rows.append({"held-out set": name, "n": m["n"], "positives": m["positives"],
                     "model AP": m["model"]["ap"],
                     "in charge AP": (m.get("in_charge") or {}).get("ap"),
                     "rule AP": m["rule_score"]["ap"], "gain over rule": m["ap_gain"],
                     "headroom": m["ap_headroom"]})
    held = ", ".join(report["training"]["held_out_sources"])
    print_table(rows, title=f"held-out sources: {held}")


def bench_scoring(
    json_out: bool = JSON,
    rounds: int = typer.Option(10, min=1, max=200, help="Latency samples (low load)."),
    device: str = typer.Option("cpu", help="auto, cpu or cuda (the rate is reported for it)."),
) -> None:
    """Candidates scored per second at the default batch size, and NOTIFY-to-written-score
    latency p50/p95 through the queue and worker at low load."""
    with connect() as conn:
        from workers.scoring.bench import run_bench

        report = run_bench(conn, rounds=rounds, device=device)
    if json_out:
        print_json(report)
        return
    for key, value in report.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)
