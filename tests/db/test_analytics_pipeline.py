"""Analytics over data the real product made: a simulated plaza scene ingested and run
through the pipeline (features, rules, candidates), its candidates verified as rule events.
Every metric must agree with the same figure counted straight from the base tables."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.factories import make_project
from tests.support.postgrest import Api
from tests.support.tenant_data import populate_pipeline

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def test_metrics_agree_with_the_base_tables(db: Conn, dsn: str, tmp_path: Path) -> None:
    project = make_project(db, "acme", "plaza")
    populate_pipeline(db, project, "a", tmp_path)
    db.execute(
        """INSERT INTO events.events (project_id, source_id, candidate_id, type, actors, zone,
             route, trigger, latency_s, start_ts, end_ts, confidence, source, verified_by,
             ontology_id, ontology_version)
           SELECT project_id, source_id, candidate_id, type, actors, zone, route, trigger,
                  latency_s, start_ts, end_ts, rule_score, 'rule', rule_name, ontology_id,
                  ontology_version
           FROM candidates.candidates WHERE project_id = %s""", (project,))
    db.execute("UPDATE candidates.candidates SET status = 'accepted'"
               " WHERE project_id = %s AND type IN ('dwell', 'follow')", (project,))
    db.execute("SELECT count(*) FROM analytics.refresh()")
    db.commit()
    api = Api(dsn).as_("analyst", project_id=project)

    def base(query: str) -> list[dict[str, Any]]:
        return db.execute(query, (project,)).fetchall()

    per_type = {r["type"]: r["n"] for r in base(
        "SELECT type, count(*) AS n FROM events.events WHERE project_id = %s GROUP BY 1")}
    assert {"dwell", "follow", "choose_route", "startle"} <= set(per_type), per_type
    balance = {r["type"]: r for r in api.rpc("metrics_class_balance")}
    assert {t: r["events"] for t, r in balance.items()} == per_type
    assert {t: r["events_rule"] for t, r in balance.items()} == per_type
    statuses = Counter({(r["type"], r["status"]): r["n"] for r in base(
        "SELECT type, status, count(*) AS n FROM candidates.candidates WHERE project_id = %s"
        " GROUP BY 1, 2")})
    assert {(t, s): r[f"candidates_{s}"] for t, r in balance.items()
            for s in ("new", "scored", "in_review", "accepted", "rejected")
            if r[f"candidates_{s}"]} == statuses

    hourly = {(r["bucket"], r["type"]): r["n"] for r in base(
        "SELECT date_trunc('hour', start_ts, 'UTC') AS bucket, type, count(*) AS n"
        " FROM events.events WHERE project_id = %s GROUP BY 1, 2")}
    over_time = Counter[tuple[Any, str]]()
    for r in api.rpc("metrics_events_over_time"):
        over_time[(r["bucket"], r["type"])] += r["events"]
    assert dict(over_time) == hourly

    dwells = base("SELECT zone, extract(epoch FROM end_ts - start_ts)::float8 AS d"
                  " FROM events.events WHERE project_id = %s AND type = 'dwell'")
    hist = api.rpc("metrics_dwell_histogram", p_bin_s=1.0)
    expected = Counter((r["zone"], int(r["d"] // 1.0)) for r in dwells)
    assert {(r["zone"], int(r["bin_start_s"])): r["events"] for r in hist
            if r["events"]} == dict(expected)

    actors = base("SELECT count(DISTINCT track_id) AS n FROM ingest.track_points"
                  " WHERE project_id = %s")[0]["n"]
    follow = api.rpc("metrics_follow_rate")
    assert [(r["follows"], r["actors"]) for r in follow] == [(per_type["follow"], actors)]
    assert follow[0]["rate"] == pytest.approx(per_type["follow"] / actors)

    routes = {(r["zone"], r["route"]): r["n"] for r in base(
        "SELECT zone, route, count(*) AS n FROM events.events"
        " WHERE project_id = %s AND type = 'choose_route' GROUP BY 1, 2")}
    shares = api.rpc("metrics_route_shares")
    assert {(r["zone"], r["route"]): r["choices"] for r in shares} == routes
    for zone in {z for z, _ in routes}:
        assert sum(r["share"] for r in shares if r["zone"] == zone) == pytest.approx(1.0)

    startles = base("SELECT trigger, latency_s FROM events.events"
                    " WHERE project_id = %s AND type = 'startle' AND latency_s IS NOT NULL")
    assert startles
    latency = api.rpc("metrics_reaction_latency", p_bin_s=0.25)
    expected = Counter((r["trigger"], int(Decimal(repr(r["latency_s"])) * 100 // 25))
                       for r in startles)
    assert {(r["trigger"], round(r["bin_start_s"] / 0.25)): r["events"] for r in latency
            if r["events"]} == dict(expected)
