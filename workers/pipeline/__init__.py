"""The incremental pipeline from Python: run ticks, read status, load simulated scenes."""

from .runner import SourceResult, TickReport, pipeline_status, tick

__all__ = ["SourceResult", "TickReport", "pipeline_status", "tick"]
