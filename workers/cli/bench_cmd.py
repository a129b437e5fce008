"""`secinf bench …`: benchmarks that print ratios measured in one run."""

from __future__ import annotations

import typer

from workers.bench.ingest_bench import bench_ingest
from workers.cli.quality_cmd import quality_command
from workers.cli.scoring_cmd import bench_scoring

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
) -> None:
    """Simulate, ingest and tick to completion: features points/s, Polars ratio, 2x scaling,
    the write floor against the 100k points/s budget; then the dense real scene's whole
    tick (rules included), its candidates stage in the tick ÷ alone, and the same scene on
    parallel lanes."""
    from workers.bench.pipeline_bench import bench_pipeline

    bench_pipeline(points, json_out, repeat, real=real, real_points=real_points,
                   real_lanes=real_lanes)


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
