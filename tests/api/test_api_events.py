"""Contract: GET /events and POST /rpc/query_events (filters, keyset pagination, tenancy)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.api.helpers import T0, add_events, add_human_event, add_source, all_events
from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def world(module_dsn: str) -> dict[str, Any]:
    """Project A: two sources, 700 events (ties in start_ts) and two human-verified ones;
    project B: one source, 50 events over the same times."""
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        a1 = add_source(db, a, "gate")
        a2 = add_source(db, a, "hall")
        b1 = add_source(db, b, "gate")
        add_events(db, a, a1, 400)
        add_events(db, a, a2, 300, offset=1)
        add_events(db, b, b1, 50, offset=2)
        human = [add_human_event(db, a, a1, T0 + timedelta(seconds=s), {"a": "42", "b": "43"})
                 for s in (10, 95)]
        db.commit()
    return {"a": a, "b": b, "a1": a1, "a2": a2, "b1": b1, "human": human}


@pytest.fixture
def db(module_dsn: str, world: dict[str, Any]) -> Iterator[Conn]:
    with psycopg.connect(module_dsn, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def api(module_dsn: str, world: dict[str, Any]) -> Api:
    return Api(module_dsn).as_("customer", project_id=world["a"], sub="key:sik_test")


def walk(api: Api, page: int, **filters: Any) -> list[dict[str, Any]]:
    """Every row, page by page, following the last row's cursor."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        got = api.rpc("query_events", p_limit=page, p_after=after, **filters)
        assert isinstance(got, list) and len(got) <= page
        rows += got
        if len(got) < page:
            return rows
        after = got[-1]["cursor"]


# ---------------------------------------------------------------- authentication
def test_anonymous_callers_get_401(module_dsn: str, world: dict[str, Any]) -> None:
    anon = Api(module_dsn)
    with pytest.raises(ApiError) as err:
        anon.rpc("query_events")
    assert err.value.status == 401
    assert err.value.message == "permission denied for function query_events"
    with pytest.raises(ApiError) as err:
        anon.get("events")
    assert err.value.status == 401
    assert err.value.message == "permission denied for view events"


# ---------------------------------------------------------------- pagination
def test_walking_every_page_yields_every_event_once_in_order(db: Conn, api: Api,
                                                             world: dict[str, Any]) -> None:
    expected = [e["event_id"] for e in all_events(db, world["a"])]
    assert len(expected) == 702
    for page in (1000, 97, 50):  # 50: page ends fall inside groups of equal start_ts
        rows = walk(api, page)
        ids = [r["event_id"] for r in rows]
        assert ids == expected, page
        keys = [(r["start_ts"], r["event_id"]) for r in rows]
        assert keys == sorted(keys)
        assert {str(r["project_id"]) for r in rows} == {world["a"]}


def test_walk_is_stable_while_newer_events_arrive(db: Conn, module_dsn: str,
                                                  world: dict[str, Any]) -> None:
    c = make_project(db, "initech", "busy")  # its own project: the others stay as built
    src = add_source(db, c, "cam")
    first = add_events(db, c, src, 120)
    db.commit()
    api = Api(module_dsn).as_("customer", project_id=c)
    filters = {"p_source_ids": [src]}
    seen: list[int] = []
    after = None
    added: list[int] = []
    for step in range(100):
        got = api.rpc("query_events", p_limit=25, p_after=after, **filters)
        seen += [r["event_id"] for r in got]
        if len(got) < 25:
            break
        after = got[-1]["cursor"]
        if step < 3:  # newer rows (later start, and ties with the cursor's start_ts)
            added += add_events(db, c, src, 10, start=T0 + timedelta(days=1, seconds=step),
                                per_second=5)
            added += add_events(db, c, src, 2, start=got[-1]["start_ts"], per_second=2)
            db.commit()
    assert len(seen) == len(set(seen)), "a row came twice"
    assert sorted(seen) == sorted(first + added), "a row was skipped"


def test_page_size_cap_is_an_error_not_a_silent_clamp(api: Api) -> None:
    assert len(api.rpc("query_events", p_limit=1000)) == 702
    for bad in (1001, 0, -5):
        with pytest.raises(ApiError) as err:
            api.rpc("query_events", p_limit=bad)
        assert err.value.status == 400
        assert err.value.message == f"p_limit {bad} is outside 1..1000"
        assert err.value.hint is not None and "at most 1000 rows" in err.value.hint


def test_a_malformed_cursor_is_a_clear_400(api: Api) -> None:
    good = api.rpc("query_events", p_limit=1)[0]["cursor"]
    for bad in ("nonsense!", good[:-3], "ZTE6eDp5", good + "AAAA"):
        with pytest.raises(ApiError) as err:
            api.rpc("query_events", p_after=bad)
        assert err.value.status == 400, bad
        assert err.value.message.startswith("invalid cursor"), bad


