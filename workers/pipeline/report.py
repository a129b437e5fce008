"""What ticks did: per source (SourceResult) and summed (TickReport), parsed from the JSON
that pipeline.tick() and pipeline.tick_finish() return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SourceResult:
    """What one tick did to one source."""

    source_id: int
    status: str
    points: int = 0
    dirty: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    more: bool = False
    """The range stopped short of the target (tick_max_span_s): another tick has work."""
    stage: str | None = None
    """A failed source: the step that failed (plan, a stage's name, finish)."""
    failures: int = 0
    """A failed source: its failures in a row (pipeline.source_failures)."""
    retry_at: str | None = None
    """A failed source: when a tick tries it again (ISO; pipeline.retry_delay)."""


@dataclass
class TickReport:
    """The sum of one or more ticks."""

    ticks: int = 0
    busy: bool = False
    points: int = 0
    dirty: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Time spent in each stage function (measured inside the tick), summed."""
    errors: list[SourceResult] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """{source_id, source, code, message} per warning of a ticked source, read after the
    last commit (sql/460_pipeline_checks.sql; not counted in `seconds`)."""

    def as_dict(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "busy": self.busy, "points": self.points,
                "dirty": self.dirty, "rows": self.rows, "seconds": round(self.seconds, 3),
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "errors": [{"source_id": e.source_id, "error": e.error, "stage": e.stage,
                            "failures": e.failures, "retry_at": e.retry_at}
                           for e in self.errors],
                "warnings": self.warnings}


def parse_source(source: dict[str, Any]) -> SourceResult:
    """One element of pipeline.tick()'s `sources` (or pipeline.tick_finish's result)."""
    return SourceResult(source_id=int(source["source_id"]), status=str(source["status"]),
                        points=int(source.get("points") or 0), dirty=int(source.get("dirty") or 0),
                        rows={k: int(v) for k, v in (source.get("rows") or {}).items()},
                        ms={k: float(v) for k, v in (source.get("ms") or {}).items()},
                        error=source.get("error"), more=bool(source.get("more")),
                        stage=source.get("stage"), failures=int(source.get("failures") or 0),
                        retry_at=source.get("retry_at"))


def add_source(report: TickReport, s: SourceResult) -> None:
    """Count one source's result into the report."""
    report.points += s.points
    report.dirty += s.dirty
    for stage, n in s.rows.items():
        report.rows[stage] = report.rows.get(stage, 0) + n
    for stage, ms in s.ms.items():
        report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + ms / 1000
    if s.status == "error":
        report.errors.append(s)
