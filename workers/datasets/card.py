"""The data card of a dataset version (Markdown) and its plots (PNG, matplotlib Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from workers.datasets.gates import GateConfig, GateResult
from workers.datasets.schema import SCHEMA_VERSION, SPLITS
from workers.datasets.storage import FileEntry

CARD = "card/README.md"
PLOTS = {"class_balance": "card/class_balance.png", "durations": "card/durations.png"}
VERIFICATION = {
    "human": "a reviewer accepted it in the review app (span possibly adjusted)",
    "model": "auto-accepted: the scoring model's score was above the project's threshold",
    "rule": "auto-accepted: the rule's score was above the project's threshold",
}


@dataclass(frozen=True)
class CardInputs:
    name: str
    version: str
    project: str
    status: str
    seed: int
    ratios: tuple[float, float, float]
    context_s: float
    ontology: Mapping[str, Any] | None
    model_version: str | None
    model_metrics: Mapping[str, Any] | None
    statistics: Mapping[str, Any]
    gates: Sequence[GateResult]
    config: GateConfig
    files: Sequence[FileEntry]
    sources_total: int
    sources_simulated: int
    pixel_sources: int


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _pct(n: float, total: float) -> str:
    return f"{100 * n / total:.1f} %" if total else "-"


def _q(summary: Mapping[str, Any], level: int) -> str:
    qs = summary.get("quantiles") or []
    return f"{qs[level]:.2f}" if qs else "-"


def _metrics_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for setting, m in sorted(metrics.items()):
        if isinstance(m, Mapping) and "model" in m and "rule_score" in m:
            rows.append([setting, m.get("n"), m.get("positives"), m["model"].get("auc"),
                         m["model"].get("ap"), m["rule_score"].get("auc"),
                         m["rule_score"].get("ap"), m.get("ap_gain")])
    return rows


def render(c: CardInputs) -> str:
    """The Markdown text of the card."""
    st = c.statistics
    total = int(st["events"])
    by_split: Mapping[str, int] = st["by_split"]
    onto = (f"{c.ontology['name']} v{c.ontology['version']} (sha256 {c.ontology['sha256'][:12]}…)"
            if c.ontology else "none")
    out = [f"# Dataset `{c.name}` {c.version}", "",
           f"Project `{c.project}` · status **{c.status}** · file schema v{SCHEMA_VERSION} · "
           f"ontology {onto} · model {c.model_version or 'none'} · split seed {c.seed}", ""]

    out += ["## Summary", "", _table(
        ["", *SPLITS, "total"],
        [["events", *[by_split[s] for s in SPLITS], total],
         ["sources", *[len(st["sources_by_split"][s]) for s in SPLITS], st["sources"]],
         ["target share", *[f"{r:.0%}" for r in c.ratios], "100%"],
         ["realised share", *[_pct(by_split[s], total) for s in SPLITS], "100 %"]]), "",
        f"Feature rows (actors' kinematics over each span ± {c.context_s:g} s): "
        f"{st['feature_rows']}.", ""]

    out += ["## Intended use", "",
            "Training and evaluating models that detect secondary events (movement, "
            "interaction, decision and reaction events between tracked pedestrians and "
            "cyclists) from object tracks, and benchmarking such detectors against verified "
            "labels. Train on `train`, tune on `val`, report on `test` only; splits are "
            "grouped by source, so no scene appears in two splits.", "",
            "Not intended for identifying, re-identifying or profiling individuals, nor for "
            "decisions about people without validation on the deployment's own scenes.", ""]

    out += ["## Contents", "", _table(
        ["file", "rows", "bytes", "sha256"],
        [[f"`{f.path}`", f.rows, f.bytes, f"`{f.sha256[:16]}…`"] for f in c.files
         if f.kind in ("events", "features")]), "",
        "`events.parquet`: one row per verified event (type, actors as role → track id, "
        "zone/route/trigger, span in UTC and in seconds since the source's origin, "
        "confidence, verification, scores). `features.parquet`: one row per track point of "
        "each actor from span start - context to span end + context (position, velocity, "
        "speed, acceleration, jerk, heading, turn rate, curvature; `t_rel_s` from the "
        "event's start, `in_span`). Column types are listed in `manifest.json`.", ""]

    types = sorted(st["by_type"])
    split_types: Mapping[str, Mapping[str, int]] = st["by_split_type"]
    out += ["## Class balance per split", "", _table(
        ["type", *SPLITS, "total", "share"],
        [[t, *[split_types[s].get(t, 0) for s in SPLITS], st["by_type"][t],
          _pct(st["by_type"][t], total)] for t in types]), "",
        f"![class balance]({Path(PLOTS['class_balance']).name})", ""]

    durations: Mapping[str, Mapping[str, Any]] = st["durations"]
    out += ["## Durations (seconds)", "", _table(
        ["type", "events", "min", "p10", "median", "p90", "max"],
        [[t, durations[t]["n"], _q(durations[t], 0), _q(durations[t], 10),
          _q(durations[t], 50), _q(durations[t], 90), _q(durations[t], 100)]
         for t in [*types, "all"] if t in durations]), "",
        f"![durations]({Path(PLOTS['durations']).name})", ""]

    ver_split: Mapping[str, Mapping[str, int]] = st["by_split_verification"]
    kinds = sorted(st["by_verification"])
    out += ["## How events were verified", "", _table(
        ["verified by", "meaning", *SPLITS, "total"],
        [[k, VERIFICATION.get(k, k), *[ver_split[s].get(k, 0) for s in SPLITS],
          st["by_verification"][k]] for k in kinds]), "",
        f"{st['reviewers']} distinct reviewers accepted the human-verified events "
        "(their identities are not part of the dataset).", ""]

    out += ["## Privacy", "",
            "- Track ids are the customer's tracker ids: opaque numbers per source, with no "
            "link to a person's identity; no names, faces or other attributes are stored.",
            "- No images or video: only trajectories. Video locations are not exported.",
            "- Coordinates are ground-plane metres after each source's transform"
            + (f" ({c.pixel_sources} sources are in image pixels)." if c.pixel_sources
               else "."),
            "- Reviewers' identities are removed: only whether a person, the model or a rule "
            "verified an event.",
            "- Internal database ids of sources and candidates are not exported; sources "
            "appear by name.", ""]

    share_machine = sum(n for k, n in st["by_verification"].items() if k != "human")
    by_type = st["by_type"]
    imbalance = (max(by_type.values()) / min(by_type.values())) if by_type else 0.0
    empty = [s for s, r in zip(SPLITS, c.ratios, strict=True) if r > 0 and by_split[s] == 0]
    absent = next((g.details.get("absent_types") for g in c.gates
                   if g.gate == "min_per_type"), None) or []
    out += ["## Known biases and limitations", "",
            f"- Simulated scenes: {c.sources_simulated} of {c.sources_total} sources are "
            "marked as simulated (secinf's scene simulator); simulated motion is smoother "
            "and more regular than recorded motion. Sources without the mark may be "
            "simulated too.",
            f"- Class imbalance: the largest type has {imbalance:.1f} times the events of the "
            "smallest" + (f"; types of the ontology without events: {', '.join(absent)}."
                          if absent else "."),
            f"- {_pct(share_machine, total)} of the events were verified by the model or a "
            "rule, not by a person: they inherit those systems' errors.",
            f"- Splits are assigned per source by a hash of the seed and the source name: "
            f"with {st['sources']} sources the realised shares differ from the targets"
            + (f"; empty splits: {', '.join(empty)}." if empty else "."),
            "- Events were proposed by the ontology's rules first: behaviour the rules never "
            "flag is missing, whatever its frequency.", ""]

    out += ["## Evaluation figures", ""]
    rows = _metrics_rows(c.model_metrics or {})
    if rows:
        out += [f"Held-out figures of model `{c.model_version}` against the rule score "
                "(from its registration):", "", _table(
                    ["setting", "candidates", "positives", "model AUC", "model AP",
                     "rule AUC", "rule AP", "AP gain"], rows), ""]
    else:
        out += ["No evaluation figures are recorded for the model of these events"
                + (f" (`{c.model_version}`)." if c.model_version else " (none scored them)."),
                ""]

    out += ["## Quality gates", "", _table(
        ["gate", "result", "summary"],
        [[g.gate, "passed" if g.passed else "**FAILED**", g.summary] for g in c.gates]), "",
        "Limits: " + ", ".join(f"{k} = {v}" for k, v in c.config.as_dict().items()) + ".", ""]
    return "\n".join(out)


def plot(events: pa.Table, out_dir: Path) -> dict[str, Path]:
    """Class balance per split and duration distributions per type, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    types = sorted(set(events.column("type").to_pylist()))
    rows = events.select(["type", "split", "duration_s"]).to_pylist()
    paths = {k: out_dir / Path(v).name for k, v in PLOTS.items()}

    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(types) + 2), 3.5))
    x = np.arange(len(types))
    width = 0.8 / len(SPLITS)
    for i, split in enumerate(SPLITS):
        counts = [sum(1 for r in rows if r["type"] == t and r["split"] == split) for t in types]
        ax.bar(x + (i - 1) * width, counts, width, label=split)
    ax.set_xticks(x, types, rotation=30, ha="right")
    ax.set_ylabel("events")
    ax.set_title("class balance per split")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths["class_balance"], dpi=100, metadata={"Software": None})
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, max(3.0, 0.4 * len(types) + 1)))
    data = [[max(r["duration_s"], 1e-3) for r in rows if r["type"] == t] for t in types]
    if data:
        ax.boxplot(data, orientation="horizontal", tick_labels=types)
        ax.set_xscale("log")
    ax.set_xlabel("duration (s, log scale)")
    ax.set_title("event durations per type")
    fig.tight_layout()
    fig.savefig(paths["durations"], dpi=100, metadata={"Software": None})
    plt.close(fig)
    return paths
