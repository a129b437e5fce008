"""Analyst logins carry the analyst caps themselves (a login never reads its group's)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import tuple_row

from tests.support.factories import analyst_session
from workers import tenancy

pytestmark = pytest.mark.db


def test_new_analyst_login_gets_statement_timeout(db: psycopg.Connection[Any], dsn: str) -> None:
    project = tenancy.create_project(db, "caps-org", "caps")
    # The analyst's own session shows its settings.
    with analyst_session(db, dsn, str(project["project_id"]), prefix="c",
                         row_factory=tuple_row) as conn:
        got = conn.execute("SELECT current_setting('statement_timeout'),"
                           " current_setting('idle_in_transaction_session_timeout')"
                           ).fetchone()
    assert got == ("1min", "5min")
