"""`secinf bench governance`: the governance targets of issue 19 as figures, on a scratch
database. Prints figures, asserts nothing.

* The audit chain: `audit_rows` rows written through the log's insert path, sealed into the
  chain (rows/s), then verified link by link (target: 1M rows in < 10 s).
* Records at scale: `points` track points (default 10M) in two projects — one whose 30-day
  retention lets 90 % of them expire (old days, in whole chunks), one that keeps its points
  forever and shares a few of those days — and one current source of `source_points`
  (default 1M) in 200 tracks:
  - the postgres_exporter queries (docker/monitoring) timed as secinf_monitor at that size
    (target: < 50 ms each);
  - one actor (a track of the 1M-point source) erased, request to tombstone (target: < 30 s);
  - one retention run (`CALL records.run_retention()`): points removed per second, whole
    chunks dropped and rows deleted in batches (target: minutes, not hours, for 10M)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.table import Table

from workers import tenancy
from workers.bench.monitoring_bench import QUERIES_FILE, load_queries, time_queries
from workers.bench.scratch import scratch_database, settle
from workers.cli.output import console, print_json
from workers.records import erasure, retention

VERIFY_TARGET_S = 10.0
VERIFY_TARGET_ROWS = 1_000_000
ERASE_TARGET_S = 30.0
RETENTION_TARGET_S = 600.0
"""'Minutes, not hours' for 10M points: within 10 minutes, scaled to the points removed."""
OLD_DAYS = 30
SHARED_DAYS = 3
TRACKS = 200


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


def _load(conn: psycopg.Connection[Any], points: int, source_points: int) -> dict[str, Any]:
    """The scene of the records figures (see the module docstring); returns its ids."""
    ids: dict[str, Any] = {}
    for key, slug in (("expiring", "expiring"), ("keeping", "keeping")):
        ids[key] = str(tenancy.create_project(conn, "bench-records", slug)["project_id"])
    conn.execute("SELECT records.set_retention(%s, 'track_points', NULL, 'bench: forever')",
                 (ids["keeping"],))
    for key, project, name in (("old", ids["expiring"], "old-cam"),
                               ("current", ids["expiring"], "current-cam"),
                               ("kept", ids["keeping"], "kept-cam")):
        row = conn.execute("INSERT INTO ingest.sources (project_id, name, fps) VALUES"
                           " (%s, %s, 10) RETURNING source_id", (project, name)).fetchone()
        assert row is not None
        ids[key] = int(row["source_id"])
        batch = conn.execute(
            "INSERT INTO ingest.batches (project_id, source_id, idempotency_key, format, status)"
            " VALUES (%s, %s, %s, 'canonical-csv', 'applied') RETURNING batch_id",
            (project, ids[key], f"bench-{name}")).fetchone()
        assert batch is not None
        ids[key + "_batch"] = int(batch["batch_id"])
    kept = min(points // 100, 100_000)
    old = max(points - source_points - kept, 0)
    # Old points: OLD_DAYS whole days long past, 10 Hz per track; the 'keeping' project's
    # points share the first SHARED_DAYS of them. Current points: the last hour.
    for source, batch, project, n, start, span_days in (
            ("old", "old_batch", ids["expiring"], old, "now() - interval '120 days'", OLD_DAYS),
            ("kept", "kept_batch", ids["keeping"], kept, "now() - interval '120 days'",
             SHARED_DAYS),
            ("current", "current_batch", ids["expiring"], source_points,
             "now() - interval '1 hour'", 0)):
        if n == 0:
            continue
        per_track = max(n // TRACKS, 1)
        step = f"{span_days * 86400.0 / per_track if span_days else 0.1} seconds"
        conn.execute(
            f"INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x, y,"
            f" class, confidence, batch_id)"
            f" SELECT %s, %s, (i %% {TRACKS})::text, i / {TRACKS},"
            f" date_trunc('day', {start}) + (i / {TRACKS}) * interval '{step}',"
            f" (i %% 97) * 0.1, (i %% 89) * 0.1, 'pedestrian', 0.9, %s"
            f" FROM generate_series(0, %s - 1) i",
            (project, ids[source], ids[batch], n))
    conn.execute("ANALYZE ingest.track_points")
    conn.commit()
    ids.update(old_points=old, kept_points=kept, current_points=source_points)
    return ids


def _records(target: str, points: int, source_points: int, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {"points": points, "source_points": source_points}
    with psycopg.connect(target, row_factory=dict_row) as conn:
        started = time.perf_counter()
        ids = _load(conn, points, source_points)
        out["load_s"] = round(time.perf_counter() - started, 1)
        total = conn.execute("SELECT count(*) AS n FROM ingest.track_points").fetchone()
        out["track_points"] = int(total["n"]) if total else 0
        conn.commit()
        settle(conn)
    with psycopg.connect(target, row_factory=dict_row, autocommit=True) as auto:
        timings = time_queries(auto, load_queries(QUERIES_FILE), repeat=repeat)
    out["exporter"] = [{**asdict(t), "within_target": t.within_target} for t in timings]
    out["exporter_slowest_ms"] = max((t.median_ms for t in timings), default=0.0)
    with psycopg.connect(target, row_factory=dict_row) as conn:
        row = conn.execute("SELECT name FROM ingest.sources WHERE source_id = %s",
                           (ids["current"],)).fetchone()
        assert row is not None
        started = time.perf_counter()
        stone = erasure.request(conn, ids["expiring"], "bench erasure", source=row["name"],
                                track="7")
        final = erasure.run(conn, int(stone["tombstone_id"]))
        erase_s = time.perf_counter() - started
        out["erasure"] = {"seconds": round(erase_s, 2),
                          "points": int(final["counts"].get("ingest.track_points", 0)),
                          "source_points": source_points, "target_s": ERASE_TARGET_S,
                          "passed": erase_s < ERASE_TARGET_S}
        before = out["track_points"] - out["erasure"]["points"]
        started = time.perf_counter()
        run = retention.run(conn)
        retention_s = time.perf_counter() - started
        left = conn.execute("SELECT count(*) AS n FROM ingest.track_points").fetchone()
        conn.rollback()
    removed = before - (int(left["n"]) if left else 0)
    steps = run.get("steps_detail", [])
    out["retention"] = {
        "seconds": round(retention_s, 2), "points_removed": removed,
        "points_per_s": round(removed / max(retention_s, 1e-9)),
        "chunks_dropped": sum(s["chunks"] for s in steps if s["method"] == "drop_chunks"),
        "rows_deleted_in_batches": sum(s["rows"] for s in steps if s["method"] == "delete"),
        "expected_removed": ids["old_points"],
        "seconds_per_10m": round(retention_s * 1e7 / max(removed, 1), 1),
        "target_s_per_10m": RETENTION_TARGET_S,
        "passed": retention_s * 1e7 / max(removed, 1) < RETENTION_TARGET_S}
    return out


def bench_governance(audit_rows: int = VERIFY_TARGET_ROWS, json_out: bool = False, *,
                     points: int = 10_000_000, source_points: int = 1_000_000,
                     repeat: int = 3) -> dict[str, Any]:
    with scratch_database("governance") as target:
        with console.status(f"audit chain: {audit_rows:,} rows (write, seal, verify)"):
            result: dict[str, Any] = {"audit_chain": _audit_chain(target, audit_rows)}
        with console.status(f"records: {points:,} track points (load, exporter queries, "
                            "erasure, retention)"):
            result["records"] = _records(target, points, source_points, repeat)
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
                  _verdict(a["passed"]))
    r = result["records"]
    e, t = r["erasure"], r["retention"]
    table.add_row("track points loaded", f"{r['track_points']:,} in {r['load_s']:.0f} s", "", "")
    table.add_row("exporter queries (slowest median)",
                  f"{r['exporter_slowest_ms']:.1f} ms at {r['track_points']:,} points",
                  "< 50 ms each", _verdict(all(q["within_target"] for q in r["exporter"])))
    table.add_row("erasure of one actor", f"{e['seconds']:.2f} s ({e['points']:,} points of a "
                                          f"{e['source_points']:,}-point source)",
                  f"< {ERASE_TARGET_S:.0f} s", _verdict(e["passed"]))
    table.add_row("retention run", f"{t['points_removed']:,} points in {t['seconds']:.1f} s "
                                   f"({t['points_per_s']:,}/s; {t['chunks_dropped']} chunks "
                                   f"dropped, {t['rows_deleted_in_batches']:,} rows in batches)",
                  f"< {RETENTION_TARGET_S / 60:.0f} min per 10M", _verdict(t["passed"]))
    console.print(table)
    slow = [q["name"] for q in r["exporter"] if not q["within_target"]]
    if slow:
        console.print(f"[yellow]exporter queries over 50 ms:[/] {', '.join(slow)}")
    if t["points_removed"] != t["expected_removed"]:
        console.print(f"[red]retention removed {t['points_removed']:,} points, expected "
                      f"{t['expected_removed']:,}[/red]")
    if not a["whole"]:
        console.print("[red]the chain did not verify[/red]")
    return result


def _verdict(ok: bool) -> str:
    return "[green]pass[/green]" if ok else "[red]miss[/red]"
