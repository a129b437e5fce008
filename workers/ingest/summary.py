"""What an ingest reports: the JSON summary, the readable table, and the rejection error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from workers.errors import UserError

SHOW_ERRORS = 20
"""Errors listed in the readable summary (all are in --json, up to the kept 100)."""


@dataclass
class IngestSummary:
    """The outcome of one batch; `as_json()` is what `--json` prints."""

    batch_id: int | None
    source: str
    rows_total: int = 0
    inserted: int = 0
    duplicate: int = 0
    invalid: int = 0
    ignored: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    duplicate_batch: bool = False
    seconds: float = 0.0
    units: str | None = None
    poses_total: int = 0
    poses_inserted: int = 0
    poses_invalid: int = 0
    late: dict[str, Any] | None = None
    scene: dict[str, int] | None = None
    min_t: float | None = None
    max_t: float | None = None
    idempotency_key: str | None = None
    ended_at: datetime | None = None
    """--ended: where the source's recording now ends."""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "batch_id": self.batch_id, "source": self.source, "rows_total": self.rows_total,
            "inserted": self.inserted, "duplicate": self.duplicate, "invalid": self.invalid,
            "ignored": self.ignored, "errors": self.errors,
            "error_counts": self.error_counts, "duplicate_batch": self.duplicate_batch,
            "seconds": round(self.seconds, 3), "units": self.units,
            "idempotency_key": self.idempotency_key,
        }
        if self.poses_total:
            out["poses"] = {"total": self.poses_total, "inserted": self.poses_inserted,
                            "invalid": self.poses_invalid}
        if self.late is not None:
            out["late"] = self.late
        if self.scene is not None:
            out["scene"] = self.scene
        if self.ended_at is not None:
            out["ended_at"] = self.ended_at.isoformat()
        return out

    def render(self, console: Console) -> None:
        """A readable summary: counts, then the first errors as a table."""
        if self.duplicate_batch:
            console.print(f"[yellow]duplicate batch[/]: batch {self.batch_id} was already "
                          "applied with the same idempotency key; nothing inserted")
        console.print(
            f"source {self.source} · batch {self.batch_id} · {self.rows_total:,} rows: "
            f"{self.inserted:,} inserted, {self.duplicate:,} duplicate, "
            f"{self.invalid:,} invalid, {self.ignored:,} ignored · {self.seconds:.2f} s",
            highlight=False)
        if self.poses_total:
            console.print(f"poses: {self.poses_inserted:,} of {self.poses_total:,} inserted, "
                          f"{self.poses_invalid:,} invalid", highlight=False)
        if self.ended_at is not None:
            console.print(f"recording ended at {self.ended_at.isoformat()}: intervals that "
                          "last to its last frame are emitted", highlight=False)
        if self.late:
            console.print(f"late data: dirty range {self.late['from_ts']} → "
                          f"{self.late['to_ts']} queued for the pipeline", highlight=False)
        if self.scene:
            console.print(f"scene: {self.scene['zones']} zones, {self.scene['routes']} routes, "
                          f"{self.scene['triggers']} triggers", highlight=False)
        if self.errors:
            render_errors(console, self.errors, self.error_counts)


def render_errors(console: Console, errors: list[dict[str, Any]],
                  counts: dict[str, int]) -> None:
    table = Table(title=f"first {min(len(errors), SHOW_ERRORS)} of "
                        f"{sum(counts.values()) or len(errors)} problems")
    for col in ("row", "column", "code", "message"):
        table.add_column(col, overflow="fold")
    for e in errors[:SHOW_ERRORS]:
        table.add_row(str(e["row"]) if e["row"] is not None else "",
                      e["column"] or "", e["code"], e["message"])
    console.print(table)
    if counts:
        console.print("by code: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())),
                      highlight=False)


class Rejected(UserError):
    """The batch was rejected (--strict) and nothing was stored."""

    def __init__(self, summary: IngestSummary) -> None:
        self.summary = summary
        n = sum(summary.error_counts.values())
        first = summary.errors[0] if summary.errors else None
        where = (f"; first: row {first['row']} {first['column'] or ''} {first['code']}: "
                 f"{first['message']}") if first else ""
        super().__init__(f"--strict: batch rejected, {n:,} problem(s) in "
                         f"{summary.invalid:,} row(s){where}. Nothing was stored; fix the "
                         "input or drop --strict to load the valid rows")
