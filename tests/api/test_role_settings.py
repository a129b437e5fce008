"""Role settings (migrations/0010_api_roles.sql) cap every API request: PostgREST applies the
impersonated role's settings per request, and so does the request harness."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.postgrest import Api, ApiError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]

EXPECTED = {
    "anon": ("5s", "30s"),
    "customer": ("15s", "30s"),
    "reviewer": ("15s", "30s"),
    "project_admin": ("30s", "30s"),
    "analyst": ("1min", "5min"),
}
SHOW = sql.SQL("SELECT current_setting('statement_timeout') AS st,"
               " current_setting('idle_in_transaction_session_timeout') AS idle")


def test_the_roles_carry_their_caps(db: Conn) -> None:
    rows = {r["rolname"]: set(r["rolconfig"] or []) for r in db.execute(
        "SELECT rolname, rolconfig FROM pg_roles WHERE rolname = ANY(%s)",
        (list(EXPECTED),)).fetchall()}
    assert rows["customer"] >= {"statement_timeout=15s", "idle_in_transaction_session_timeout=30s"}
    assert rows["analyst"] >= {"statement_timeout=60s", "idle_in_transaction_session_timeout=5min"}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_request_runs_under_its_roles_caps(dsn: str, role: str) -> None:
    api = Api(dsn).as_(role)
    row = api.request("GET", "/", SHOW)[0]
    assert (row["st"], row["idle"]) == EXPECTED[role]


def test_a_plain_set_role_does_not_apply_them(dsn: str) -> None:
    # Postgres applies role settings at login only: why PostgREST (and the harness) set the
    # impersonated role's settings per request.
    with psycopg.connect(dsn) as conn:
        before = conn.execute(SHOW).fetchone()
        conn.execute("SET ROLE customer")
        after = conn.execute(SHOW).fetchone()
    assert after == before and after is not None and after[0] != "15s"


@pytest.mark.slow
def test_a_statement_past_the_cap_is_cancelled_with_504(dsn: str) -> None:
    with pytest.raises(ApiError) as err:
        Api(dsn).request("POST", "/rpc/sleep", sql.SQL("SELECT pg_sleep(6)"))
    assert err.value.status == 504
    assert err.value.message == "canceling statement due to statement timeout"
