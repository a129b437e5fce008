"""Test data builders for tenancy (admin connection)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import RowFactory, dict_row

from workers import tenancy


def make_project(db: psycopg.Connection[dict[str, Any]], org: str, name: str) -> str:
    return str(tenancy.create_project(db, org, name)["project_id"])


def make_key(db: psycopg.Connection[dict[str, Any]], project_id: str, role: str,
             expires: str | None = None) -> dict[str, Any]:
    return tenancy.create_key(db, project_id, role, expires)


def make_person_key(db: psycopg.Connection[dict[str, Any]], project_id: str,
                    role: str = "reviewer", username: str | None = None) -> dict[str, Any]:
    """An API key owned by a person (a new account with a membership in the project): the
    kind of key that may decide candidates (a key with no owner is a machine's)."""
    name = username or f"person-{uuid.uuid4().hex[:8]}"
    db.execute("SELECT core.create_account(%s, %s)", (name, uuid.uuid4().hex))
    db.execute("SELECT core.add_member(%s, 'user', %s, %s)", (project_id, name, role))
    db.commit()
    return tenancy.create_key(db, project_id, role, owner=name)


@contextmanager
def analyst_session(db: psycopg.Connection[dict[str, Any]], dsn: str, project_id: str,
                    prefix: str = "an", row_factory: RowFactory[Any] = dict_row,
                    ) -> Iterator[psycopg.Connection[Any]]:
    """A real analyst login of the project (`secinf analysts add`), connected directly as
    psql would (trust on the local socket); its membership and role are gone afterwards."""
    login = tenancy.add_analyst(db, project_id, f"{prefix}{uuid.uuid4().hex[:8]}")
    params = conninfo_to_dict(dsn)
    params["user"] = login.role_name
    params.pop("password", None)
    try:
        with psycopg.connect(make_conninfo(**params),  # type: ignore[arg-type]
                             row_factory=row_factory) as conn:
            yield conn
    finally:
        db.rollback()
        db.execute("DELETE FROM core.memberships WHERE member = %s", (login.role_name,))
        db.commit()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                sql.Identifier(login.role_name)))
