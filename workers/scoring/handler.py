"""The `score_candidates` job handler: read a batch of candidates' features, build their
windows, run the model (CUDA when present), and write model_score, model_version and the
embedding back in one fenced transaction that also commits the job's result.

The kind is declared by workers.queue.builtin; importing this module attaches the handler
(workers.scoring.jobs is the queue's plug-in name for it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from workers import metrics
from workers.db.queries import query
from workers.errors import NotFound
from workers.queue.client import Conn
from workers.queue.registry import JobContext, JsonResult, PermanentError, set_handler
from workers.scoring.device import select_device
from workers.scoring.inputs import fetch_candidates, load_inputs
from workers.scoring.jobs import SCORE_CANDIDATES, ScoreCandidatesPayload
from workers.scoring.registry import RegisteredModel, load_model
from workers.scoring.train import predict
from workers.scoring.windows import build_windows, type_index

log = logging.getLogger(__name__)
DEFAULT_BATCH = 256


@dataclass
class _Options:
    device: torch.device
    batch_size: int = DEFAULT_BATCH


_OPTIONS: _Options | None = None
_OPTIONS_LOCK = threading.Lock()


def configure(device: str = "auto", batch_size: int = DEFAULT_BATCH) -> torch.device:
    """Set the device (`auto`: CUDA when present) and model batch size of this process's
    handler; returns the device chosen. Called by `secinf worker --device`."""
    global _OPTIONS
    dev = select_device(device)
    with _OPTIONS_LOCK:
        _OPTIONS = _Options(dev, max(1, int(batch_size)))
    return dev


def configured() -> bool:
    """Whether `configure` already ran in this process."""
    with _OPTIONS_LOCK:
        return _OPTIONS is not None


def _options() -> _Options:
    with _OPTIONS_LOCK:
        opts = _OPTIONS
    return opts if opts is not None else _Options(select_device("auto"))


def vector_literal(values: npt.NDArray[np.float32]) -> str:
    """A pgvector text literal: `[v1,v2,…]`."""
    return "[" + ",".join(f"{float(v):.7g}" for v in values) + "]"


@dataclass(frozen=True)
class Scored:
    """Scores of one batch: ids, probabilities and embeddings in the same order."""

    ids: list[int]
    scores: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float32]
    version: str
    seconds: dict[str, float]


def score_batch(conn: Conn, ids: Sequence[int], project_id: str | None,
                version: str | None = None, device: torch.device | None = None,
                batch_size: int = DEFAULT_BATCH) -> Scored:
    """Read, window and score candidates (nothing is written)."""
    t0 = time.perf_counter()
    model: RegisteredModel = load_model(conn, version=version, project_id=project_id)
    cands = fetch_candidates(conn, ids, project_id)
    inputs = load_inputs(conn, cands)
    t1 = time.perf_counter()
    windows = build_windows(inputs, model.config.steps)
    types = np.array([type_index(c.type) for c in cands], dtype=np.int64)
    t2 = time.perf_counter()
    probs, embs = predict(model.model, model.norm, windows, types, device, batch_size)
    t3 = time.perf_counter()
    return Scored([c.candidate_id for c in cands], probs, embs, model.version,
                  {"read": t1 - t0, "windows": t2 - t1, "model": t3 - t2})


def write_scores(conn: Conn, job_id: int, attempt: int, scored: Scored) -> int:
    """The fenced write-back (scoring.write_scores); raises StaleAttempt via the caller's
    write_back() context, or psycopg's error when called outside one."""
    row = conn.execute(query("scoring", "write_scores"), {
        "job_id": job_id, "attempt": attempt, "ids": scored.ids,
        "scores": [float(s) for s in scored.scores],
        "embeddings": [vector_literal(e) for e in scored.embeddings],
        "version": scored.version}).fetchone()
    assert row is not None
    return int(row["updated"])


@set_handler(SCORE_CANDIDATES)
def score_candidates(payload: ScoreCandidatesPayload, ctx: JobContext) -> JsonResult:
    """Score the payload's candidates and write the scores back (fenced), with the result."""
    opts = _options()
    job = ctx.job
    try:
        with ctx.connection() as conn:
            started = time.perf_counter()
            scored = score_batch(conn, payload.candidate_ids, job.project_id, payload.model,
                                 opts.device, opts.batch_size)
            metrics.SCORE_BATCH.labels(opts.device.type).observe(time.perf_counter() - started)
            metrics.MODEL_FORWARD.labels(opts.device.type).observe(scored.seconds["model"])
    except NotFound as exc:
        raise PermanentError(f"score_candidates: {exc}") from exc
    ctx.check()
    result: dict[str, Any] = {
        "requested": len(payload.candidate_ids), "model_version": scored.version,
        "device": opts.device.type,
        "seconds": {k: round(v, 4) for k, v in scored.seconds.items()}}
    with ctx.write_back() as conn:
        result["scored"] = write_scores(conn, job.job_id, job.attempt, scored)
        ctx.complete_in(conn, result)
    metrics.CANDIDATES_SCORED.inc(result["scored"])  # committed: write_back() has returned
    log.info("job %s: scored %s of %s candidates with %s on %s", job.job_id, result["scored"],
             result["requested"], scored.version, opts.device)
    return result
