"""`secinf bench …`: benchmarks that print ratios measured in one run."""

from __future__ import annotations

from pathlib import Path

import typer

from workers.bench.ingest_bench import bench_ingest
from workers.cli.output import console, err_console, print_json, print_table
from workers.cli.quality_cmd import quality_command
from workers.cli.scoring_cmd import bench_scoring
from workers.errors import UserError

bench_app = typer.Typer(help="Benchmarks (ratios against the server's ceiling).",
                        no_args_is_help=True)


@bench_app.command("ingest")
def bench_ingest_command(
    points: int = typer.Option(2_000_000, "--points", min=1000, help="Points to ingest."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    repeat: int = typer.Option(3, "--repeat", min=1, max=15,
                               help="Pairs of timings (median ratio reported)."),
) -> None:
    """Ingest N simulated points; compare with COPY into an UNLOGGED, unindexed table."""
    bench_ingest(points, json_out, repeat)


@bench_app.command("pipeline")
def bench_pipeline_command(
    points: int = typer.Option(100_000, "--points", min=1000, help="Points in the 1x scene."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    repeat: int = typer.Option(3, "--repeat", min=1, max=15,
                               help="Pairs of 1x and 2x ticks (medians reported)."),
    real: bool = typer.Option(True, "--real/--no-real",
                              help="Also tick the dense real scene (UCY students001 + 003)."),
    real_points: int | None = typer.Option(None, "--real-points", min=100,
                                           help="Cut each real file to its first N points."),
    real_lanes: int = typer.Option(2, "--real-lanes", min=1,
                                   help="Tick the real scene again on N parallel lanes in a "
                                        "second project (1: not)."),
    parallel: int = typer.Option(1, "--parallel", min=1,
                                 help="Also tick the 1x points as --sources sources on one "
                                      "backend and on N at once (target ≥ 100k points/s "
                                      "and ≥ 1.8x on 2), and a dense source beside a light "
                                      "one (its lag against settle_s)."),
    sources: int = typer.Option(4, "--sources", min=2,
                                help="Sources of the --parallel run."),
) -> None:
    """Simulate, ingest and tick to completion: features points/s, Polars ratio, 2x scaling,
    the write floor against the 100k points/s budget; then the dense real scene's whole
    tick (rules included), its candidates stage in the tick ÷ alone, and the same scene on
    parallel lanes."""
    from workers.bench.pipeline_bench import bench_pipeline

    bench_pipeline(points, json_out, repeat, real=real, real_points=real_points,
                   real_lanes=real_lanes, parallel=parallel, parallel_sources=sources)


bench_app.command("scoring")(bench_scoring)


@bench_app.command("review")
def bench_review_command(
    points: int = typer.Option(100_000, "--points", min=1000,
                               help="Candidates in the scratch project."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Review-queue, counts, candidate and analytics page latencies (median, p95) as a
    reviewer through the PostgREST request model, on a scratch database."""
    from workers.bench.review_bench import bench_review

    bench_review(points, json_out)

bench_app.command("quality")(quality_command)


@bench_app.command("delivery")
def bench_delivery_command(
    mb: int = typer.Option(64, "--mb", min=1, max=4096, help="MiB of the downloaded file."),
    fetches: int = typer.Option(5, "--fetches", min=1, max=50,
                                help="Pairs of downloads (service, plain read)."),
    points: int = typer.Option(300_000, "--points", min=1000,
                               help="Points in the uploaded track CSV."),
    repeat: int = typer.Option(3, "--repeat", min=1, max=15,
                               help="Pairs of ingests (upload, secinf ingest)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """File service against plain paths: download MB/s through signed URLs over loopback
    HTTP ÷ a plain read of the file, and upload-to-ingested time ÷ `secinf ingest` of the
    same CSV (medians of alternating pairs), on a scratch database."""
    from workers.bench.delivery_bench import bench_delivery

    bench_delivery(mb, fetches, points, repeat, json_out)


@bench_app.command("prerequest")
def bench_prerequest_command(
    requests: int = typer.Option(2000, "--requests", min=20, max=1_000_000,
                                 help="Requests of each variant (interleaved)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """api.pre_request with metering and rate limits against its liveness checks alone:
    p50/p95 per GET request through the PostgREST request model, the p95 difference
    (target < 1 ms) and ratio, on a scratch database."""
    from workers.bench.prerequest_bench import bench_prerequest

    bench_prerequest(requests, json_out)


@bench_app.command("governance")
def bench_governance_command(
    audit_rows: int = typer.Option(1_000_000, "--audit-rows", min=100, max=50_000_000,
                                   help="Audit rows to write, seal and verify."),
    points: int = typer.Option(10_000_000, "--points", min=1_000, max=200_000_000,
                               help="Track points in all (90 % of them old enough to expire)."),
    source_points: int = typer.Option(1_000_000, "--source-points", min=200,
                                      help="Points of the current source one actor is erased "
                                           "from."),
    repeat: int = typer.Option(3, "--repeat", min=1, max=100,
                               help="Timed runs per exporter query."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Governance figures on a scratch database: the audit chain's seal rate and verify time
    (target: 1M rows in < 10 s); at --points track points, the exporter queries (< 50 ms
    each), erasing one actor of a --source-points source (< 30 s) and a retention run
    (minutes, not hours, for 10M)."""
    from workers.bench.governance_bench import bench_governance

    if source_points >= points:
        raise UserError(f"--source-points {source_points:,} must be below --points {points:,}")
    bench_governance(audit_rows, json_out, points=points, source_points=source_points,
                     repeat=repeat)


@bench_app.command("replica")
def bench_replica_command(
    candidates: int = typer.Option(100_000, "--candidates", min=100,
                                   help="Candidates in the scratch project."),
    repeats: int = typer.Option(30, "--repeat", min=3, max=1000,
                                help="Timed runs per query on each server."),
    load_seconds: float = typer.Option(5.0, "--load-seconds", min=0.5, max=600,
                                       help="How long the write load runs."),
    batch: int = typer.Option(1000, "--batch", min=1, help="Rows per commit of the load."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Read latency of the review app's queries on a streaming replica vs its primary
    (median, p95, ratio; target ≤ 1.2), then the replica's lag under a write load; on a
    scratch primary and replica of their own (deleted afterwards)."""
    from workers.bench.replica_bench import bench_replica

    bench_replica(candidates, repeats, load_seconds, batch, json_out)


@bench_app.command("monitoring")
def bench_monitoring_command(
    repeat: int = typer.Option(5, "--repeat", min=1, max=1000, help="Timed runs per query."),
    queries: Path | None = typer.Option(
        None, "--queries", help="postgres_exporter queries file (default: "
        "docker/monitoring/postgres_exporter_queries.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Time each postgres_exporter query (docker/monitoring) on the configured database, as
    secinf_monitor (target: < 50 ms each at 10M rows)."""
    from workers.bench.monitoring_bench import QUERIES_FILE, bench_monitoring

    bench_monitoring(repeat=repeat, queries_file=queries or QUERIES_FILE, json_out=json_out)


@bench_app.command("queue")
def bench_queue_command(
    jobs: int = typer.Option(50_000, "--jobs", min=10, max=10_000_000,
                             help="Jobs queued afresh for each worker count."),
    workers: str = typer.Option("1,4,16,64", "--workers",
                                help="Worker counts, comma-separated (one connection each)."),
    batch: int = typer.Option(1, "--batch", min=1, max=1000, help="Jobs per claim."),
    crash_workers: int = typer.Option(16, "--crash-workers", min=0,
                                      help="Workers of the crash round, a quarter of which "
                                           "die mid-job (0: no crash round)."),
    processes: bool = typer.Option(False, "--processes",
                                   help="Run each worker in its own process (default: "
                                        "threads)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Claim throughput and exactly-once of the job queue: jobs/s, claim p50/p95, duplicates
    and lost jobs per worker count over loopback TCP, and a round where workers die mid-job
    (their leases expire, others re-run the jobs, the dead workers' write-backs are refused),
    on a scratch database."""
    from workers.bench.queue_bench import bench_queue, parse_workers

    bench_queue(jobs, parse_workers(workers), batch, json_out, processes=processes,
                crash_workers=crash_workers)


@bench_app.command("learning")
def bench_learning_command(
    labelled: Path | None = typer.Option(None, "--labelled", help="Labelled scenes (default "
                                         "../shared/data/labelled)."),
    sim_scenes: int = typer.Option(6, min=2, max=48, help="Simulated scenes of the global "
                                                         "model."),
    epochs: int = typer.Option(20, min=1, max=500, help="Fine-tuning epochs (scratch: +10)."),
    time_examples: int = typer.Option(0, min=0, max=100_000, help="Also time training on "
                                      "this many examples (e.g. 5000)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Leave one labelled scene out: AP over the labelled events of rule_score (strict
    candidates, then every tier), the simulation-trained model, a model from the other
    scenes' labels, and the simulation model fine-tuned on them."""
    from workers.bench.learning_bench import run_learning_bench

    with err_console.status("learning bench…") as status:
        report = run_learning_bench(labelled, sim_scenes, epochs, time_examples,
                                    say=lambda m: status.update(m))
    if json_out:
        print_json(report)
        return
    print_table(report["scenes"], title="held-out scene: AP over its labelled events, by "
                "score (candidates: strict + recall; bound: share of events any candidate "
                "holds)")
    print_table(report["summary"], title="mean over held-out scenes")
    if "timing" in report:
        t = report["timing"]
        console.print(f"training from scratch on {t['examples']} examples, {t['epochs']} "
                      f"epochs: {t['minutes']} min (target < {t['target_minutes']})",
                      highlight=False)