# ---------------------------------------------------------------- filters
FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("types", {"p_types": ["follow", "enter"]}),
    ("time", {"p_from": T0 + timedelta(seconds=20), "p_to": T0 + timedelta(seconds=61)}),
    ("source", {"p_source_ids": "a2"}),
    ("actors", {"p_actors": ["3", "42"]}),
    ("confidence", {"p_min_confidence": 0.9}),
    ("verification", {"p_verification": ["human", "model"]}),
    ("combined", {"p_types": ["meet"], "p_from": T0 + timedelta(seconds=5),
                  "p_actors": ["42", "7"], "p_verification": ["human", "rule"]}),
    ("empty arrays match all", {"p_types": [], "p_actors": []}),
]


def matches(event: dict[str, Any], f: dict[str, Any]) -> bool:
    return ((not f.get("p_types") or event["type"] in f["p_types"])
            and ("p_from" not in f or event["start_ts"] >= f["p_from"])
            and ("p_to" not in f or event["start_ts"] < f["p_to"])
            and ("p_source_ids" not in f or event["source_id"] in f["p_source_ids"])
            and (not f.get("p_actors") or bool(set(event["actors"].values()) & set(f["p_actors"])))
            and ("p_min_confidence" not in f or event["confidence"] >= f["p_min_confidence"])
            and ("p_verification" not in f or event["verification"] in f["p_verification"]))


@pytest.mark.parametrize(("name", "filters"), FILTERS, ids=[n for n, _ in FILTERS])
def test_filters_select_exactly_the_matching_events(db: Conn, api: Api, world: dict[str, Any],
                                                    name: str, filters: dict[str, Any]) -> None:
    f = {k: ([world[v]] if v == "a2" else v) for k, v in filters.items()}
    expected = [e["event_id"] for e in all_events(db, world["a"]) if matches(e, f)]
    assert expected, f"the {name} filter matches nothing: the test would prove little"
    assert [r["event_id"] for r in walk(api, 60, **f)] == expected


def test_human_verified_events_carry_their_reviewer(api: Api, world: dict[str, Any]) -> None:
    rows = api.rpc("query_events", p_verification=["human"])
    assert [r["event_id"] for r in rows] == world["human"]
    assert {r["verified_by"] for r in rows} == {"ann@example.com"}
    assert rows[0]["source_name"] == "gate" and rows[0]["duration_s"] == 3.0


@pytest.mark.parametrize(("args", "message"), [
    ({"p_from": T0 + timedelta(seconds=9), "p_to": T0}, "p_to (2026-01-01 00:00:00+00) is not "
     "after p_from (2026-01-01 00:00:09+00)"),
    ({"p_min_confidence": 1.5}, "p_min_confidence 1.5 is outside [0, 1]"),
    ({"p_verification": ["human", "robot"]}, "unknown verification robot"),
])
def test_bad_filters_are_clear_400s(api: Api, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as err:
        api.rpc("query_events", **args)
    assert (err.value.status, err.value.message) == (400, message)


# ---------------------------------------------------------------- tenancy
def test_another_projects_events_are_invisible(db: Conn, module_dsn: str,
                                               world: dict[str, Any]) -> None:
    b = Api(module_dsn).as_("customer", project_id=world["b"])
    rows = walk(b, 1000)
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in all_events(db, world["b"])]
    # Naming A's source or A's actors changes nothing: still only B's rows (here none).
    assert b.rpc("query_events", p_source_ids=[world["a1"], world["a2"]]) == []
    assert b.rpc("query_events", p_actors=["42"]) == []
    assert {str(r["project_id"]) for r in b.get("events")} == {world["b"]}
    # A's cursor walks B's rows only.
    a_cursor = Api(module_dsn).as_("customer", project_id=world["a"]).rpc(
        "query_events", p_limit=1)[0]["cursor"]
    assert {str(r["project_id"]) for r in b.rpc("query_events", p_after=a_cursor)} <= {
        world["b"]}


@pytest.mark.parametrize("role", ["reviewer", "analyst", "project_admin"])
def test_every_reading_role_sees_its_projects_events(module_dsn: str, world: dict[str, Any],
                                                     role: str) -> None:
    api = Api(module_dsn).as_(role, project_id=world["a"])
    view = api.get("events")
    assert len(view) == 702 and {str(r["project_id"]) for r in view} == {world["a"]}
    assert len(api.rpc("query_events", p_limit=5)) == 5
