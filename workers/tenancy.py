"""Organizations, projects, API keys and analysts (admin side)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from workers.db.errors import wrap_db_errors
from workers.db.queries import query
from workers.errors import NotFound, UserError

Conn = psycopg.Connection[dict[str, Any]]
KEY_ROLES = ("customer", "reviewer", "analyst", "project_admin")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_DURATION = re.compile(r"^(\d+)\s*([dhm])$")


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63]
    if not _SLUG.match(slug):
        raise UserError(
            f"cannot make a slug from {text!r}: use 2-63 letters, digits or dashes, e.g. 'plaza-7'"
        )
    return slug


def parse_expiry(value: str | None, now: datetime | None = None) -> datetime | None:
    """'30d', '12h', '45m' or an ISO timestamp; None for keys that never expire."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    m = _DURATION.match(value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now + {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[
            unit
        ]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(
            f"--expires {value!r} is neither a duration (30d, 12h, 45m) nor an ISO timestamp"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def create_project(conn: Conn, org: str, name: str, slug: str | None = None,
                   plan: str = "free") -> dict[str, Any]:
    created = conn.execute(
        query("tenancy", "create_project"),
        {"org": slugify(org), "slug": slug or slugify(name), "name": name, "plan": plan},
    ).fetchone()
    assert created is not None
    row = conn.execute(query("tenancy", "project_info"),
                       {"project_id": created["project_id"]}).fetchone()
    conn.commit()
    assert row is not None
    return dict(row)


def resolve_project(conn: Conn, ref: str) -> str:
    """A project id from a uuid, `org/slug` or a unique slug (core.resolve_project); NotFound
    for none, UserError for an ambiguous slug. A failure of the database itself propagates."""
    with wrap_db_errors(rollback=conn):
        row = conn.execute(query("tenancy", "resolve_project"), {"ref": ref}).fetchone()
    assert row is not None
    return str(row["project_id"])


def list_projects(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(query("tenancy", "list_projects")).fetchall()]


def create_key(conn: Conn, project_ref: str, role: str, expires: str | None = None,
               label: str | None = None, owner: str | None = None) -> dict[str, Any]:
    """A new API key (shown once). `owner`: the account the key acts for in reviews."""
    if role not in KEY_ROLES:
        raise UserError(f"--role {role!r} is not a key role: use one of {', '.join(KEY_ROLES)}")
    project_id = resolve_project(conn, project_ref)
    expires_at = parse_expiry(expires)
    with wrap_db_errors(rollback=conn):
        row = conn.execute(
            query("tenancy", "create_api_key"),
            {"project_id": project_id, "role": role, "expires_at": expires_at,
             "label": label, "owner": owner},
        ).fetchone()
    conn.commit()
    assert row is not None
    return {**dict(row), "project_id": project_id, "role": role, "owner": owner}


def revoke_key(conn: Conn, prefix: str) -> None:
    row = conn.execute(query("tenancy", "revoke_api_key"), {"prefix": prefix}).fetchone()
    conn.commit()
    if not row or not row["found"]:
        raise NotFound(f"no API key with prefix {prefix!r}: see `secinf keys list --project P`")


def list_keys(conn: Conn, project_ref: str) -> list[dict[str, Any]]:
    project_id = resolve_project(conn, project_ref)
    return [dict(r) for r in conn.execute(query("tenancy", "list_api_keys"),
                                          {"project_id": project_id}).fetchall()]


@dataclass(frozen=True)
class AnalystLogin:
    role_name: str
    password: str | None
    """None when the login existed already (its password is unchanged)."""
    project_id: str


def add_analyst(conn: Conn, project_ref: str, name: str) -> AnalystLogin:
    """Create (or reuse) the login role `analyst_<name>` and give it the project."""
    role_name = "analyst_" + slugify(name).replace("-", "_")
    project_id = resolve_project(conn, project_ref)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role_name,)).fetchone()
    password: str | None = None
    if not exists:
        password = secrets.token_urlsafe(24)
        # Hash client-side (SCRAM) so the plain password never reaches the server or its log.
        verifier = conn.pgconn.encrypt_password(
            password.encode(), role_name.encode(), b"scram-sha-256"
        ).decode()
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE analyst").format(
                sql.Identifier(role_name), sql.Literal(verifier)
            )
        )
    conn.execute(query("tenancy", "lock_down_database"))
    # A login reads only its own role settings, never the `analyst` group's: copy the
    # group's (the caps migration 0010 sets on it for API requests, temp_file_limit from
    # sql/961_analyst_limits.sql) onto the login.
    for cap in conn.execute(query("tenancy", "analyst_group_settings")).fetchall():
        conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(
            sql.Identifier(role_name), sql.Identifier(cap["key"]), sql.Literal(cap["value"])))
    conn.execute(query("tenancy", "add_member"),
                 {"project_id": project_id, "kind": "db_role", "member": role_name,
                  "role": "analyst"})
    # Its CONNECTION LIMIT by the plan (analysts get no token buckets: they are not API calls).
    conn.execute(query("tenancy", "apply_analyst_connection_limits"))
    conn.commit()
    return AnalystLogin(role_name, password, project_id)


def list_analysts(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(query("tenancy", "list_analysts")).fetchall()]


def jwt_secret(conn: Conn) -> str:
    row = conn.execute(query("tenancy", "active_secret")).fetchone()
    if not row or not row["secret"]:
        raise UserError("no JWT secret yet: run `secinf db migrate`")
    return str(row["secret"])


def rotate_secret(conn: Conn) -> dict[str, Any]:
    """A new active JWT signing secret; the old one is deactivated (kept for the record).
    Returns {kid, deactivated}. Commits."""
    with wrap_db_errors(rollback=conn):
        row = conn.execute(query("tenancy", "rotate_signing_key")).fetchone()
    conn.commit()
    assert row is not None
    return dict(row["rotated"])
