"""The review queue: three orderings, keyset pages that are complete and stable, filters,
facet counts, and who may call it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers.review.synthetic import ORIGIN, add_candidates, make_scene

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
N = 400


@pytest.fixture(scope="module")
def two_projects(module_dsn: str) -> tuple[str, str, list[int]]:
    """Project A with N synthetic candidates on two sources, project B with 50."""
    with psycopg.connect(module_dsn, row_factory=dict_row) as db:
        a = make_project(db, "acme", "north")
        b = make_project(db, "globex", "south")
        scene = make_scene(db, a, sources=2)
        add_candidates(db, scene, N)
        add_candidates(db, make_scene(db, b, sources=1), 50, first=N + 1)
        db.commit()
    return a, b, scene.source_ids


@pytest.fixture
def dsn(module_dsn: str, two_projects: tuple[str, str, list[int]]) -> str:
    return module_dsn


def rows_of(dsn: str, project: str, where: str = "true") -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as db:
        return db.execute(
            "SELECT candidate_id, type, source_id, status, start_ts,"
            " coalesce(model_score, rule_score) AS score FROM candidates.candidates"
            f" WHERE project_id = %s AND {where}", (project,)).fetchall()


def expected(rows: list[dict[str, Any]], order: str) -> list[int]:
    if order == "uncertain":
        key = sorted(rows, key=lambda r: (abs(r["score"] - 0.5), r["candidate_id"]))
    elif order == "newest":
        key = sorted(rows, key=lambda r: (r["start_ts"], r["candidate_id"]), reverse=True)
    else:
        key = sorted(rows, key=lambda r: (r["score"], r["candidate_id"]), reverse=True)
    return [r["candidate_id"] for r in key]


def walk(api: Api, page: int, **filters: Any) -> list[dict[str, Any]]:
    """Every page of the queue, following the cursors."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        rows = _rows(api.rpc("review_queue", p_after=after, p_limit=page, **filters))
        out.extend(rows)
        if len(rows) < page:
            return out
        after = rows[-1]["cursor"]


def _rows(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, list):
        return answer
    return [answer] if answer else []


@pytest.mark.parametrize("order", ["uncertain", "newest", "score"])
def test_pages_follow_the_ordering_completely_without_duplicates(
    dsn: str, two_projects: tuple[str, str, list[int]], order: str
) -> None:
    a, _, _ = two_projects
    api = Api(dsn).as_("reviewer", project_id=a, sub="alice")
    got = walk(api, 37, p_order=order)
    undecided = rows_of(dsn, a, "status IN ('new', 'scored')")
    assert [r["candidate_id"] for r in got] == expected(undecided, order)
    assert {r["status"] for r in got} == {"new", "scored"}
    # Ties exist in this data (scores on a 1/1000 grid), so the tie-break was exercised.
    keys = [abs(r["score"] - 0.5) if order == "uncertain" else r["score"] for r in got]
    assert len(set(keys)) < len(keys) or order == "newest"
    # Same page twice: same rows (stable).
    first = _rows(api.rpc("review_queue", p_order=order, p_limit=20))
    again = _rows(api.rpc("review_queue", p_order=order, p_limit=20))
    assert first == again
    sample = got[0]
    assert set(sample) == {"candidate_id", "source_id", "source_name", "type", "actors", "zone",
                           "route", "trigger", "start_ts", "end_ts", "rule_score",
                           "model_score", "score", "status", "cursor"}
    assert sample["source_name"].startswith("synthetic-")


def test_filters_combine_and_pages_stay_complete(
    dsn: str, two_projects: tuple[str, str, list[int]]
) -> None:
    a, _, sources = two_projects
    api = Api(dsn).as_("reviewer", project_id=a, sub="alice")
    lo, hi = ORIGIN + timedelta(seconds=0.5), ORIGIN + timedelta(seconds=3)
    filters = {"p_types": ["follow", "meet"], "p_source_ids": [sources[0]],
               "p_min_score": 0.2, "p_max_score": 0.8,
               "p_statuses": ["scored", "accepted"], "p_from": lo, "p_to": hi}
    for order in ("uncertain", "newest", "score"):
        got = walk(api, 7, p_order=order, **filters)
        want = rows_of(dsn, a, "type IN ('follow', 'meet') AND status IN ('scored', 'accepted')"
                       f" AND source_id = {sources[0]}"
                       " AND coalesce(model_score, rule_score) BETWEEN 0.2 AND 0.8"
                       f" AND start_ts >= '{lo.isoformat()}' AND start_ts < '{hi.isoformat()}'")
        assert want, "the filter should match something"
        assert [r["candidate_id"] for r in got] == expected(want, order)


