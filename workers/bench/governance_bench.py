"""`secinf bench governance`: the governance targets of issue 19 as figures, on a scratch
database. So far the audit chain: `audit_rows` rows written through the log's insert path,
sealed into the chain (rows/s), then verified link by link (seconds; target: 1M rows in
< 10 s). Prints figures, asserts nothing."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.table import Table

from workers.bench.scratch import scratch_database, settle
from workers.cli.output import console, print_json

VERIFY_TARGET_S = 10.0
VERIFY_TARGET_ROWS = 1_000_000


def _audit_chain(target: str, rows: int) -> dict[str, Any]:
    with psycopg.connect(target, row_factory=dict_row) as conn:
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO audit.log (project_id, actor, action, target, details)"
            " SELECT NULL, 'bench', 'bench.row', 'row ' || i, jsonb_build_object('i', i)"
            " FROM generate_series(1, %s) i", (rows,))
        conn.commit()
        written_s = time.perf_counter() - started
        settle(conn)
        started = time.perf_counter()
        sealed = 0
        while True:
            got = conn.execute("SELECT audit.seal(200000) AS n").fetchone()
            conn.commit()
            if got is None or not got["n"]:
                break
            sealed += int(got["n"])
        seal_s = time.perf_counter() - started
        conn.execute("ANALYZE audit.log")
        conn.commit()
        started = time.perf_counter()
        verdict = conn.execute("SELECT * FROM audit.verify_chain()").fetchone()
        verify_s = time.perf_counter() - started
        conn.rollback()
    assert verdict is not None
    return {"rows": rows, "write_s": round(written_s, 2), "sealed": sealed,
            "seal_s": round(seal_s, 2), "seal_rows_per_s": round(sealed / max(seal_s, 1e-9)),
            "verify_s": round(verify_s, 2), "rows_checked": verdict["rows_checked"],
            "whole": verdict["first_broken"] is None,
            "verify_s_per_million": round(verify_s * 1e6 / max(rows, 1), 2),
            "target_s_per_million": VERIFY_TARGET_S,
            "passed": verify_s * VERIFY_TARGET_ROWS / max(rows, 1) < VERIFY_TARGET_S}


def bench_governance(audit_rows: int = VERIFY_TARGET_ROWS, json_out: bool = False
                     ) -> dict[str, Any]:
    with console.status(f"audit chain: {audit_rows:,} rows (write, seal, verify)"), \
            scratch_database("governance") as target:
        result = {"audit_chain": _audit_chain(target, audit_rows)}
    if json_out:
        print_json(result)
        return result
    a = result["audit_chain"]
    table = Table(title="governance (issue 19): figures on a scratch database")
    for name in ("figure", "value", "target", ""):
        table.add_column(name)
    table.add_row("audit rows written", f"{a['rows']:,} in {a['write_s']:.2f} s", "", "")
    table.add_row("audit chain sealed", f"{a['seal_rows_per_s']:,} rows/s "
                                        f"({a['seal_s']:.2f} s)", "", "")
    table.add_row("audit chain verified", f"{a['verify_s']:.2f} s for {a['rows_checked']:,} "
                                          f"rows ({a['verify_s_per_million']:.2f} s per 1M)",
                  f"< {VERIFY_TARGET_S:.0f} s per 1M",
                  "[green]pass[/green]" if a["passed"] else "[red]miss[/red]")
    console.print(table)
    if not a["whole"]:
        console.print("[red]the chain did not verify[/red]")
    return result
