"""Query plans of the review queue at 100,000 candidates, as a reviewer with claims (RLS
on): every page of every ordering, with and without filters, first and later keyset pages,
is ordered index range scans on candidates — never a sequential scan of candidates or of a
hypertable — and an unfiltered page reads about one page of rows at any depth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.support.factories import make_project
from tests.support.postgrest import Api
from workers.review.synthetic import ORIGIN, add_candidates, make_scene

pytestmark = [pytest.mark.db, pytest.mark.slow]
N = 100_000
PAGE = 50
QUEUE_INDEXES = {"uncertain": "candidates_queue_uncertain_idx",
                 "newest": "candidates_queue_newest_idx", "score": "candidates_queue_score_idx"}


@pytest.fixture(scope="module")
def big(module_dsn: str) -> tuple[str, list[int]]:
    """Project A with 100,000 candidates on four sources; project B with 2,000."""
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        scene = make_scene(db, a, sources=4)
        add_candidates(db, scene, N, rebuild_indexes=True)
        add_candidates(db, make_scene(db, b, sources=1), 2_000, first=N + 1)
        db.commit()
    with psycopg.connect(module_dsn, autocommit=True) as db:
        db.execute("VACUUM ANALYZE candidates.candidates")
        db.execute("ANALYZE ingest.sources")
    return a, scene.source_ids


@pytest.fixture
def reviewer(module_dsn: str, big: tuple[str, list[int]]) -> Api:
    return Api(module_dsn).as_("reviewer", project_id=big[0], sub="alice")


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def hypertables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as db:
        return {r[0] for r in db.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables").fetchall()}


def explain(api: Api, order: str, filters: dict[str, Any], after: str | None
            ) -> dict[str, Any]:
    """EXPLAIN (ANALYZE) of exactly the SQL api.review_queue runs for these arguments."""
    args = {"p_order": order, "p_after": after, "p_limit": PAGE, **filters}
    text = api.request("POST", "/rpc/review_queue", sql.SQL("SELECT review.queue_sql({}) AS q")
                       .format(sql.SQL(", ").join(
                           sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k))
                           for k in args)), args)[0]["q"]
    rows = api.request("POST", "/rpc/review_queue",
                       sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + sql.SQL(text))
    return rows[0]["QUERY PLAN"][0]["Plan"]  # type: ignore[no-any-return]


FILTER_SETS: dict[str, dict[str, Any]] = {
    "none": {},
    "type+score": {"p_types": ["follow", "meet"], "p_min_score": 0.2, "p_max_score": 0.9},
    "decided": {"p_statuses": ["accepted", "rejected"]},
    "time": {"p_from": ORIGIN + timedelta(seconds=100), "p_to": ORIGIN + timedelta(seconds=900)},
}


@pytest.mark.parametrize("order", ["uncertain", "newest", "score"])
@pytest.mark.parametrize("filter_set", list(FILTER_SETS))
def test_queue_pages_are_index_range_scans_at_any_depth(
    reviewer: Api, module_dsn: str, big: tuple[str, list[int]], order: str, filter_set: str
) -> None:
    filters = dict(FILTER_SETS[filter_set])
    if filter_set == "type+score":
        filters["p_source_ids"] = big[1][:2]
    # A later page: the cursor after five pages.
    after = None
    for _ in range(5):
        page = reviewer.rpc("review_queue", p_order=order, p_after=after, p_limit=PAGE,
                            **filters)
        assert len(page) == PAGE
        after = page[-1]["cursor"]
    forbidden = hypertables(module_dsn) | {"candidates"}
    for cursor in (None, after):
        plan = explain(reviewer, order, filters, cursor)
        scans = [n for n in nodes(plan) if n.get("Relation Name") == "candidates"]
        seq = [n.get("Relation Name") for n in nodes(plan)
               if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in forbidden]
        assert seq == [], f"sequential scan of {seq} ({order}, {filter_set})"
        assert scans and all(n["Node Type"] == "Index Scan" for n in scans), (
            [(n["Node Type"], n.get("Index Name")) for n in scans])
        assert {n["Index Name"] for n in scans} == {QUEUE_INDEXES[order]}
        if cursor is not None:  # the keyset condition is an index condition, not a filter
            assert all("ROW(" in n["Index Cond"] for n in scans), scans[0]["Index Cond"]
        if filter_set in ("none", "decided"):
            read = sum(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) for n in scans)
            assert read <= PAGE + len(scans), (order, filter_set, read)
