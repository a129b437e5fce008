"""Analytics metrics: exact figures from known events (tests/db/analytics_data.py), the
source and time filters, and tenant isolation through the PostgREST request model and an
analyst's direct SQL login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.db.analytics_data import D1, D2, D3, D4, Analytics, at, build
from tests.support.factories import analyst_session
from tests.support.postgrest import Api, ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def data(module_dsn: str) -> Analytics:
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        built = build(db)
        db.execute("SELECT count(*) FROM analytics.refresh()")
        db.commit()
    return built


@pytest.fixture
def dsn(module_dsn: str, data: Analytics) -> str:
    return module_dsn


@pytest.fixture
def db(dsn: str) -> Iterator[Conn]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        yield conn


def customer(dsn: str, project: str) -> Api:
    return Api(dsn).as_("customer", project_id=project, sub="key:test")


def rows(api: Api, fn: str, **args: Any) -> list[tuple[Any, ...]]:
    result = api.rpc(fn, **args)
    return [tuple(r.values()) for r in result]


# ------------------------------------------------------------------ events over time
def test_events_over_time_per_hour_type_and_verification(dsn: str, data: Analytics) -> None:
    got = rows(customer(dsn, data.a), "metrics_events_over_time")
    h10, h11 = at(D1, "10:00"), at(D1, "11:00")
    assert got == [
        (h10, "choose_route", "rule", 3), (h10, "dwell", "human", 1), (h10, "dwell", "model", 1),
        (h10, "dwell", "rule", 3), (h10, "follow", "model", 1), (h10, "follow", "rule", 2),
        (h10, "startle", "model", 1), (h10, "startle", "rule", 3),
        (h11, "choose_route", "human", 1), (h11, "choose_route", "model", 1),
        (h11, "dwell", "human", 1), (h11, "dwell", "rule", 1), (h11, "follow", "human", 1),
        (h11, "startle", "human", 1), (h11, "startle", "rule", 1),
        (at(D2, "09:00"), "choose_route", "rule", 2), (at(D2, "09:00"), "follow", "rule", 1),
        (at(D4, "12:00"), "follow", "rule", 1),
    ]


def test_events_over_time_rolls_up_to_days_and_weeks(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    assert rows(api, "metrics_events_over_time", p_bucket="day") == [
        (D1, "choose_route", "human", 1), (D1, "choose_route", "model", 1),
        (D1, "choose_route", "rule", 3), (D1, "dwell", "human", 2), (D1, "dwell", "model", 1),
        (D1, "dwell", "rule", 4), (D1, "follow", "human", 1), (D1, "follow", "model", 1),
        (D1, "follow", "rule", 2), (D1, "startle", "human", 1), (D1, "startle", "model", 1),
        (D1, "startle", "rule", 4),
        (D2, "choose_route", "rule", 2), (D2, "follow", "rule", 1),
        (D4, "follow", "rule", 1),
    ]
    week = rows(api, "metrics_events_over_time", p_bucket="week")  # D1 is a Monday
    assert {(t, v): n for _, t, v, n in week} == {
        ("choose_route", "human"): 1, ("choose_route", "model"): 1, ("choose_route", "rule"): 5,
        ("dwell", "human"): 2, ("dwell", "model"): 1, ("dwell", "rule"): 4,
        ("follow", "human"): 1, ("follow", "model"): 1, ("follow", "rule"): 4,
        ("startle", "human"): 1, ("startle", "model"): 1, ("startle", "rule"): 4,
    }
    assert {b for b, *_ in week} == {D1}


def test_events_over_time_filters_by_source_and_whole_hours(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    assert rows(api, "metrics_events_over_time", p_source_ids=[data.sources["a2"]]) == [
        (at(D1, "10:00"), "choose_route", "rule", 1), (at(D1, "10:00"), "dwell", "rule", 1),
        (at(D1, "10:00"), "follow", "rule", 1), (at(D1, "10:00"), "startle", "rule", 1),
        (at(D4, "12:00"), "follow", "rule", 1),
    ]
    # 10:30-11:00 widens to the whole 10:00 hour, and 11:00 is excluded.
    half = rows(api, "metrics_events_over_time", p_from=at(D1, "10:30"), p_to=at(D1, "11:00"))
    assert {b for b, *_ in half} == {at(D1, "10:00")}
    assert sum(n for *_, n in half) == 15
    late = rows(api, "metrics_events_over_time", p_from=at(D1, "11:00"), p_to=D2)
    assert {b for b, *_ in late} == {at(D1, "11:00")} and sum(n for *_, n in late) == 7


# ------------------------------------------------------------------ dwell
def test_dwell_histogram_bins_are_exact_and_dense(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    assert rows(api, "metrics_dwell_histogram") == [  # default 5 s bins
        ("bench", 0.0, 5.0, 1), ("bench", 5.0, 10.0, 1),
        ("gate", 0.0, 5.0, 2), ("gate", 5.0, 10.0, 2), ("gate", 10.0, 15.0, 1),
    ]
    # 4.99 s stays below 5 s; 12.3 s is in [10, 12.5); empty bins are listed with 0.
    assert rows(api, "metrics_dwell_histogram", p_bin_s=2.5) == [
        ("bench", 0.0, 2.5, 1), ("bench", 2.5, 5.0, 0), ("bench", 5.0, 7.5, 1),
        ("gate", 0.0, 2.5, 0), ("gate", 2.5, 5.0, 2), ("gate", 5.0, 7.5, 2),
        ("gate", 7.5, 10.0, 0), ("gate", 10.0, 12.5, 1),
    ]
    assert rows(api, "metrics_dwell_histogram", p_source_ids=[data.sources["a1"]]) == [
        ("bench", 0.0, 5.0, 1), ("bench", 5.0, 10.0, 1),
        ("gate", 0.0, 5.0, 2), ("gate", 5.0, 10.0, 1), ("gate", 10.0, 15.0, 1),
    ]


def test_histogram_bin_width_is_checked(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    with pytest.raises(ApiError) as exc:
        api.rpc("metrics_dwell_histogram", p_bin_s=0.005)
    assert exc.value.status == 400 and exc.value.sqlstate == "22023"
    assert "p_bin_s = 0.005 is not a bin width" in exc.value.message
    assert exc.value.hint == "Use a positive multiple of 0.01 seconds, e.g. 0.25 or 5."
    # 0.01 s bins: gate 0..12.30 s, bench 0..7.00 s.
    assert len(api.rpc("metrics_dwell_histogram", p_bin_s=0.01)) == 1231 + 701
    with pytest.raises(ApiError, match=r"p_bin_s = 0\.01 gives 10001 bins, more than 10000"):
        customer(dsn, data.b).rpc("metrics_dwell_histogram", p_bin_s=0.01)  # a 100 s dwell
    with pytest.raises(ApiError, match=r"p_from \(.*\) must be before p_to"):
        api.rpc("metrics_route_shares", p_from=D2, p_to=D1)
    with pytest.raises(ApiError, match="p_bucket = minute is not a bucket"):
        api.rpc("metrics_events_over_time", p_bucket="minute")


# ------------------------------------------------------------------ follow rate
def test_follow_rate_per_source_and_day(dsn: str, data: Analytics) -> None:
    a1, a2 = data.sources["a1"], data.sources["a2"]
    api = customer(dsn, data.a)
    assert rows(api, "metrics_follow_rate") == [
        (a1, "a1", D1.date(), 3, 4, 0.75),
        (a1, "a1", D2.date(), 1, 2, 0.5),
        (a2, "a2", D1.date(), 1, 2, 0.5),
        (a2, "a2", D3.date(), 0, 3, 0.0),   # tracks, no follow
        (a2, "a2", D4.date(), 1, 0, None),  # a follow, no tracks: no rate
    ]
    # Noon of D1 to D2 widens to the whole of D1.
    assert rows(api, "metrics_follow_rate", p_from=at(D1, "12:00"), p_to=D2) == [
        (a1, "a1", D1.date(), 3, 4, 0.75), (a2, "a2", D1.date(), 1, 2, 0.5)]
    assert rows(api, "metrics_follow_rate", p_source_ids=[a2], p_from=D3) == [
        (a2, "a2", D3.date(), 0, 3, 0.0), (a2, "a2", D4.date(), 1, 0, None)]


# ------------------------------------------------------------------ routes
def test_route_shares_per_branch_zone(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    assert rows(api, "metrics_route_shares") == [
        ("fork", "north", 3, 0.6), ("fork", "south", 2, 0.4), ("plaza", "east", 2, 1.0)]
    assert rows(api, "metrics_route_shares", p_from=D1, p_to=D2) == [
        ("fork", "north", 3, 0.6), ("fork", "south", 2, 0.4)]
    assert rows(api, "metrics_route_shares", p_source_ids=[data.sources["a2"]]) == [
        ("fork", "south", 1, 1.0)]


# ------------------------------------------------------------------ reaction latency
def test_reaction_latency_histogram_per_trigger(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    assert rows(api, "metrics_reaction_latency") == [  # default 0.25 s bins
        ("bang", 0.0, 0.25, 1), ("bang", 0.25, 0.5, 2), ("bang", 0.5, 0.75, 2),
        ("horn", 0.0, 0.25, 0), ("horn", 0.25, 0.5, 0), ("horn", 0.5, 0.75, 0),
        ("horn", 0.75, 1.0, 0), ("horn", 1.0, 1.25, 1),
    ]
    # 0.29 s is exactly the start of the second 0.29 s bin (float arithmetic would say 0.2899…).
    assert rows(api, "metrics_reaction_latency", p_bin_s=0.29, p_source_ids=[data.sources["a1"]]
                ) == [
        ("bang", 0.0, 0.29, 1), ("bang", 0.29, 0.58, 2), ("bang", 0.58, 0.87, 1),
        ("horn", 0.0, 0.29, 0), ("horn", 0.29, 0.58, 0), ("horn", 0.58, 0.87, 0),
        ("horn", 0.87, 1.16, 1),
    ]


# ------------------------------------------------------------------ class balance
def test_class_balance_of_events_and_candidates(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    # type, events, rule, model, human, share, candidates, new, scored, in_review, accepted,
    # rejected
    assert rows(api, "metrics_class_balance") == [
        ("choose_route", 7, 5, 1, 1, 7 / 26, 1, 0, 0, 0, 1, 0),
        ("dwell", 7, 4, 1, 2, 7 / 26, 4, 2, 0, 0, 2, 0),
        ("follow", 6, 4, 1, 1, 6 / 26, 3, 0, 1, 0, 1, 1),
        ("meet", 0, 0, 0, 0, 0.0, 1, 0, 0, 1, 0, 0),
        ("startle", 6, 4, 1, 1, 6 / 26, 1, 0, 0, 0, 1, 0),
    ]
    assert rows(api, "metrics_class_balance", p_from=D2, p_to=D3) == [
        ("choose_route", 2, 2, 0, 0, 2 / 3, 0, 0, 0, 0, 0, 0),
        ("follow", 1, 1, 0, 0, 1 / 3, 0, 0, 0, 0, 0, 0),
    ]


# ------------------------------------------------------------------ all in one
def test_project_metrics_document(dsn: str, data: Analytics) -> None:
    api = customer(dsn, data.a)
    doc = api.rpc("project_metrics")
    assert set(doc) == {"from", "to", "source_ids", "bucket", "refreshed_at", "events_over_time",
                        "dwell_histogram", "follow_rate", "route_shares", "reaction_latency",
                        "class_balance"}
    assert doc["refreshed_at"] is not None
    assert doc["bucket"] == "day"  # the data span D1 10:00 .. D4 13:00 is over 3 days
    assert [(datetime.fromisoformat(r["bucket"]), r["type"], r["verification"], r["events"])
            for r in doc["events_over_time"]] == rows(api, "metrics_events_over_time",
                                                       p_bucket="day")
    assert doc["route_shares"] == [
        {"zone": "fork", "route": "north", "choices": 3, "share": 0.6},
        {"zone": "fork", "route": "south", "choices": 2, "share": 0.4},
        {"zone": "plaza", "route": "east", "choices": 2, "share": 1.0}]
    assert doc["dwell_histogram"] == api.rpc("metrics_dwell_histogram")
    assert doc["follow_rate"][0] == {"source_id": data.sources["a1"], "source_name": "a1",
                                     "day": "2026-03-02", "follows": 3, "actors": 4,
                                     "rate": 0.75}
    assert len(doc["reaction_latency"]) == 8 and len(doc["class_balance"]) == 5
    one_day = api.rpc("project_metrics", p_from=D1, p_to=D2, p_source_ids=[data.sources["a2"]])
    assert one_day["bucket"] == "hour" and one_day["source_ids"] == [data.sources["a2"]]
    assert datetime.fromisoformat(one_day["from"]) == D1
    assert [r["type"] for r in one_day["events_over_time"]] == [
        "choose_route", "dwell", "follow", "startle"]
    assert api.rpc("project_metrics", p_from=D1, p_to=datetime(2026, 7, 1, tzinfo=UTC)
                   )["bucket"] == "week"


# ------------------------------------------------------------------ isolation
def test_another_projects_rows_are_invisible(dsn: str, data: Analytics) -> None:
    b_api = customer(dsn, data.b)
    assert rows(b_api, "metrics_class_balance") == [
        ("choose_route", 1, 1, 0, 0, 0.2, 0, 0, 0, 0, 0, 0),
        ("dwell", 1, 1, 0, 0, 0.2, 0, 0, 0, 0, 0, 0),
        ("follow", 1, 1, 0, 0, 0.2, 0, 0, 0, 0, 0, 0),
        ("meet", 1, 0, 1, 0, 0.2, 1, 1, 0, 0, 0, 0),
        ("startle", 1, 1, 0, 0, 0.2, 0, 0, 0, 0, 0, 0),
    ]
    # A's roles asking for B's source get nothing of it, whatever the role.
    for role in ("customer", "reviewer", "analyst", "project_admin"):
        api = Api(dsn).as_(role, project_id=data.a, sub="key:test")
        doc = api.rpc("project_metrics", p_source_ids=[data.sources["b1"]])
        assert [doc[k] for k in ("events_over_time", "dwell_histogram", "follow_rate",
                                 "route_shares", "reaction_latency", "class_balance")] == [[]] * 6
        everything = api.rpc("project_metrics")
        assert "west" not in str(everything["route_shares"])
        assert sum(r["events"] for r in everything["class_balance"]) == 26, role


def test_roles_without_grant_are_refused(dsn: str, data: Analytics, db: Conn) -> None:
    with pytest.raises(ApiError) as exc:
        Api(dsn).rpc("project_metrics")
    assert exc.value.status == 401
    assert exc.value.message == "permission denied for function project_metrics"
    # The views themselves are out of reach of every API role.
    with pytest.raises(ApiError) as exc:
        customer(dsn, data.a).request("GET", "/", sql.SQL(
            "SELECT * FROM analytics.events_hourly"))
    assert exc.value.message == "permission denied for schema analytics"
    # Admin sessions (no claims) see every project.
    total = db.execute("SELECT sum(events) AS n FROM api.metrics_class_balance()").fetchone()
    assert total is not None and total["n"] == 31


@pytest.fixture
def analyst_a(db: Conn, dsn: str, data: Analytics) -> Iterator[Conn]:
    with analyst_session(db, dsn, data.a) as conn:
        yield conn


def test_analyst_sql_login_reads_its_projects_metrics(analyst_a: Conn, dsn: str,
                                                     data: Analytics) -> None:
    conn = analyst_a
    # Forged claims of B change nothing on a direct session.
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                 (f'{{"role": "analyst", "project_id": "{data.b}"}}',))
    doc = conn.execute("SELECT api.project_metrics() AS d").fetchone()
    assert doc is not None
    assert doc["d"] == customer(dsn, data.a).rpc("project_metrics")
    got = conn.execute("SELECT zone, route, choices FROM api.metrics_route_shares()").fetchall()
    assert [tuple(r.values()) for r in got] == [("fork", "north", 3), ("fork", "south", 2),
                                                ("plaza", "east", 2)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="permission denied for schema analytics"):
        conn.execute("SELECT * FROM analytics.route_choices")
