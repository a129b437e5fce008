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
    json_out: bool = JSON,
) -> None:
    """Train the scoring model on simulated scenes and register it (scoring.models)."""
    from workers.scoring.training import run_training

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
