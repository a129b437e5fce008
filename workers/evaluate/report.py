"""`secinf evaluate`: match a source's candidates against truth.json; P/R/F1 per type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from rich.table import Table

from workers.simulate import EVENT_TYPES

from .matching import DEFAULT_MIN_IOU, MatchResult, match_events
from .truth import SourceRef, Truth, load_candidates, resolve_source


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation."""

    source: SourceRef
    truth_events: int
    candidates: int
    min_iou: float
    result: MatchResult

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source.name, "source_id": self.source.source_id,
                "project_id": self.source.project_id, "truth_events": self.truth_events,
                "candidates": self.candidates, "min_iou": self.min_iou,
                **self.result.as_dict()}


def evaluate_source(conn: psycopg.Connection[Any], truth: Truth, source: str,
                    project: str | None = None, min_iou: float = DEFAULT_MIN_IOU,
                    ontology_id: int | None = None) -> Evaluation:
    """Evaluate the candidates of `source` (active ontology unless named) against truth."""
    src = resolve_source(conn, source, project)
    cands = load_candidates(conn, src, ontology_id)
    result = match_events(truth.events, cands, min_iou=min_iou, types=EVENT_TYPES)
    return Evaluation(src, len(truth.events), len(cands), min_iou, result)


def table(result: MatchResult, title: str = "rule quality") -> Table:
    """A rich table: one row per type, then the overall (micro-averaged) row."""
    t = Table(title=title)
    for col in ("type", "truth", "cands", "TP", "FP", "FN", "precision", "recall", "F1"):
        t.add_column(col, justify="left" if col == "type" else "right")
    rows = [*sorted(result.per_type.items()), ("overall", result.overall)]
    for name, s in rows:
        t.add_row(name, str(s.tp + s.fn), str(s.tp + s.fp), str(s.tp), str(s.fp), str(s.fn),
                  f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}",
                  style="bold" if name == "overall" else None)
    return t
