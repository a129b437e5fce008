"""Rule quality: ground truth, matching, P/R/F1 per type, threshold tuning."""

from .matching import Event, MatchResult, TypeScore, match_events, temporal_iou
from .report import Evaluation, evaluate_source, table
from .truth import Truth, load_truth, parse_truth

__all__ = [
    "Evaluation", "Event", "MatchResult", "Truth", "TypeScore", "evaluate_source",
    "load_truth", "match_events", "parse_truth", "table", "temporal_iou",
]
