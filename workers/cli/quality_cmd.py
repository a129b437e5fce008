"""`secinf bench quality`: precision, recall and F1 of the default ontology on human-labelled
real scenes, side by side with the simulator's figure for the same type."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from workers.cli.output import console, err_console, print_json
from workers.evaluate.quality import SIM_SET, QualityReport, quality_report
from workers.evaluate.quality_plot import plot_quality
from workers.evaluate.tune import parse_seeds
from workers.simulate import PRESETS


def _tables(report: QualityReport) -> tuple[Table, Table]:
    per_scene = Table(title="per scene (judged types only)")
    for col in ("set", "scene", "type", "truth", "TP", "FP", "FN", "precision", "recall", "F1"):
        per_scene.add_column(col, justify="left" if col in ("set", "scene", "type") else "right")
    for s in report.scenes:
        for etype, v in sorted(s.per_type.items()):
            if s.scene.set == SIM_SET and v.tp + v.fn + v.fp == 0:
                continue
            per_scene.add_row(s.scene.set, s.scene.name, etype, str(v.tp + v.fn), str(v.tp),
                              str(v.fp), str(v.fn), f"{v.precision:.3f}", f"{v.recall:.3f}",
                              f"{v.f1:.3f}")
    summary = Table(title="quality per set and type (micro-averaged over the set's scenes)")
    for col in ("set", "type", "truth", "precision", "recall", "F1", "simulator F1"):
        summary.add_column(col, justify="left" if col in ("set", "type") else "right")
    for row in report.as_dict()["summary"]:
        sim = row["simulated_f1"]
        summary.add_row(row["set"], row["type"], str(row["tp"] + row["fn"]),
                        f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                        "—" if sim is None or row["set"] == SIM_SET else f"{sim:.3f}",
                        style="bold" if row["set"] != SIM_SET else None)
    return per_scene, summary


def quality_command(
    labelled: Path | None = typer.Option(None, "--labelled", help="Root of labelled scenes "
                                         "(groups/*/, meva/*/ with tracks.csv + truth.json); "
                                         "default ../shared/data/labelled."),
    presets: str = typer.Option(",".join(PRESETS), "--presets",
                                help="Simulated presets to run beside them ('' for none)."),
    seeds: str = typer.Option("1", "--seeds", help="Seeds per preset: 1-3 or 1,4."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a bar chart (PNG): real "
                                     "against simulated F1 per type."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The default ontology on human-labelled scenes and simulated presets, in a scratch
    database: precision, recall and F1 per judged type per scene, and per set."""
    names = [p.strip() for p in presets.split(",") if p.strip()]
    with err_console.status("quality report…") as status:
        report = quality_report(labelled, names, parse_seeds(seeds),
                                progress=lambda msg: status.update(f"quality report: {msg}"))
    for reason in report.skipped:
        err_console.print(f"[yellow]skipped:[/] {reason}", highlight=False)
    if plot is not None:
        plot_quality(report, plot)
    if json_out:
        print_json(report.as_dict())
        return
    per_scene, summary = _tables(report)
    console.print(per_scene)
    console.print(summary)
    if report.tick is not None:
        t = report.tick
        console.print(f"tick: {t.points} points in {t.seconds:.1f} s "
                      f"({t.points / max(t.seconds, 1e-9):,.0f} points/s); stages "
                      + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(t.stage_seconds.items())))
    if plot is not None:
        console.print(f"plot: {plot}")
