"""Refreshing the analytics views: CONCURRENTLY next to open readers, as the cron role,
before the first refresh, and across re-deploys of sql/ (rebuild only on a changed
definition)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.db.analytics_data import D1, Analytics, at, build
from tests.support.postgrest import Api
from workers.db.migrate import apply_sql

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
VIEWS = ["candidates_hourly", "dwell_durations", "events_hourly", "follow_daily",
         "reaction_latencies", "route_choices", "refreshed"]


def connect_as(dsn: str, user: str) -> psycopg.Connection[dict[str, Any]]:
    params = conninfo_to_dict(dsn)
    params["user"] = user
    params.pop("password", None)
    return psycopg.connect(make_conninfo(**params), row_factory=dict_row)  # type: ignore[arg-type]


@contextmanager
def reader(dsn: str, project: str) -> Iterator[Conn]:
    """A PostgREST-like session of a customer of `project`, inside one open transaction."""
    with connect_as(dsn, "authenticator") as conn:
        conn.execute("SET LOCAL ROLE customer")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"role": "customer", "project_id": project}),))
        yield conn
        conn.rollback()


def gate_dwells(conn: Conn) -> int:
    row = conn.execute("SELECT coalesce(sum(events), 0) AS n FROM api.metrics_dwell_histogram()"
                       " WHERE zone = 'gate'").fetchone()
    assert row is not None
    return int(row["n"])


def add_dwell(db: Conn, data: Analytics) -> None:
    db.execute(
        "INSERT INTO events.events (project_id, source_id, type, actors, zone, start_ts, end_ts,"
        " confidence, source, verified_by) VALUES (%s, %s, 'dwell', '{\"a\": \"x\"}', 'gate',"
        " %s, %s, 0.9, 'rule', 'default.dwell')",
        (data.a, data.sources["a1"], at(D1, "12:00"), at(D1, "12:00") + timedelta(seconds=20)))
    db.commit()


def test_metrics_are_empty_until_the_first_refresh(db: Conn, dsn: str) -> None:
    data = build(db)
    api = Api(dsn).as_("customer", project_id=data.a)
    doc = api.rpc("project_metrics")
    assert doc["refreshed_at"] is None and doc["class_balance"] == []
    rows = db.execute("SELECT * FROM analytics.refresh()").fetchall()
    db.commit()
    # Unpopulated views get a plain refresh (CONCURRENTLY needs a populated view).
    assert [(r["matview"], r["concurrent"]) for r in rows] == [(v, False) for v in VIEWS]
    doc = api.rpc("project_metrics")
    assert doc["refreshed_at"] is not None and len(doc["class_balance"]) == 5
    again = db.execute("SELECT * FROM analytics.refresh()").fetchall()
    assert [(r["matview"], r["concurrent"]) for r in again] == [(v, True) for v in VIEWS]
    plain = db.execute("SELECT * FROM analytics.refresh(false)").fetchall()
    assert {r["concurrent"] for r in plain} == {False}


def test_concurrent_refresh_does_not_wait_for_open_readers(db: Conn, dsn: str) -> None:
    data = build(db)
    db.execute("SELECT count(*) FROM analytics.refresh()")
    db.commit()
    with reader(dsn, data.a) as conn:
        assert gate_dwells(conn) == 5  # the reader now holds the views' locks until it ends
        add_dwell(db, data)
        db.execute("SET lock_timeout = '5s'")
        rows = db.execute("SELECT * FROM analytics.refresh()").fetchall()
        db.commit()
        assert {r["concurrent"] for r in rows} == {True}
        # Read committed: the reader's next statement sees the refreshed rows.
        assert gate_dwells(conn) == 6
        # A plain refresh would need the reader gone: it times out instead.
        db.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
            db.execute("SELECT * FROM analytics.refresh(false)")
        db.rollback()
    db.execute("SET lock_timeout = '5s'")
    assert len(db.execute("SELECT * FROM analytics.refresh(false)").fetchall()) == len(VIEWS)


def test_the_cron_role_may_refresh_and_nothing_more(db: Conn, dsn: str) -> None:
    data = build(db)
    with connect_as(dsn, "pipeline") as pipeline:
        # The cron job's command, as the cron job's role.
        row = pipeline.execute("SELECT count(*) AS n FROM analytics.refresh()").fetchone()
        assert row is not None and row["n"] == len(VIEWS)
        pipeline.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="must be owner of materialized view events_hourly"):
            pipeline.execute("REFRESH MATERIALIZED VIEW analytics.events_hourly")
        pipeline.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for materialized view events_hourly"):
            pipeline.execute("SELECT * FROM analytics.events_hourly")
        pipeline.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="permission denied for schema api"):
            pipeline.execute("SELECT api.project_metrics()")
    api = Api(dsn).as_("customer", project_id=data.a)
    assert sum(r["events"] for r in api.rpc("metrics_class_balance")) == 26


def test_redeploy_keeps_populated_views(db: Conn, dsn: str) -> None:
    data = build(db)
    db.execute("SELECT count(*) FROM analytics.refresh()")
    db.commit()
    before = {r["relname"]: r["oid"] for r in db.execute(
        "SELECT relname, oid FROM pg_class WHERE relnamespace = 'analytics'::regnamespace"
        " AND relkind = 'm'").fetchall()}
    apply_sql(dsn)  # what every `secinf db migrate` does
    after = db.execute(
        "SELECT relname, oid, relispopulated FROM pg_class"
        " WHERE relnamespace = 'analytics'::regnamespace AND relkind = 'm'").fetchall()
    assert {r["relname"]: r["oid"] for r in after} == before  # not re-created
    assert all(r["relispopulated"] for r in after)
    api = Api(dsn).as_("customer", project_id=data.a)
    assert sum(r["events"] for r in api.rpc("metrics_class_balance")) == 26


def test_a_changed_definition_rebuilds_the_view(db: Conn) -> None:
    def ensure(comment: str, query: str) -> bool:
        row = db.execute("SELECT analytics.ensure_matview('probe', %s, %s, 'x') AS built",
                         (comment, query)).fetchone()
        assert row is not None
        return bool(row["built"])

    def described() -> tuple[int, str, bool]:
        row = db.execute("SELECT oid::int AS oid, obj_description(oid, 'pg_class') AS c,"
                         " relispopulated AS p FROM pg_class"
                         " WHERE oid = 'analytics.probe'::regclass").fetchone()
        assert row is not None
        return row["oid"], row["c"], row["p"]

    def refreshed_at() -> Any:
        row = db.execute("SELECT analytics.refreshed_at() AS at").fetchone()
        assert row is not None
        return row["at"]

    db.execute("SELECT count(*) FROM analytics.refresh()")
    assert refreshed_at() is not None
    db.execute("SET ROLE secinf_owner")  # as sql/ runs
    assert ensure("A probe.", "SELECT 1 AS x") is True
    oid, comment, populated = described()
    assert comment.startswith("A probe. [definition ") and populated is False
    assert refreshed_at() is None  # until every view holds data again
    db.execute("REFRESH MATERIALIZED VIEW analytics.probe")
    assert ensure("A probe.", "SELECT 1 AS x") is False
    assert ensure("A probe.", "SELECT\n    1 AS x") is False  # re-indented: same definition
    assert ensure("A better probe.", "SELECT 1 AS x") is False  # comment only
    assert described() == (oid, comment.replace("A probe.", "A better probe."), True)
    assert ensure("A better probe.", "SELECT 2 AS x") is True
    new_oid, _, populated = described()
    assert new_oid != oid and populated is False
    # The next refresh fills it (plainly: it is not populated yet).
    db.execute("RESET ROLE")
    refreshed = {r["matview"]: r["concurrent"]
                 for r in db.execute("SELECT * FROM analytics.refresh()").fetchall()}
    assert refreshed["probe"] is False
    assert db.execute("SELECT x FROM analytics.probe").fetchone() == {"x": 2}
    assert refreshed_at() is not None
