"""`secinf audit seal|verify`: the audit log's hash chain (docs/operations.md, "Audit log")."""

from __future__ import annotations

from dataclasses import asdict

import typer

from workers import audit_chain
from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.errors import SecinfError

app = typer.Typer(help="The audit log's hash chain: seal and verify.", no_args_is_help=True)


@app.command("seal")
def seal_command(
    limit: int = typer.Option(100_000, "--limit", min=1, help="Rows to seal at most."),
) -> None:
    """Seal the rows whose transactions have all ended (pg_cron does it every minute)."""
    with connect() as conn:
        n = audit_chain.seal(conn, limit)
    console.print(f"sealed {n:,} audit row(s)")


@app.command("verify")
def verify_command(
    seal_first: bool = typer.Option(False, "--seal", help="Seal what can be sealed first."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recompute every link of the chain; exit 1 naming the first broken link."""
    with connect() as conn:
        if seal_first:
            audit_chain.seal(conn)
        verdict = audit_chain.verify(conn)
    if json_out:
        print_json({**asdict(verdict), "whole": verdict.whole})
    elif verdict.whole:
        console.print(f"[green]audit chain whole[/green]: {verdict.rows_checked:,} rows "
                      f"checked in {verdict.seconds:.2f} s; {verdict.unsealed:,} not sealed yet")
    if not verdict.whole:
        row = verdict.broken_row or {}
        raise SecinfError(
            f"audit chain broken at position {verdict.first_broken} ({verdict.reason}): row "
            f"{row.get('audit_id')} of {row.get('at')}, action {row.get('action')!r} by "
            f"{row.get('actor')!r}. Every row from there on is unproven: restore the log "
            "from a backup taken before the change (docs/operations.md, \"Audit log\").")
