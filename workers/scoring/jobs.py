"""The queue's plug-in module for scoring (workers.queue.registry.PLUGIN_MODULES): importing
it attaches the `score_candidates` and `train_model` handlers."""

from workers.scoring.handler import configure, score_candidates
from workers.scoring.train_job import train_model_job

__all__ = ["configure", "score_candidates", "train_model_job"]
