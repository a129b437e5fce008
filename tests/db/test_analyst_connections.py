"""Analysts' direct logins get a CONNECTION LIMIT by plan (sql/960_analyst_connections.sql)
instead of token buckets: `secinf analysts add` sets it, a plan change re-applies it, and
the server refuses the connection past it with its own message."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.factories import make_project
from workers import tenancy

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def limit_of(db: Conn, role: str) -> int:
    row = db.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return int(row["rolconnlimit"])


def test_an_analyst_login_gets_its_plans_connection_limit(dsn: str, db: Conn) -> None:
    project = make_project(db, "acme", "north")  # a free plan: 2 connections
    login = tenancy.add_analyst(db, project, f"cl{uuid.uuid4().hex[:8]}")
    params = conninfo_to_dict(dsn)
    params["user"] = login.role_name
    params.pop("password", None)
    conninfo = make_conninfo(**params)  # type: ignore[arg-type]
    opened: list[psycopg.Connection[Any]] = []
    try:
        assert limit_of(db, login.role_name) == 2
        opened += [psycopg.connect(conninfo) for _ in range(2)]
        with pytest.raises(psycopg.OperationalError,
                           match=f'too many connections for role "{login.role_name}"'):
            psycopg.connect(conninfo)
        # A better plan raises the limit at the next application (pg_cron: 5 minutes).
        db.execute("UPDATE core.organizations SET plan_id = 'team'")
        changed = db.execute("SELECT auth.apply_analyst_connection_limits() AS c").fetchone()
        db.commit()
        assert changed is not None
        assert changed["c"] == [{"role": login.role_name, "from": 2, "to": 10}]
        assert limit_of(db, login.role_name) == 10
        opened.append(psycopg.connect(conninfo))
        # Nothing to change: nothing is altered.
        again = db.execute("SELECT auth.apply_analyst_connection_limits() AS c").fetchone()
        assert again is not None and again["c"] == []
    finally:
        for conn in opened:
            conn.close()
        db.rollback()
        db.execute("DELETE FROM core.memberships WHERE member = %s", (login.role_name,))
        db.commit()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                sql.Identifier(login.role_name)))
