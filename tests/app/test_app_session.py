"""The app's database session: sign-in, PostgREST-style requests, refusals, isolation."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.support.factories import make_key, make_project
from workers import tenancy
from workers.appdb import AppDB, Identity, NotAllowed, SessionEnded
from workers.appdb import api as app_api
from workers.appdb.session import authenticator_conninfo
from workers.errors import AuthError
from workers.settings import load_settings

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def test_conninfo_is_authenticator_without_the_admin_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECINF_DSN", "host=db.example port=5432 dbname=secinf user=postgres "
                                     "password=admin-secret")
    info = psycopg.conninfo.conninfo_to_dict(authenticator_conninfo(load_settings()))
    assert info["user"] == "authenticator"
    assert "password" not in info
    monkeypatch.setenv("SECINF_AUTHENTICATOR_PASSWORD", "auth-secret")
    info = psycopg.conninfo.conninfo_to_dict(authenticator_conninfo(load_settings()))
    assert (info["user"], info["password"], info["host"]) == (
        "authenticator", "auth-secret", "db.example")


def test_requests_run_as_the_claims_role_on_an_authenticator_login(
        app_db: AppDB, reviewer: Identity, project: str) -> None:
    rows = app_db.request(reviewer.role, reviewer.claims,
                          psycopg.sql.SQL("SELECT session_user::text AS s, current_user::text AS c,"
                                          " auth.subject() AS sub, auth.project_ids() AS p"))
    assert len(rows) == 1
    assert (rows[0]["s"], rows[0]["c"], rows[0]["sub"]) == (
        "authenticator", "reviewer", reviewer.subject)
    assert [str(p) for p in rows[0]["p"]] == [project]
    assert reviewer.role == "reviewer" and reviewer.subject.startswith("key:sik_")
    assert [p["slug"] for p in app_api.projects(app_db, reviewer)] == ["north"]


def test_requests_carry_the_roles_own_caps_like_postgrest(
        app_db: AppDB, reviewer: Identity) -> None:
    # Migration 0010 caps reviewer requests at 15 s; the app applies the role's settings
    # the way PostgREST does (a plain SET ROLE would never pick them up).
    timeout = psycopg.sql.SQL("SELECT current_setting('statement_timeout') AS t")
    for _ in range(2):  # read once, then from the per-role cache
        assert app_db.request(reviewer.role, reviewer.claims, timeout) == [{"t": "15s"}]
    assert app_db.request("anon", {"role": "anon"}, timeout) == [{"t": "5s"}]


def test_wrong_key_is_refused_with_a_clear_message(app_db: AppDB, reviewer_key: str) -> None:
    with pytest.raises(AuthError, match="invalid, revoked or expired API key"):
        app_db.sign_in_key(reviewer_key[:-4] + "AAAA")
    with pytest.raises(AuthError, match="enter an API key"):
        app_db.sign_in_key("   ")


def test_revoked_key_ends_the_session_on_the_next_request(
        app_db: AppDB, reviewer: Identity, reviewer_key: str, db: Conn) -> None:
    assert app_api.me(app_db, reviewer)["role"] == "reviewer"
    tenancy.revoke_key(db, reviewer_key[:16])
    with pytest.raises(SessionEnded, match="API key revoked or expired"):
        app_api.me(app_db, reviewer)
    with pytest.raises(AuthError, match="invalid, revoked or expired API key"):
        app_db.sign_in_key(reviewer_key)


def test_expired_claims_end_the_session_before_any_query(
        app_db: AppDB, reviewer: Identity) -> None:
    stale = Identity(claims={**reviewer.claims, "exp": 1}, method="key")
    with pytest.raises(SessionEnded, match="expired"):
        app_api.me(app_db, stale)


def test_roles_outside_the_app_are_refused(app_db: AppDB, reviewer: Identity) -> None:
    for role in ("postgres", "secinf_owner", "pipeline"):
        forged = Identity(claims={**reviewer.claims, "role": role}, method="key")
        with pytest.raises(NotAllowed, match="cannot use the app"):
            app_api.me(app_db, forged)


def test_another_projects_reviewer_sees_only_their_project(
        app_db: AppDB, reviewer: Identity, db: Conn) -> None:
    other = make_project(db, "globex", "south")
    them = app_db.sign_in_key(str(make_key(db, other, "reviewer")["api_key"]))
    assert [p["slug"] for p in app_api.projects(app_db, them)] == ["south"]
    assert [p["slug"] for p in app_api.projects(app_db, reviewer)] == ["north"]
