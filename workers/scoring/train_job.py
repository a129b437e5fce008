"""The `train_model` job handler: train the job's project its own model (queued by
pg_cron's `scoring.enqueue_due_training` once enough examples are new, or by hand with
`secinf jobs enqueue`), report progress on the job row, and register (and, when it beats
the model in charge, activate) the model in the same fenced transaction that commits the
job's result: a stale attempt registers nothing.

The kind is declared by workers.queue.builtin; importing this module attaches the handler.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from workers.errors import UserError
from workers.queue import client
from workers.queue.registry import JobContext, JsonResult, set_handler
from workers.scoring.jobs import TRAIN_MODEL, TrainModelPayload
from workers.scoring.project_training import ProjectTrainConfig, publish, train_project

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 2.0
"""At most one progress write-back per this many seconds (the last phase always shows)."""


@set_handler(TRAIN_MODEL)
def train_model_job(payload: TrainModelPayload, ctx: JobContext) -> JsonResult:
    """Train, evaluate on held-out sources, register and maybe activate (fenced)."""
    job = ctx.job
    last = [0.0]
    cfg = ProjectTrainConfig(epochs=payload.epochs, seed=payload.seed, mode=payload.mode)
    try:
        with ctx.connection() as conn:

            def progress(data: dict[str, Any]) -> None:
                # On the training connection (a worker of concurrency 1 has one pooled
                # connection): train_project reports between its own transactions.
                ctx.check()
                now = time.monotonic()
                if data.get("phase") != "train" or now - last[0] >= PROGRESS_EVERY_S:
                    last[0] = now
                    conn.commit()
                    with client.write_back(conn, job.job_id, job.attempt):
                        client.progress(conn, job.job_id, job.attempt, data)

            pm = train_project(conn, job.project_id, cfg, progress)
            conn.commit()
    except UserError as exc:
        # Too few or one-sided examples: nothing to train on yet. Not a failure to retry.
        result = {"trained": False, "reason": str(exc), "requested_because": payload.reason}
        with ctx.write_back() as conn:
            ctx.complete_in(conn, result)
        return result
    ctx.check()
    with ctx.write_back() as conn:
        report = publish(conn, pm, commit=False)
        result = {"trained": True, "requested_because": payload.reason,
                  "version": report["version"], "activated": report["activated"],
                  "verdict": report["verdict"], "mode": report["mode"],
                  "held_out": report["metrics"]["held_out"],
                  "examples": {"train": pm.training["train"],
                               "held_out": pm.training["held_out"]},
                  "rescoring": (report["activation"] or {}).get("rescoring", 0),
                  "seconds": pm.seconds}
        ctx.complete_in(conn, result)
    log.info("job %s: project %s model %s (%s)", job.job_id, job.project_id,
             report["version"], report["verdict"])
    return result