def test_counts_match_the_queue_and_give_facets(
    dsn: str, two_projects: tuple[str, str, list[int]]
) -> None:
    a, _, sources = two_projects
    api = Api(dsn).as_("reviewer", project_id=a, sub="alice")
    counts = api.rpc("review_counts")
    undecided = rows_of(dsn, a, "status IN ('new', 'scored')")
    assert counts["total"] == len(undecided) == len(walk(api, 200))
    everything = rows_of(dsn, a)
    assert counts["by_status"] == {s: sum(r["status"] == s for r in everything)
                                   for s in ("accepted", "new", "rejected", "scored")}
    assert counts["by_type"] == {t: sum(r["type"] == t for r in undecided)
                                 for t in {r["type"] for r in undecided}}
    assert counts["by_source"] == {str(s): sum(r["source_id"] == s for r in undecided)
                                   for s in sources}
    assert set(counts["source_names"].values()) == {"synthetic-1", "synthetic-2"}
    # Facets leave their own filter out: by_type still lists every type under a type filter.
    typed = api.rpc("review_counts", p_types=["stop"], p_min_score=0.5)
    stop = [r for r in undecided if r["type"] == "stop" and r["score"] >= 0.5]
    assert typed["total"] == len(stop)
    assert len(typed["by_type"]) == 8 and typed["by_type"]["stop"] == len(stop)
    assert sum(typed["by_status"].values()) >= typed["total"]


def test_page_size_is_capped_and_bad_input_is_refused(
    dsn: str, two_projects: tuple[str, str, list[int]]
) -> None:
    a, _, _ = two_projects
    api = Api(dsn).as_("reviewer", project_id=a, sub="alice")
    assert len(_rows(api.rpc("review_queue", p_limit=100000))) == 200
    assert len(_rows(api.rpc("review_queue", p_limit=0))) == 1
    page = _rows(api.rpc("review_queue", p_order="newest", p_limit=3))
    with pytest.raises(ApiError) as err:
        api.rpc("review_queue", p_order="score", p_after=page[-1]["cursor"])
    assert err.value.status == 400
    assert err.value.message == 'this cursor belongs to ordering "newest", not "score"'
    for bad in ("garbage", "bmV3ZXN0fHh8MQ"):  # not base64 of a cursor; newest|x|1
        with pytest.raises(ApiError) as err:
            api.rpc("review_queue", p_order="newest", p_after=bad)
        assert err.value.status == 400 and err.value.message.startswith("invalid queue cursor")
    with pytest.raises(ApiError) as err:
        api.rpc("review_queue", p_order="random")
    assert err.value.message == 'unknown queue order "random"'
    with pytest.raises(ApiError) as err:
        api.rpc("review_counts", p_statuses=["done"])
    assert err.value.message == 'unknown candidate status "done"'


def test_a_reviewer_sees_only_their_project_and_customers_cannot_call(
    dsn: str, two_projects: tuple[str, str, list[int]]
) -> None:
    a, b, _ = two_projects
    b_ids = {r["candidate_id"] for r in rows_of(dsn, b)}
    for role in ("reviewer", "project_admin"):
        api = Api(dsn).as_(role, project_id=a, sub="alice")
        seen = {r["candidate_id"] for r in walk(api, 200, p_statuses=[
            "new", "scored", "in_review", "accepted", "rejected"])}
        assert seen and not seen & b_ids
        assert api.rpc("review_counts", p_statuses=["new", "scored", "accepted", "rejected"]
                       )["total"] == len(rows_of(dsn, a))
    # Asking for B's sources from A shows nothing of B.
    b_source = rows_of(dsn, b)[0]["source_id"]
    api = Api(dsn).as_("reviewer", project_id=a, sub="alice")
    assert _rows(api.rpc("review_queue", p_source_ids=[b_source])) == []
    assert api.rpc("review_counts", p_source_ids=[b_source])["total"] == 0
    for role in ("customer", "anon"):
        with pytest.raises(ApiError) as err:
            Api(dsn).as_(role, project_id=a).rpc("review_queue")
        assert err.value.message == "permission denied for function review_queue"
        assert err.value.status == (401 if role == "anon" else 403)
    reasons = Api(dsn).as_("reviewer", project_id=a).get("review_reasons")
    assert [r["code"] for r in reasons][:2] == ["wrong_type", "wrong_actors"]


def test_cursors_do_not_depend_on_the_callers_session_settings(
    dsn: str, two_projects: tuple[str, str, list[int]]
) -> None:
    a, _, _ = two_projects
    params = conninfo_to_dict(dsn)
    params["user"] = "authenticator"
    params.pop("password", None)
    claims = json.dumps({"role": "reviewer", "project_id": a, "sub": "alice"})
    for order in ("uncertain", "newest", "score"):
        seen: list[int] = []
        after = None
        with psycopg.connect(make_conninfo(**params), row_factory=dict_row) as conn:
            # Settings a client might bring: rounded floats, another date style and zone.
            conn.execute("SET extra_float_digits = -3")
            conn.execute("SET DateStyle = 'SQL, DMY'")
            conn.execute("SET TimeZone = 'America/New_York'")
            while True:
                with conn.transaction():
                    conn.execute("SET LOCAL ROLE reviewer")
                    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                    rows = conn.execute("SELECT candidate_id, cursor"
                                        " FROM api.review_queue(p_order => %s,"
                                        " p_after => %s, p_limit => 41)",
                                        (order, after)).fetchall()
                seen += [r["candidate_id"] for r in rows]
                if len(rows) < 41:
                    break
                after = rows[-1]["cursor"]
        assert seen == expected(rows_of(dsn, a, "status IN ('new', 'scored')"), order), order
    # No order given (PostgREST passes an explicit null): the default ordering.
    api = Api(dsn).as_("reviewer", project_id=a, sub="alice")
    assert _rows(api.rpc("review_queue", p_order=None, p_limit=5)) == \
        _rows(api.rpc("review_queue", p_limit=5))
