"""The composition root of the work queue: which modules declare job kinds.

The queue (workers.queue) is infrastructure and imports no domain; a worker imports the
modules listed here (registry.load_plugins) and any `--plugin`. Each module declares its
kinds with `register_kind` when imported and must not import torch at import time (the
scoring kinds load it on first use). A module that does not exist (yet) is skipped.
"""

from __future__ import annotations

MODULES: tuple[str, ...] = (
    "workers.queue.builtin",          # noop, echo
    "workers.scoring.jobs",           # score_candidates, train_model
    "workers.pipeline.jobs",          # pipeline_run, pipeline_reprocess
    "workers.pipeline.source_jobs",   # pipeline_tick_source (queue mode's scheduler)
    "workers.rules.jobs",             # rules_backfill
    "workers.ingest.upload_job",      # ingest_file
    "workers.billing.report_usage",   # report_usage
    "workers.records.jobs",           # erase_subject, expire_dataset_files
)
