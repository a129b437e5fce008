"""The quality report as a bar chart: F1 per type, real sets beside the simulator."""

from __future__ import annotations

from pathlib import Path

from .quality import SIM_SET, QualityReport


def plot_quality(report: QualityReport, path: Path) -> Path:
    """One group of bars per judged real type: each real set's F1 and the simulator's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report.summary()
    real = sorted(k for k in summary if k[0] != SIM_SET)
    labels = [f"{t}\n({s})" for s, t in real]
    f1_real = [summary[k].f1 for k in real]
    f1_sim = [report.simulated_f1(s, t) or 0.0 for s, t in real]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(real) + 1), 3.6))
    xs = range(len(real))
    ax.bar([x - 0.2 for x in xs], f1_real, width=0.4, label="recorded, human labels")
    ax.bar([x + 0.2 for x in xs], f1_sim, width=0.4, label="simulator, same type")
    ax.set_xticks(list(xs), labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("secinf quality: default ontology")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
