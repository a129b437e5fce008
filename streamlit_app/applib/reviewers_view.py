"""Reviewer statistics logic (no Streamlit calls): tables and charts of throughput,
agreement (Cohen's kappa, mean span IoU) and reputation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

STAT_COLUMNS = ["reviewer", "decisions", "accepts", "rejects", "per_hour", "second_opinions",
                "kappa", "mean_iou", "reputation"]
AGREEMENT_COLUMNS = ["type", "pairs", "kappa", "mean_iou"]


def shown(value: Any) -> str:
    """A measure for st.metric: integers as they are, others to 3 places, missing as 'n/a'."""
    if value is None or pd.isna(value):
        return "n/a"
    if float(value).is_integer() and not isinstance(value, float):
        return str(int(value))
    return f"{float(value):.3g}"


def stats_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """api.reviewer_stats rows as a table (accept share added; numbers rounded)."""
    frame = pd.DataFrame.from_records([dict(r) for r in rows], columns=STAT_COLUMNS)
    frame["accept share"] = [
        (a / d if d else None) for a, d in zip(frame["accepts"], frame["decisions"], strict=True)]
    for col in ("per_hour", "kappa", "mean_iou", "reputation", "accept share"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round(3)
    return frame


def agreement_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records([dict(r) for r in rows], columns=AGREEMENT_COLUMNS)
    for col in ("kappa", "mean_iou"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round(3)
    return frame


def measures_chart(stats: pd.DataFrame) -> alt.Chart:
    """Per reviewer: decisions per hour, kappa, mean IoU and reputation side by side."""
    long = stats.melt(id_vars=["reviewer"],
                      value_vars=["per_hour", "kappa", "mean_iou", "reputation"],
                      var_name="measure", value_name="value").dropna(subset=["value"])
    chart: alt.Chart = (alt.Chart(long).mark_bar()
            .encode(x=alt.X("value:Q", title=None),
                    y=alt.Y("reviewer:N", title=None),
                    color=alt.Color("reviewer:N", legend=None),
                    column=alt.Column("measure:N", title=None,
                                      sort=["per_hour", "kappa", "mean_iou", "reputation"]),
                    tooltip=["reviewer", "measure", alt.Tooltip("value:Q", format=".3f")])
            .resolve_scale(x="independent")
            .properties(width=200))
    return chart


def agreement_chart(agreement: pd.DataFrame) -> alt.Chart:
    """Kappa and mean IoU per event type (pairs in the tooltip)."""
    long = agreement.melt(id_vars=["type", "pairs"], value_vars=["kappa", "mean_iou"],
                          var_name="measure", value_name="value").dropna(subset=["value"])
    chart: alt.Chart = (alt.Chart(long).mark_bar()
            .encode(x=alt.X("type:N", title=None), y=alt.Y("value:Q", title=None),
                    color=alt.Color("measure:N", title=None),
                    xOffset="measure:N",
                    tooltip=["type", "pairs", "measure", alt.Tooltip("value:Q", format=".3f")]))
    return chart
