"""The scoring domain's job kinds: `score_candidates` and `train_model`.

Importing this module declares both kinds with handlers that import torch (through
workers.scoring.handler / train_job) only when a job of the kind is first run, so a worker
that never meets one never loads torch. Listed in the composition root, workers.job_kinds.
"""

from __future__ import annotations

import importlib.util
import threading

from pydantic import BaseModel, ConfigDict, Field

from workers.errors import UserError
from workers.queue.registry import JobContext, JsonResult, register_kind

DEFAULT_DEVICE = "auto"
_device = DEFAULT_DEVICE
_lock = threading.Lock()


class ScoreCandidatesPayload(BaseModel):
    """Score these rule candidates with the model (a batch: one job, many candidates)."""

    model_config = ConfigDict(extra="forbid")
    candidate_ids: list[int] = Field(min_length=1, max_length=10_000)
    model: str | None = None
    """A model version; None: the project's active model."""


SCORE_CANDIDATES = "score_candidates"


class TrainModelPayload(BaseModel):
    """Train the job's project a model of its own from its examples (docs/scoring.md)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)
    mode: str = Field("auto", pattern="^(auto|fine-tune|scratch)$")
    epochs: int | None = Field(None, ge=1, le=500)
    seed: int = 0


TRAIN_MODEL = "train_model"


SCORING_KINDS = (SCORE_CANDIDATES, TRAIN_MODEL)
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def configure(device: str = DEFAULT_DEVICE, *, now: bool = False) -> None:
    """Choose the model device (`auto`, `cpu`, `cuda`) for this process's scoring handler.
    Applied when the handler first loads, or at once (importing torch) with `now` or when
    it is already loaded; `now` makes `--device cuda` without a GPU fail at start."""
    global _device
    import sys

    if device not in DEVICE_CHOICES:
        raise UserError(f"--device {device!r} is not one of {', '.join(DEVICE_CHOICES)}")
    with _lock:
        _device = device
    if now or "workers.scoring.handler" in sys.modules:
        from workers.scoring import handler

        handler.configure(device)


def score_candidates(payload: ScoreCandidatesPayload, ctx: JobContext) -> JsonResult:
    """Load the scoring handler (and torch) on first use, then run it."""
    from workers.scoring import handler

    with _lock:
        device = _device
    if not handler.configured():
        handler.configure(device)
    return handler.score_candidates(payload, ctx)


def train_model(payload: TrainModelPayload, ctx: JobContext) -> JsonResult:
    """Load the training job (and torch) on first use, then run it."""
    from workers.scoring.train_job import train_model_job

    return train_model_job(payload, ctx)


_HAS_TORCH = importlib.util.find_spec("torch") is not None
"""Without torch the kinds are declared without handlers: they wait for a worker that has it."""

register_kind(SCORE_CANDIDATES, ScoreCandidatesPayload,
              score_candidates if _HAS_TORCH else None, timeout_s=600,
              description="model scores for rule candidates (handler: workers.scoring.handler, "
                          "loaded on first use)")
register_kind(TRAIN_MODEL, TrainModelPayload, train_model if _HAS_TORCH else None,
              timeout_s=3600,
              description="a project's own scoring model from its review decisions and "
                          "imported labels (handler: workers.scoring.train_job, loaded on first "
                          "use)")
