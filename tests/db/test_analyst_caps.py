"""Analyst logins carry the analyst caps themselves (a login never reads its group's)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from workers import tenancy

pytestmark = pytest.mark.db


def test_new_analyst_login_gets_statement_timeout(db: psycopg.Connection[Any], dsn: str) -> None:
    project = tenancy.create_project(db, "caps-org", "caps")
    login = tenancy.add_analyst(db, str(project["project_id"]), f"c{uuid.uuid4().hex[:8]}")
    try:
        params = conninfo_to_dict(dsn)
        params["user"] = login.role_name
        # Trust on the local socket: the analyst's own session shows its settings.
        with psycopg.connect(make_conninfo(**params)) as conn:  # type: ignore[arg-type]
            got = conn.execute("SELECT current_setting('statement_timeout'),"
                               " current_setting('idle_in_transaction_session_timeout')"
                               ).fetchone()
        assert got == ("1min", "5min")
    finally:
        db.rollback()
        db.execute("DELETE FROM core.memberships WHERE member = %s", (login.role_name,))
        db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login.role_name)))
        db.commit()
