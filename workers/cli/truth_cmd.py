"""`secinf truth import`: human labels in their published formats → truth.json.

Exit codes: 0 written, 2 bad input (nothing written; an earlier --out stays as it was),
1 internal failure.
"""

from __future__ import annotations

from pathlib import Path

import typer

from workers.cli.output import console, err_console, print_json
from workers.errors import UserError
from workers.evaluate.truth_import import (
    FORMATS,
    MEVA_MAP,
    Imported,
    eth_groups_truth,
    kpf_truth,
    load_label_map,
    parse_time_origin,
    write_truth,
)
from workers.evaluate.truth_import.eth_groups import MIN_DURATION_S

app = typer.Typer(help="Ground truth (truth.json) from people's labels.", no_args_is_help=True)


def detect_label_format(inputs: list[Path]) -> str:
    """eth-groups or kpf from the names of the inputs (override with --format)."""
    names: list[str] = []
    for p in inputs:
        if p.is_dir():
            names += [c.name.lower() for c in p.iterdir()]
            if (p / "raw").is_dir():
                names += [c.name.lower() for c in (p / "raw").iterdir()]
        else:
            names.append(p.name.lower())
    if any(n.endswith((".activities.yml", ".activities.yaml")) for n in names):
        return "kpf"
    if any(n.startswith("groups") and n.endswith(".txt") for n in names):
        return "eth-groups"
    raise UserError(f"{', '.join(map(str, inputs))}: cannot tell the label format (no "
                    "groups.txt, no *.activities.yml); pass --format "
                    f"({' | '.join(FORMATS)})")


@app.command("import")
def import_command(
    inputs: list[Path] = typer.Argument(..., help="A scene/clip folder (or its raw/ folder), "
                                                  "or its files."),
    out: Path = typer.Option(..., "--out", "-o", help="truth.json to write (replaced "
                                                      "atomically)."),
    fmt: str | None = typer.Option(None, "--format", help=f"{' | '.join(FORMATS)} (default: "
                                                          "from the file names)."),
    source: str | None = typer.Option(None, "--source", help="Source name in the truth "
                                                             "(default: the scene/clip name)."),
    mapping: Path | None = typer.Option(None, "--map", help="kpf: label map YAML/JSON "
                                                            f"(default {MEVA_MAP.name})."),
    time_origin: str | None = typer.Option(None, "--time-origin",
                                           help="ISO time of t = 0 (default "
                                                "2026-01-01T00:00:00Z, as ingest)."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of the frame numbers "
                                                         "(eth-groups: 2.5 Hz x frame step; "
                                                         "kpf: the map's, 30)."),
    min_duration: float | None = typer.Option(None, "--min-duration",
                                              help="eth-groups: drop pairs together less "
                                                   f"than this (s, default {MIN_DURATION_S:g})."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Convert labels (ETH/UCY groups, KPF activities) into truth.json."""
    missing = [p for p in inputs if not p.exists()]
    if missing:
        raise UserError(f"{missing[0]}: no such file or folder; give the scene/clip folder "
                        "or its label files")
    label_format = fmt or detect_label_format(inputs)
    origin = parse_time_origin(time_origin)
    imported: Imported
    if label_format == "eth-groups":
        if mapping is not None:
            raise UserError("--map applies to --format kpf (activity names → event types); "
                            "ETH/UCY groups always give `accompany`")
        imported = eth_groups_truth(
            inputs, source=source, time_origin=origin, fps=fps,
            min_duration_s=MIN_DURATION_S if min_duration is None else min_duration)
    elif label_format == "kpf":
        if min_duration is not None:
            raise UserError("--min-duration applies to --format eth-groups; for kpf set "
                            "min_duration_s on the rule in the --map file")
        imported = kpf_truth(inputs, load_label_map(mapping), source=source,
                             time_origin=origin, fps=fps)
    else:
        raise UserError(f"--format {label_format!r}: choose one of {', '.join(FORMATS)}")
    path = write_truth(imported.truth, out)
    summary = {"out": str(path), "format": label_format, "source": imported.truth["source"],
               "time_origin": imported.truth["time_origin"],
               "time_base": imported.time_base.as_dict(), "events": imported.counts(),
               "inputs": imported.inputs, "notes": imported.notes}
    if json_out:
        print_json(summary)
        return
    counts = ", ".join(f"{n} {t}" for t, n in summary["events"].items()) or "no events"
    base = imported.time_base
    console.print(f"wrote {path}: {counts} (source {summary['source']}; t = (frame - "
                  f"{base.frame0}) / {base.fps:g} s)", highlight=False)
    for note in imported.notes:
        err_console.print(f"note: {note}", highlight=False)
