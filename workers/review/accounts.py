"""Local sign-in accounts for the review app (admin side).

An account is a user name with a bcrypt-hashed password (core.accounts); what it may do
comes from memberships of kind 'user' (core.add_member), exactly like the projects an API
key's subject belongs to. People sign in with `api.login` (sql/500_review_accounts.sql).
"""

from __future__ import annotations

from typing import Any

import psycopg

from workers import tenancy
from workers.db.errors import wrap_db_errors
from workers.db.queries import query
from workers.errors import NotFound, UserError

Conn = psycopg.Connection[dict[str, Any]]
ACCOUNT_ROLES = ("reviewer", "project_admin", "customer", "analyst")


def _run(conn: Conn, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    with wrap_db_errors(rollback=conn):
        row = conn.execute(query("review", name), params).fetchone()
    return dict(row) if row else None


def _check_role(role: str) -> None:
    if role not in ACCOUNT_ROLES:
        raise UserError(f"--role {role!r} is not an account role: use one of "
                        f"{', '.join(ACCOUNT_ROLES)}")


def _add_member(conn: Conn, project_id: str, username: str, role: str) -> None:
    """The account's membership (kind 'user') in the project, in the open transaction."""
    with wrap_db_errors(rollback=conn):
        conn.execute(query("tenancy", "add_member"),
                     {"project_id": project_id, "kind": "user", "member": username,
                      "role": role})


def grant(conn: Conn, username: str, project_ref: str, role: str) -> str:
    """Give an existing account a role in a project; returns the project id."""
    _check_role(role)
    found = _run(conn, "account_exists", {"username": username})
    if not found or not found["found"]:
        raise NotFound(f"no account {username!r}: create it with `secinf accounts create`")
    project_id = tenancy.resolve_project(conn, project_ref)
    _add_member(conn, project_id, username, role)
    conn.commit()
    return project_id


def create(conn: Conn, username: str, password: str, project_ref: str | None = None,
           role: str = "reviewer", display_name: str | None = None) -> dict[str, Any]:
    """Create an account and, with a project, its first membership (one transaction)."""
    _check_role(role)
    project_id = tenancy.resolve_project(conn, project_ref) if project_ref else None
    _run(conn, "create_account",
         {"username": username, "password": password, "display_name": display_name})
    if project_id is not None:
        _add_member(conn, project_id, username, role)
    conn.commit()
    return {"username": username, "display_name": display_name, "project_id": project_id,
            "role": role if project_id else None}


def set_password(conn: Conn, username: str, password: str) -> None:
    row = _run(conn, "set_password", {"username": username, "password": password})
    conn.commit()
    if not row or not row["found"]:
        raise NotFound(f"no account {username!r}: see `secinf accounts list`")


def set_disabled(conn: Conn, username: str, disabled: bool = True) -> None:
    """Disable an account (it can no longer sign in; its tokens stop working) or re-enable it."""
    row = _run(conn, "disable_account", {"username": username, "disabled": disabled})
    conn.commit()
    if not row or not row["found"]:
        raise NotFound(f"no account {username!r}: see `secinf accounts list`")


def list_accounts(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(query("review", "list_accounts")).fetchall()]
