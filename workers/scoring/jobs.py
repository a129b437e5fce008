"""The queue's plug-in module for scoring (workers.queue.registry.PLUGIN_MODULES): importing
it attaches the `score_candidates` handler."""

from workers.scoring.handler import configure, score_candidates

__all__ = ["configure", "score_candidates"]
