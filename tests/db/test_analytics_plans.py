"""Query plans of the metric functions at 100,000 events and 100,000 candidates: every
statement they run reads the analytics views through their unique indexes, and none reads
a hypertable (or the events and candidates tables) at all.

Plans come from auto_explain (nested statements, JSON, sent to the client as NOTICEs), so
they are the plans of the functions' own statements, run as a customer of one project."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.factories import make_project

pytestmark = [pytest.mark.db, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 60
N = 100_000


@pytest.fixture(scope="module")
def scale(module_dsn: str) -> dict[str, Any]:
    """Two projects of four sources each; N events and N candidates over DAYS days."""
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        projects = [make_project(db, "acme", "plans-a"), make_project(db, "globex", "plans-b")]
        sources: list[int] = []
        for i in range(8):
            pid = projects[i % 2]
            row = db.execute("INSERT INTO ingest.sources (project_id, name) VALUES (%s, %s)"
                             " RETURNING source_id", (pid, f"cam{i}")).fetchone()
            assert row is not None
            sources.append(row["source_id"])
        for pid in projects:
            db.execute("INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml,"
                       " parsed) VALUES (%s, 'default', 1, repeat('0', 64), '', '{}')", (pid,))
        params = {"sources": sources, "start": START, "days": DAYS, "n": N}
        db.execute(
            """WITH g AS (
                 SELECT i, (%(sources)s::bigint[])[1 + i %% 8] AS source_id,
                        (ARRAY['dwell','follow','choose_route','startle','enter','exit','meet',
                               'overtake'])[1 + (i / 8) %% 8] AS type,
                        %(start)s::timestamptz + (i * %(days)s * interval '1 day') / %(n)s AS ts
                 FROM generate_series(0, %(n)s - 1) i)
               INSERT INTO events.events (project_id, source_id, type, actors, zone, route,
                 trigger, latency_s, start_ts, end_ts, confidence, source, verified_by)
               SELECT s.project_id, g.source_id, g.type, jsonb_build_object('a', g.i),
                      CASE WHEN g.type IN ('dwell', 'choose_route') THEN 'z' || g.i %% 4 END,
                      CASE WHEN g.type = 'choose_route' THEN 'r' || g.i %% 3 END,
                      CASE WHEN g.type = 'startle' THEN 'bang' END,
                      CASE WHEN g.type = 'startle' THEN (g.i %% 300) / 100.0 END,
                      g.ts, g.ts + (g.i %% 900) * interval '100 ms', 0.9,
                      (ARRAY['rule', 'model'])[1 + g.i %% 2], 'bench'
               FROM g JOIN ingest.sources s USING (source_id)""", params)
        db.execute(
            """INSERT INTO candidates.candidates (project_id, source_id, type, actors, start_ts,
                 end_ts, rule_name, ontology_id, ontology_version, rule_score, status)
               SELECT s.project_id, s.source_id,
                      (ARRAY['dwell','follow','meet','startle'])[1 + (i / 8) %% 4],
                      jsonb_build_object('a', i), ts, ts + interval '5 s', 'default.x',
                      o.ontology_id, 1, 0.5,
                      (ARRAY['new','scored','in_review','accepted','rejected'])[1 + i %% 5]
               FROM generate_series(0, %(n)s - 1) i
               CROSS JOIN LATERAL (SELECT %(start)s::timestamptz
                                          + (i * %(days)s * interval '1 day') / %(n)s AS ts) t
               JOIN ingest.sources s ON s.source_id = (%(sources)s::bigint[])[1 + i %% 8]
               JOIN rules.ontologies o ON o.project_id = s.project_id""", params)
        # Ten tracks per source and day, a point each minute for an hour: 288,000 points.
        db.execute(
            """INSERT INTO ingest.track_points (project_id, source_id, track_id, frame, ts, x, y,
                 batch_id)
               SELECT s.project_id, s.source_id, 't' || k, m,
                      %(start)s::timestamptz + d * interval '1 day' + m * interval '1 minute',
                      0, 0, 0
               FROM ingest.sources s, generate_series(0, %(days)s - 1) d,
                    generate_series(1, 10) k, generate_series(0, 59) m
               WHERE s.source_id = ANY (%(sources)s)""", params)
        db.execute("SELECT count(*) FROM analytics.refresh()")
        db.commit()
        for view in ("events_hourly", "dwell_durations", "follow_daily", "route_choices",
                     "reaction_latencies", "candidates_hourly"):
            db.execute(f"ANALYZE analytics.{view}")  # what autovacuum does after a refresh
        db.commit()
    return {"project": projects[0], "sources": sources}


@pytest.fixture
def explained(module_dsn: str, scale: dict[str, Any]) -> Iterator[tuple[Conn, list[Any]]]:
    """An admin session that acts as a customer of project A and collects every plan."""
    plans: list[Any] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        if "plan:" in text:
            plans.append(json.loads(text.split("plan:", 1)[1]))

    with psycopg.connect(module_dsn, row_factory=dict_row, autocommit=True) as conn:
        conn.add_notice_handler(collect)
        conn.execute("LOAD 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"),
                               ("log_format", "json"), ("log_verbose", "on"),
                               ("log_level", "notice")):
            conn.execute(f"SET auto_explain.{setting} = '{value}'")
        conn.execute("SET ROLE customer")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"role": "customer", "project_id": scale["project"]}),))
        yield conn, plans


def scans(node: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(node type, schema.relation, index) of every scan node in a plan tree."""
    if "Relation Name" in node:
        yield node["Node Type"], f"{node.get('Schema')}.{node['Relation Name']}", \
            node.get("Index Name")
    for child in node.get("Plans", []):
        yield from scans(child)


