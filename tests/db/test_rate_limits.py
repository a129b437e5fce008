"""Rate limits, request metering and the daily request quota in api.pre_request
(sql/25x_billing_rate_limits*.sql), through the PostgREST request model with real API keys
exchanged for tokens: bounded loops of requests on loopback, each its own connection and
transaction (READ ONLY for GETs), against a test plan with small buckets."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.factories import make_key, make_project
from tests.support.postgrest import Api, ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
KEY_BURST, PROJECT_BURST, PER_SECOND = 3, 5, 1.0
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def projects(db: Conn) -> tuple[str, str]:
    """Two projects of two organizations on a plan with tiny buckets."""
    db.execute("INSERT INTO core.plans (plan_id, description) VALUES ('ratetest', 'tiny buckets')")
    db.execute("INSERT INTO billing.rate_limits (plan_id, scope, per_second, burst) VALUES"
               " ('ratetest', 'key', %(r)s, %(k)s), ('ratetest', 'project', %(r)s, %(p)s)",
               {"r": PER_SECOND, "k": KEY_BURST, "p": PROJECT_BURST})
    a = make_project(db, "acme", "north")
    b = make_project(db, "globex", "south")
    db.execute("UPDATE core.organizations SET plan_id = 'ratetest'")
    db.commit()
    return a, b


def key_api(dsn: str, db: Conn, project: str, role: str = "customer") -> Api:
    """A caller with a new API key of `project`, exchanged for its token's claims."""
    key = make_key(db, project, role)["api_key"]
    answer = Api(dsn).rpc("exchange_key", api_key=key)
    claims = dict(answer["claims"])
    return Api(dsn).as_(claims.pop("role"), **claims)


def me(api: Api) -> Any:
    return api.rpc("me")


def burst_until_refused(call: Any, bound: int) -> tuple[int, ApiError]:
    """Call until the first refusal (at most `bound` calls): (calls admitted, the refusal)."""
    for i in range(bound):
        try:
            call()
        except ApiError as exc:
            return i, exc
    raise AssertionError(f"{bound} requests and none was refused")


def test_a_key_gets_429_with_the_headers_after_its_burst_and_others_are_unaffected(
        dsn: str, db: Conn, projects: tuple[str, str]) -> None:
    a = key_api(dsn, db, projects[0])
    seen = []
    admitted, refused = burst_until_refused(lambda: seen.append((me(a), a.last_headers)),
                                            KEY_BURST + 5)
    assert admitted == KEY_BURST
    # Every admitted request told what was left of its tightest bucket (the key's).
    assert [h["X-RateLimit-Remaining"] for _, h in seen] == ["2", "1", "0"]
    assert {h["X-RateLimit-Limit"] for _, h in seen} == {str(KEY_BURST)}
    assert all(int(h["X-RateLimit-Reset"]) >= 1 for _, h in seen)
    assert (refused.status, refused.sqlstate) == (429, "PT429")
    assert refused.headers == {"Retry-After": "1", "X-RateLimit-Limit": str(KEY_BURST),
                               "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"}
    assert refused.message.startswith("too many requests: this API key may make 3 requests "
                                      "at once, refilled at 1 per second; retry in 1 s")
    assert refused.hint is not None and "Retry-After" in refused.hint
    assert a.last_headers == refused.headers
    # A key of another project has its whole burst.
    b = key_api(dsn, db, projects[1])
    me(b)
    assert b.last_headers["X-RateLimit-Remaining"] == str(KEY_BURST - 1)


def test_a_projects_bucket_covers_all_its_keys(dsn: str, db: Conn,
                                               projects: tuple[str, str]) -> None:
    first, second, third = (key_api(dsn, db, projects[0]) for _ in range(3))
    for _ in range(KEY_BURST):
        me(first)
    # The second key's own bucket is full, the project's has PROJECT_BURST - 3 = 2 left.
    me(second)
    assert second.last_headers["X-RateLimit-Remaining"] == "1"
    assert second.last_headers["X-RateLimit-Limit"] == str(PROJECT_BURST)
    admitted, refused = burst_until_refused(lambda: me(third), 5)
    assert admitted == 1
    assert refused.status == 429
    assert refused.message.startswith("too many requests: this project (all its keys and "
                                      "accounts together) may make 5 requests at once")
    assert refused.headers["X-RateLimit-Limit"] == str(PROJECT_BURST)


def test_gets_run_read_only_and_are_limited(dsn: str, db: Conn,
                                            projects: tuple[str, str]) -> None:
    a = key_api(dsn, db, projects[0])
    ro = a.request("GET", "/ro", sql.SQL("SELECT current_setting('transaction_read_only') AS ro"))
    assert ro == [{"ro": "on"}]
    with pytest.raises(ApiError) as write:
        a.request("GET", "/w", sql.SQL("CREATE TEMP TABLE t (x int)"))
    assert (write.value.status, write.value.sqlstate) == (405, "25006")
    admitted, refused = burst_until_refused(lambda: a.get("projects"), KEY_BURST + 5)
    assert admitted == KEY_BURST - 2  # the two requests above took tokens too
    assert refused.status == 429 and refused.headers["X-RateLimit-Remaining"] == "0"


def test_a_bucket_refills_at_its_rate(dsn: str, db: Conn, projects: tuple[str, str]) -> None:
    a = key_api(dsn, db, projects[0])
    _, refused = burst_until_refused(lambda: me(a), KEY_BURST + 5)
    time.sleep(int(refused.headers["Retry-After"]) + 0.05)
    me(a)  # one token came back at 1 per second …
    assert a.last_headers["X-RateLimit-Remaining"] == "0"
    with pytest.raises(ApiError) as again:  # … and only one
        me(a)
    assert again.value.status == 429


