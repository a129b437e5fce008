"""`secinf bench …`: benchmarks that print ratios measured in one run."""

from __future__ import annotations

import typer

from workers.bench.ingest_bench import bench_ingest

bench_app = typer.Typer(help="Benchmarks (ratios against the server's ceiling).",
                        no_args_is_help=True)


@bench_app.command("ingest")
def bench_ingest_command(
    points: int = typer.Option(2_000_000, "--points", min=1000, help="Points to ingest."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ingest N simulated points; compare with COPY into an UNLOGGED, unindexed table."""
    bench_ingest(points, json_out)
