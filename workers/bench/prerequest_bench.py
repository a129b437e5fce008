"""`secinf bench prerequest`: what metering and rate limiting add to every API request.

In a scratch database (beside the configured one, dropped afterwards): one project on a
plan whose buckets never empty and whose daily quota is never reached, a real API key
exchanged for its claims, and `api.pre_request_baseline()`, the pre-request function's
liveness checks without metering and rate limits (its body before issue 18). Then GET
/projects as PostgREST runs it, on one `authenticator` connection (PostgREST's pool): a
READ ONLY transaction, SET LOCAL ROLE, the claims, the pre-request function, the query, the
response headers read back; alternately with `api.pre_request()` (two buckets taken, the
quota checked, the request counted in shared memory) and with the baseline, in ABBA order
so drift falls on both. Prints p50 and p95 per request of each, the p95 difference (the
issue's target: under 1 ms) and the ratio; seconds are printed, never asserted. Finally
the counted requests are flushed and compared with those made.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.table import Table

from workers import tenancy
from workers.bench.scratch import as_authenticator, scratch_database
from workers.cli.output import console, print_json
from workers.db.connect import connect
from workers.db.queries import query
from workers.errors import UserError
from workers.settings import load_settings

TARGET_P95_MS = 1.0
VARIANTS = ("with_limits", "without_limits")
Conn = psycopg.Connection[dict[str, Any]]



def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _request(conn: Conn, claims: str, variant: str) -> tuple[float, float]:
    """One GET /projects; (milliseconds of the whole request, of the pre-request call)."""
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(query("bench_prerequest", "read_only"))
        conn.execute(query("bench_prerequest", "role"))
        conn.execute(query("bench_prerequest", "claims"), {"claims": claims})
        before = time.perf_counter()
        conn.execute(query("bench_prerequest", variant))
        pre = time.perf_counter() - before
        conn.execute(query("bench_prerequest", "main_query")).fetchall()
        conn.execute(query("bench_prerequest", "response_headers")).fetchone()
    return (time.perf_counter() - started) * 1000, pre * 1000


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples), 3),
            "p95_ms": round(_percentile(samples, 0.95), 3)}


def bench_prerequest(requests: int, json_out: bool, warmup: int = 50) -> dict[str, Any]:
    """Time `requests` requests of each variant, interleaved; prints and returns figures."""
    if requests < 20:
        raise UserError(f"--requests {requests} is too few for a p95; use at least 20")
    settings = load_settings()
    totals: dict[str, list[float]] = {v: [] for v in VARIANTS}
    pre: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with scratch_database("prerequest", settings) as target:
        with connect(settings, conninfo=target) as admin:
            project = str(tenancy.create_project(admin, "bench-org", "prerequest")["project_id"])
            admin.execute(query("bench_prerequest", "bench_plan"))
            admin.execute(query("bench_prerequest", "use_bench_plan"), {"project_id": project})
            admin.execute(query("bench_prerequest", "baseline_function"))
            admin.commit()
            key = tenancy.create_key(admin, project, "customer")["api_key"]
            answer: Any = admin.execute(query("bench_prerequest", "exchange_key"),
                                   {"api_key": key}).fetchone()
            admin.commit()
            assert answer is not None
            claims = json.dumps(answer["answer"]["claims"])
        with psycopg.connect(as_authenticator(target, settings), row_factory=dict_row,
                             autocommit=True) as conn:
            for i in range(warmup):  # plans, the module compiled, the segment mapped
                _request(conn, claims, VARIANTS[i % 2])
            for i in range(requests):
                order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    total, call = _request(conn, claims, variant)
                    totals[variant].append(total)
                    pre[variant].append(call)
        with connect(settings, conninfo=target) as admin:
            admin.execute(query("bench_prerequest", "flush"))
            admin.commit()
            row: Any = admin.execute(query("bench_prerequest", "counted"),
                                {"project_id": project}).fetchone()
            counted = int(row["n"]) if row else 0
    made = requests + (warmup + 1) // 2
    figures: dict[str, Any] = {
        "requests": requests, "warmup": warmup,
        "request": {v: _summary(totals[v]) for v in VARIANTS},
        "pre_request_call": {v: _summary(pre[v]) for v in VARIANTS},
        "counted": counted, "made_with_limits": made,
    }
    with_p95 = figures["request"]["with_limits"]["p95_ms"]
    without_p95 = figures["request"]["without_limits"]["p95_ms"]
    figures["p95_added_ms"] = round(with_p95 - without_p95, 3)
    # Each pair ran back to back: the median of their differences resists the machine's noise.
    pairs = [w - o for w, o in zip(totals["with_limits"], totals["without_limits"], strict=True)]
    figures["paired_added_ms"] = {"p50_ms": round(statistics.median(pairs), 3)}
    figures["p95_ratio"] = round(with_p95 / without_p95, 3) if without_p95 else None
    figures["target_p95_added_ms"] = TARGET_P95_MS
    figures["passed"] = figures["p95_added_ms"] < TARGET_P95_MS
    if json_out:
        print_json(figures)
        return figures
    table = Table(title=f"GET /projects as a customer with an API key: {requests} requests "
                        "of each, interleaved (ABBA), one authenticator connection")
    table.add_column("pre-request", no_wrap=True)
    for col in ("p50 ms", "p95 ms", "call p50", "call p95"):
        table.add_column(col, justify="right", no_wrap=True)
    names = {"with_limits": "metered + limited", "without_limits": "baseline"}
    for v in VARIANTS:
        r, c = figures["request"][v], figures["pre_request_call"][v]
        table.add_row(names[v], f"{r['p50_ms']:.3f}", f"{r['p95_ms']:.3f}",
                      f"{c['p50_ms']:.3f}", f"{c['p95_ms']:.3f}")
    console.print(table)
    console.print("metered + limited: api.pre_request (two buckets, the quota, the count); "
                  "baseline: its liveness checks only; call: the pre-request statement alone",
                  highlight=False)
    verdict = "within" if figures["passed"] else "over"
    console.print(f"p95 added per request: {figures['p95_added_ms']:.3f} ms "
                  f"(ratio {figures['p95_ratio']}), {verdict} the target of "
                  f"< {TARGET_P95_MS:g} ms", highlight=False)
    console.print(f"median added within back-to-back pairs: "
                  f"{figures['paired_added_ms']['p50_ms']:.3f} ms", highlight=False)
    console.print(f"requests counted after the flush: {counted} of {made} made with "
                  "metering", highlight=False)
    return figures
