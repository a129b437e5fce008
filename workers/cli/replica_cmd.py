"""`secinf db replica up|status|down`: a streaming read replica of the project's cluster
(workers/db/replica.py)."""

from __future__ import annotations

import typer

from workers.cli.output import console, print_json
from workers.db import replica as rp
from workers.settings import load_settings

app = typer.Typer(help="A streaming read replica of the local cluster (SECINF_READ_DSN).",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON.")


def lag_text(st: rp.ReplicaStatus) -> str:
    """`streaming · lag 0 B, 0.0 s` (or why there is no lag to show)."""
    if not st.running:
        return "[red]not running[/]"
    state = "[green]streaming[/]" if st.streaming else "[yellow]not streaming[/]"
    size = "?" if st.lag_bytes is None else f"{st.lag_bytes:,} B"
    secs = "?" if st.lag_seconds is None else f"{st.lag_seconds:.1f} s"
    return f"{state} · lag {size}, {secs}"


@app.command()
def up(json_out: bool = JSON) -> None:
    """Copy the running cluster with pg_basebackup and start it as a hot standby on its own
    port (SECINF_REPLICA_PORT, else the first free one); nothing is copied twice."""
    settings = load_settings()
    with console.status("starting the read replica…") as spinner:
        st = rp.up(settings, step=lambda text: spinner.update(text + "…"))
    if json_out:
        print_json(st.row())
        return
    console.print(f"[green]✓[/] read replica on port {st.port} ({st.home}) · "
                  f"{lag_text(st)}", highlight=False)
    console.print("Send read-only work there (analysts, the review app's reads, analytics "
                  "exports):", highlight=False)
    print(f"export SECINF_READ_DSN='{st.conninfo}'")


@app.command()
def status(json_out: bool = JSON) -> None:
    """Is the replica streaming, and how far behind is it (bytes, from the primary's
    pg_stat_replication; seconds, from its last replayed commit)?"""
    settings = load_settings()
    st = rp.status(settings)
    if json_out:
        print_json(st.row())
    else:
        where = f"port {st.port} ({st.home})" if st.managed else str(st.conninfo)
        if st.managed and not st.exists:
            console.print("no read replica (start one with `secinf db replica up`)")
        else:
            console.print(f"read replica at {where}: {lag_text(st)}", highlight=False)
            if st.slot_retained_bytes is not None:
                console.print(f"slot {rp.SLOT}: the primary keeps "
                              f"{st.slot_retained_bytes:,} B of WAL for it", highlight=False)
    if not st.running:
        raise typer.Exit(3)


@app.command()
def down() -> None:
    """Stop the local replica, delete its directory and drop its replication slot."""
    removed = rp.down(load_settings())
    console.print("[green]✓[/] read replica stopped and removed" if removed
                  else "no read replica")
