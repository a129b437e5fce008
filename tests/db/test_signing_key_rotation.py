"""`secinf keys rotate-secret`: a new active JWT signing secret, the old one deactivated;
tokens signed with the old secret no longer verify against the new one (what PostgREST
checks once it restarts with it), API keys keep working, and no API role may rotate."""

from __future__ import annotations

import json
from typing import Any

import jwt
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from plpython.jwt_tokens import verify
from tests.support.factories import make_key, make_project
from tests.support.postgrest import Api, ApiError
from workers import tenancy
from workers.cli.tenancy_cmd import keys_app
from workers.errors import UserError

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def signing_keys(db: Conn) -> list[dict[str, Any]]:
    rows = db.execute("SELECT kid, active FROM auth.signing_keys ORDER BY created_at, kid"
                      ).fetchall()
    db.rollback()
    return [dict(r) for r in rows]


def test_rotate_secret_ends_old_tokens_and_keeps_api_keys(db: Conn, dsn: str,
                                                          secinf_env: str) -> None:
    pid = make_project(db, "acme", "north")
    key = make_key(db, pid, "customer")
    old_secret = tenancy.jwt_secret(db)
    [before] = signing_keys(db)
    old_token = Api(dsn).rpc("exchange_key", api_key=key["api_key"])["token"]
    assert verify(old_token, old_secret)["project_id"] == pid

    refused = CliRunner().invoke(keys_app, ["rotate-secret"])
    assert isinstance(refused.exception, UserError)
    assert "repeat with --yes to confirm" in str(refused.exception)
    assert signing_keys(db) == [before]                       # nothing rotated

    result = CliRunner().invoke(keys_app, ["rotate-secret", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.stdout)
    assert rotated["deactivated"] == [before["kid"]] and rotated["kid"] != before["kid"]
    assert signing_keys(db) == [{"kid": before["kid"], "active": False},
                                {"kid": rotated["kid"], "active": True}]
    new_secret = tenancy.jwt_secret(db)
    assert new_secret != old_secret and len(new_secret) == 64

    with pytest.raises(jwt.InvalidSignatureError, match="Signature verification failed"):
        verify(old_token, new_secret)                         # PostgREST with the new secret
    new_token = Api(dsn).rpc("exchange_key", api_key=key["api_key"])["token"]  # key still good
    assert verify(new_token, new_secret)["project_id"] == pid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(new_token, old_secret)

    audit = db.execute("SELECT action, target, details FROM audit.log "
                       "WHERE action = 'signing_key.rotate'").fetchall()
    assert [dict(a) for a in audit] == [{"action": "signing_key.rotate", "target": rotated["kid"],
                                         "details": {"deactivated": [before["kid"]]}}]


def test_two_rotations_leave_one_active_key(db: Conn) -> None:
    first = tenancy.rotate_secret(db)
    second = tenancy.rotate_secret(db)
    assert second["deactivated"] == [first["kid"]]
    assert [k["kid"] for k in signing_keys(db) if k["active"]] == [second["kid"]]


@pytest.mark.parametrize("role", ["anon", "customer", "reviewer", "analyst", "project_admin"])
def test_no_api_role_may_rotate(db: Conn, dsn: str, role: str) -> None:
    pid = make_project(db, "acme", "north")
    db.commit()
    before = signing_keys(db)
    api = Api(dsn).as_(role, project_id=pid, sub="key:sik_0123456789ab")
    with pytest.raises(ApiError) as err:
        api.request("POST", "/rpc/rotate_signing_key",
                    sql.SQL("SELECT auth.rotate_signing_key()"))
    assert (err.value.sqlstate, err.value.message) == (
        "42501", "permission denied for function rotate_signing_key")
    assert signing_keys(db) == before