CALLS = [
    "SELECT * FROM api.metrics_events_over_time(%(f)s, %(t)s, %(s)s, 'day')",
    "SELECT * FROM api.metrics_dwell_histogram(%(f)s, %(t)s, %(s)s)",
    "SELECT * FROM api.metrics_follow_rate(%(f)s, %(t)s, %(s)s)",
    "SELECT * FROM api.metrics_route_shares(%(f)s, %(t)s, %(s)s)",
    "SELECT * FROM api.metrics_reaction_latency(%(f)s, %(t)s, %(s)s)",
    "SELECT * FROM api.metrics_class_balance(%(f)s, %(t)s, %(s)s)",
]
VIEW_OF = {0: ["events_hourly"], 1: ["dwell_durations"], 2: ["follow_daily"],
           3: ["route_choices"], 4: ["reaction_latencies"],
           5: ["events_hourly", "candidates_hourly"]}


@pytest.mark.parametrize("source_filter", [False, True], ids=["all-sources", "one-source"])
@pytest.mark.parametrize("call", range(len(CALLS)), ids=lambda i: CALLS[i].split("(")[0][17:])
def test_metric_functions_read_views_by_index(explained: tuple[Conn, list[Any]],
                                              scale: dict[str, Any], call: int,
                                              source_filter: bool) -> None:
    conn, plans = explained
    args = {"f": START + timedelta(days=20), "t": START + timedelta(days=27),
            "s": [scale["sources"][0]] if source_filter else None}
    result = conn.execute(CALLS[call], args).fetchall()
    assert result, "the week has data"
    found = [s for p in plans for s in scans(p["Plan"])]
    views = {rel.split(".")[1]: (node, index) for node, rel, index in found
             if rel.startswith("analytics.")}
    assert sorted(views) == sorted(VIEW_OF[call])
    for view, (node, index) in views.items():
        assert node in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), (view, node)
        assert index in (f"{view}_key", None), (view, index)  # None: Bitmap Heap Scan node
    bitmaps = [index for p in plans for index in bitmap_indexes(p["Plan"])]
    assert all(i.endswith("_key") for i in bitmaps)
    outside = {rel for _, rel, _ in found
               if not rel.startswith("analytics.") and rel not in ALLOWED}
    assert outside == set(), "metric functions read only the views (and small lookups)"


# Small lookups besides the views: who the caller is, their projects, source names.
ALLOWED = {"ingest.sources", "core.projects", "core.memberships", "pg_catalog.pg_class",
           "pg_catalog.pg_authid"}


def bitmap_indexes(node: dict[str, Any]) -> Iterator[str]:
    if node.get("Node Type") == "Bitmap Index Scan":
        yield node["Index Name"]
    for child in node.get("Plans", []):
        yield from bitmap_indexes(child)
