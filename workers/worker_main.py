"""The worker process: `secinf worker` and `python -m workers.queue` (see docs/queue.md).

Wires the queue (workers.queue, infrastructure) to the job kinds of the composition root
(workers.job_kinds, loaded by the worker at start) and the settings. Every default comes
from `WorkerConfig`; torch loads only when a scoring job runs (workers.scoring.jobs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

import typer

from workers import logs
from workers.errors import SecinfError, UserError
from workers.metrics import serve_metrics
from workers.queue.worker import WorkerConfig, WorkerStats, run_worker
from workers.scoring.jobs import DEFAULT_DEVICE, SCORING_KINDS, configure
from workers.settings import load_settings

_DEFAULTS = WorkerConfig()


def worker_command(
    kinds: list[str] | None = typer.Option(
        None, "--kinds", "-k", help="Only these job kinds (repeat or comma-separate). "
        "Default: every kind this worker has a handler for; unknown kinds are dead-lettered."),
    concurrency: int = typer.Option(_DEFAULTS.concurrency, "--concurrency", "-c", min=1, max=256,
                                    help="Jobs run at once (threads)."),
    batch: int = typer.Option(_DEFAULTS.batch, min=1, max=1000,
                              help="At most this many jobs per claim."),
    lease: float = typer.Option(_DEFAULTS.lease_s, "--lease", min=1.0,
                                help="Lease in seconds (heartbeats every third of it)."),
    poll: float = typer.Option(_DEFAULTS.poll_s, "--poll", min=0.1,
                               help="Fallback poll in seconds when no NOTIFY arrives."),
    grace: float = typer.Option(_DEFAULTS.grace_s, "--grace", min=0.0,
                                help="On SIGTERM, seconds running jobs get to finish."),
    once: bool = typer.Option(False, "--once", help="Claim one batch, run it, exit."),
    until_idle: bool = typer.Option(False, "--until-idle",
                                    help="Exit once no job is due and none is running."),
    plugin: list[str] | None = typer.Option(
        None, "--plugin", help="Extra module that registers job kinds (importable name)."),
    role: str = typer.Option(_DEFAULTS.role or "", "--role",
                             help="Database role the worker acts as ('' keeps the login role)."),
    worker_id: str | None = typer.Option(None, "--id", help="Worker name in attempts."),
    json_out: bool = typer.Option(False, "--json", help="Print the final counts as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every job."),
    device: str = typer.Option(DEFAULT_DEVICE, "--device",
                               help="Model device for scoring jobs: auto (CUDA when present), "
                                    "cpu or cuda."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=0, max=65535,
        help="Serve Prometheus metrics on this port at /metrics (0: off). "
             "Default: SECINF_WORKER_METRICS_PORT, else off."),
    metrics_host: str | None = typer.Option(
        None, "--metrics-host", help="Address of the metrics server. Default: "
        "SECINF_WORKER_METRICS_HOST, else 127.0.0.1."),
) -> None:
    """Run queued jobs until stopped (SIGTERM: finish or release, then exit). With a shard
    map (SECINF_SHARDS), one claim loop per shard, each with --concurrency threads."""
    if once and until_idle:
        raise UserError("--once and --until-idle exclude each other: pick one")
    names = tuple(k.strip() for item in (kinds or []) for k in item.split(",") if k.strip())
    # A worker named to score (or told a device) loads torch and checks the device now;
    # any other loads it only if a scoring job reaches it.
    configure(device, now=device != DEFAULT_DEVICE or bool(set(names) & set(SCORING_KINDS)))
    settings = load_settings()
    logs.configure(settings.log_format, logging.DEBUG if verbose else logging.INFO)
    config = WorkerConfig(
        kinds=names or None, concurrency=concurrency, batch=batch, lease_s=lease, poll_s=poll,
        grace_s=grace, role=role or None, worker_id=worker_id,
        mode="once" if once else "until_idle" if until_idle else "forever",
        plugins=tuple(plugin or ()),
    )
    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    server = serve_metrics(port, metrics_host or settings.worker_metrics_host) if port else None
    if server is not None:
        logging.getLogger(__name__).info("metrics at %s", server.url)
    try:
        if settings.shards is not None:  # one pool over every shard (docs/scale.md)
            from workers import shards
            from workers.queue.sharded import run_sharded

            found = shards.shards(settings)
            if not found:
                raise UserError("the shard map (SECINF_SHARDS) has no shards: add them with "
                                "`secinf shards add NAME CONNINFO`")
            stats: WorkerStats = run_sharded(found, config)
        else:
            stats = run_worker(settings.conninfo(), config)
    finally:
        if server is not None:
            server.close()
    if json_out:
        sys.stdout.write(json.dumps(dataclasses.asdict(stats), indent=2, default=str) + "\n")


def main() -> None:
    """Entry point of `python -m workers.queue` (same exit codes as `secinf`)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(worker_command)
    try:
        app()
    except SecinfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
