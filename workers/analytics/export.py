"""The metrics of api.project_metrics as CSV: one file per metric, columns in a fixed order
(the order of the metric function's result), a header even when there are no rows. Text
cells are made safe for spreadsheets (`csv_cell`): zone, route and source names are free
text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Metric (key of the project_metrics document) → its columns, as api.metrics_* return them.
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "events_over_time": ("bucket", "type", "verification", "events"),
    "dwell_histogram": ("zone", "bin_start_s", "bin_end_s", "events"),
    "follow_rate": ("source_id", "source_name", "day", "follows", "actors", "rate"),
    "route_shares": ("zone", "route", "choices", "share"),
    "reaction_latency": ("trigger", "bin_start_s", "bin_end_s", "events"),
    "class_balance": ("type", "events", "events_rule", "events_model", "events_human", "share",
                      "candidates", "candidates_new", "candidates_scored",
                      "candidates_in_review", "candidates_accepted", "candidates_rejected"),
}


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""


def csv_cell(value: Any) -> Any:
    """A cell that a spreadsheet shows as text: text starting with = + - @, a tab or a
    carriage return gets a leading single quote (OWASP's rule). Anything that is not text
    (numbers, negative ones included) is returned as is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def metric_csv(metric: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text of one metric's rows; None is an empty field, text goes through csv_cell."""
    try:
        columns = METRIC_COLUMNS[metric]
    except KeyError as exc:
        raise KeyError(f"no metric {metric!r}: one of {', '.join(METRIC_COLUMNS)}") from exc
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else csv_cell(row[c]) for c in columns])
    return out.getvalue()


def write_csv(doc: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write `<metric>.csv` for every metric of a project_metrics document."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric in METRIC_COLUMNS:
        path = directory / f"{metric}.csv"
        path.write_text(metric_csv(metric, doc.get(metric) or []))
        paths.append(path)
    return paths