def test_operator_tokens_are_counted_but_not_limited(dsn: str, db: Conn,
                                                     projects: tuple[str, str]) -> None:
    operator = Api(dsn).as_("customer", project_id=projects[0], sub="tool")
    for _ in range(PROJECT_BURST + 3):
        me(operator)
    assert not any(h in operator.last_headers for h in RATE_HEADERS)
    row = db.execute("SELECT billing.requests_today(%s) AS n", (projects[0],)).fetchone()
    assert row is not None and row["n"] == PROJECT_BURST + 3


def flush(db: Conn) -> dict[str, Any]:
    row = db.execute("SELECT billing.flush_request_counts() AS f").fetchone()
    db.commit()
    assert row is not None
    return dict(row["f"])


def usage(db: Conn, project: str) -> int:
    row = db.execute("SELECT coalesce(sum(amount), 0)::bigint AS n FROM billing.usage"
                     " WHERE project_id = %s AND metric = 'api_requests'", (project,)).fetchone()
    assert row is not None
    return int(row["n"])


def test_the_flush_adds_each_request_once_even_when_run_twice(
        dsn: str, db: Conn, projects: tuple[str, str]) -> None:
    a = key_api(dsn, db, projects[0])
    b = key_api(dsn, db, projects[1])
    for _ in range(3):
        me(a)
    me(b)
    assert burst_until_refused(lambda: me(a), 5)[0] == 0  # refused: not counted
    first = flush(db)
    assert (first["counters"], first["added"]) == (2, 4)
    assert flush(db)["added"] == 0
    assert (usage(db, projects[0]), usage(db, projects[1])) == (3, 1)
    counts = db.execute("SELECT project_id::text AS p, n, epoch FROM billing.request_counts"
                        " ORDER BY n").fetchall()
    assert [(r["p"], r["n"]) for r in counts] == [(projects[1], 1), (projects[0], 3)]
    segment = db.execute("SELECT billing.rate_segment() AS s").fetchone()
    assert segment is not None and {r["epoch"] for r in counts} == {segment["s"]["epoch"]}
    # Later requests add only themselves; the quota sees flushed and unflushed alike.
    time.sleep(1.05)
    me(b)
    assert flush(db)["added"] == 1 and flush(db)["added"] == 0
    assert usage(db, projects[1]) == 2
    row = db.execute("SELECT billing.requests_today(%s) AS n", (projects[1],)).fetchone()
    assert row is not None and row["n"] == 2


def test_the_daily_request_quota_refuses_with_402(dsn: str, db: Conn,
                                                  projects: tuple[str, str]) -> None:
    db.execute("INSERT INTO billing.quota_overrides (project_id, metric, quota, set_by, reason)"
               " VALUES (%s, 'api_requests', 4, 'test', 'small daily quota')", (projects[0],))
    db.commit()
    operator = Api(dsn).as_("customer", project_id=projects[0], sub="tool")
    for _ in range(2):
        me(operator)
    flush(db)  # flushed and unflushed requests count alike
    me(operator)
    assert "X-Quota-Warning" not in operator.last_headers
    me(operator)
    assert operator.last_headers["X-Quota-Warning"].startswith(
        "api_requests at 100% of its quota (4 of 4 requests per day")
    with pytest.raises(ApiError) as refused:
        me(operator)
    assert (refused.value.status, refused.value.sqlstate) == (402, "PT402")
    assert refused.value.message.startswith(
        "quota exceeded: api_requests would be 5 of this project's quota of 4 requests per "
        "day, which resets at ")
    assert refused.value.hint is not None and "secinf quotas set" in refused.value.hint
    flush(db)
    assert usage(db, projects[0]) == 4  # the refusal was not counted
    with pytest.raises(ApiError) as still:
        me(key_api(dsn, db, projects[0]))
    assert still.value.status == 402
    # The other project is not concerned.
    me(Api(dsn).as_("customer", project_id=projects[1], sub="tool"))


def test_exchanges_of_one_key_are_limited_by_its_prefix(dsn: str, db: Conn,
                                                        projects: tuple[str, str]) -> None:
    db.execute("UPDATE pipeline.settings SET value = '2'"
               " WHERE project_id IS NULL AND key = 'rate_exchange_burst'")
    db.commit()
    key = make_key(db, projects[0], "customer")["api_key"]
    anon = Api(dsn)
    for _ in range(2):
        anon.rpc("exchange_key", api_key=key)
    with pytest.raises(ApiError) as refused:
        anon.rpc("exchange_key", api_key=key)
    assert refused.value.status == 429
    assert refused.value.message.startswith("too many requests: exchanges of this API key "
                                            "may make 2 requests at once")
    assert refused.value.headers["Retry-After"] == "2"  # 0.5 per second
    # Another key's exchanges are not slowed; anonymous requests carry the anon bucket's headers.
    anon.rpc("exchange_key", api_key=make_key(db, projects[0], "customer")["api_key"])
    assert anon.last_headers["X-RateLimit-Limit"] == "100"


def test_each_database_has_its_own_segment(dsn: str, db: Conn) -> None:
    row = db.execute("SELECT billing.rate_segment() AS s, (SELECT oid::text FROM pg_database"
                     " WHERE datname = current_database()) AS oid").fetchone()
    assert row is not None
    assert row["s"]["path"].endswith("-" + row["oid"])
    assert row["s"]["slots"] == 65536
