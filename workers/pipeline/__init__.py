"""The incremental pipeline from Python: run ticks, read status, load simulated scenes."""

from .report import SourceResult, TickReport
from .runner import pipeline_status, retry_sources, tick

__all__ = ["SourceResult", "TickReport", "pipeline_status", "retry_sources", "tick"]
