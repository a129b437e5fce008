"""`secinf simulate`: write a scene with planted events and its ground truth."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from workers.cli.output import console, err_console, print_json
from workers.simulate import (
    EVENT_TYPES,
    FORMATS,
    PRESETS,
    SimulationConfigError,
    load_config,
    preset_config,
    simulate,
    validate_config,
    write_outputs,
)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(2)


def _build_config(preset: str, config: Path | None, seed: int, duration: float | None,
                  fps: float | None, agents: int | None, source: str | None,
                  noise: dict[str, Any]) -> Any:
    top = {k: v for k, v in {"fps": fps, "source": source}.items() if v is not None}
    if config is None:
        if preset not in PRESETS:
            raise SimulationConfigError(
                f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return preset_config(preset, seed, duration=duration, agents=agents,
                             noise=noise, **top)
    cfg = load_config(config)
    data = cfg.model_dump()
    data.update(top)
    data["seed"] = seed
    if duration is not None:
        data["duration"] = duration
    if agents is not None:
        data["background"]["agents"] = agents
    data["noise"].update(noise)
    return validate_config(data)


def simulate_command(
    out: Path = typer.Option(..., "--out", help="Output directory."),
    preset: str = typer.Option("plaza", "--preset",
                               help="plaza | corridor | intersection | crowd"),
    config: Path | None = typer.Option(None, "--config",
                                       help="YAML/JSON scene (overrides preset)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    duration: float | None = typer.Option(None, "--duration", help="Scene length, seconds."),
    fps: float | None = typer.Option(None, "--fps", help="Frames per second (default 10)."),
    agents: int | None = typer.Option(None, "--agents", help="Background crowd size."),
    fmt: str = typer.Option("parquet,csv", "--format", help="Comma list: parquet,csv."),
    source: str | None = typer.Option(None, "--source", help="Source name (<preset>-<seed>)."),
    jitter: float | None = typer.Option(None, "--jitter", help="Position noise sigma, m."),
    drop_rate: float | None = typer.Option(None, "--drop-rate", help="Share of points dropped."),
    id_switch_rate: float | None = typer.Option(None, "--id-switch-rate",
                                                help="Chance a track switches id."),
    false_tracks: int | None = typer.Option(None, "--false-tracks", help="Spurious tracks."),
    fps_jitter: float | None = typer.Option(None, "--fps-jitter",
                                            help="Frame time sigma, in frame periods."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Generate a scene: tracks, scene.json and truth.json."""
    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise _fail(f"--format: unknown format(s) {', '.join(bad) or '(none)'}; "
                    f"choose from {', '.join(FORMATS)}")
    noise = {k: v for k, v in {"jitter": jitter, "drop_rate": drop_rate,
                               "id_switch_rate": id_switch_rate, "false_tracks": false_tracks,
                               "fps_jitter": fps_jitter}.items() if v is not None}
    try:
        cfg = _build_config(preset, config, seed, duration, fps, agents, source, noise)
    except SimulationConfigError as exc:
        raise _fail(str(exc)) from None
    result = simulate(cfg)
    try:
        paths = write_outputs(result, out, formats)
    except OSError as exc:
        raise _fail(f"cannot write to {out}: {exc.strerror}") from None
    summary = {
        "source": result.scene["source"], "preset": cfg.preset, "seed": cfg.seed,
        "files": {k: str(v) for k, v in paths.items()},
        "points": result.stats["points"], "tracks": result.stats["tracks"],
        "events": result.stats["events"], "seconds": result.stats["seconds"],
        "dropped_scenarios": result.stats["dropped_scenarios"],
    }
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"scene {summary['source']}")
    table.add_column("event type")
    table.add_column("events", justify="right")
    for t in EVENT_TYPES:
        table.add_row(t, str(result.stats["events"][t]))
    console.print(table)
    console.print(f"{summary['points']:,} points · {summary['tracks']} tracks · "
                  f"{result.stats['id_switches']} id switches · "
                  f"{result.stats['false_tracks']} false tracks · "
                  f"simulated in {summary['seconds']:.2f} s")
    for path in paths.values():
        console.print(f"  wrote {path}", highlight=False)
    if result.stats["dropped_scenarios"]:
        sys.stderr.write(f"note: scenarios that did not fit: {result.stats['dropped_scenarios']}\n")
