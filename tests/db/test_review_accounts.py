"""Local accounts: created by an admin (CLI), signed in with api.login, refused when wrong
or disabled, with one message for every credential failure."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg import sql

from plpython.jwt_tokens import verify
from tests.support.factories import make_project
from tests.support.postgrest import Api, ApiError
from workers import tenancy
from workers.errors import NotFound, UserError
from workers.review import accounts

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
REFUSAL = "invalid user name or password, or the account is disabled"


def secinf(dsn: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The accounts commands through their typer app (registered by the coordinator)."""
    code = ("import sys, typer; from workers.cli.accounts_cmd import accounts_app;"
            "from workers.errors import SecinfError\n"
            "try:\n    accounts_app(sys.argv[1:], standalone_mode=False)\n"
            "except SecinfError as e:\n    print(e, file=sys.stderr); sys.exit(e.exit_code)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          input=stdin, env={"SECINF_DSN": dsn, "PATH": "/usr/bin:/bin",
                                            "HOME": "/tmp"}, timeout=120)


def test_login_gives_claims_like_an_api_key_and_only_a_hash_is_stored(db: Conn, dsn: str) -> None:
    pid = make_project(db, "acme", "north")
    accounts.create(db, "alice", "correct horse", "acme/north", "reviewer", "Alice")
    stored = db.execute("SELECT password_hash FROM core.accounts WHERE username = 'alice'"
                        ).fetchone()
    assert stored is not None and stored["password_hash"].startswith("$2a$10$")
    assert "correct horse" not in str(db.execute("SELECT array_agg(l::text) FROM audit.log l")
                                      .fetchone())

    answer = Api(dsn).rpc("login", username="alice", password="correct horse")
    claims = answer["claims"]
    assert claims["role"] == "reviewer" and claims["project_id"] == pid
    assert claims["sub"] == "alice" and claims["account"] is True
    org = db.execute("SELECT org_id::text FROM core.projects WHERE project_id = %s",
                     (pid,)).fetchone()
    assert org is not None and claims["org_id"] == org["org_id"]
    decoded = verify(answer["token"], tenancy.jwt_secret(db))
    assert decoded["sub"] == "alice" and decoded["project_id"] == pid
    # The token's claims work as a reviewer of that project, and only that project.
    me = Api(dsn, "reviewer", claims).rpc("me")
    assert me["subject"] == "alice" and me["project_ids"] == [pid]
    row = db.execute("SELECT last_login_at FROM core.accounts WHERE username = 'alice'"
                     ).fetchone()
    assert row is not None and row["last_login_at"] is not None
    logged = db.execute("SELECT actor, target FROM audit.log WHERE action = 'account.login'"
                        ).fetchall()
    assert logged == [{"actor": "alice", "target": "acme/north"}]


@pytest.mark.parametrize("case", ["wrong_password", "unknown_user", "disabled", "no_project",
                                  "empty_password"])
def test_bad_sign_ins_get_one_clear_refusal(db: Conn, dsn: str, case: str) -> None:
    make_project(db, "acme", "north")
    accounts.create(db, "bob", "s3cret-pass", "acme/north")
    accounts.create(db, "carol", "s3cret-pass")  # no membership
    user, password = {"wrong_password": ("bob", "s3cret-pasS"),
                      "unknown_user": ("nobody", "s3cret-pass"),
                      "disabled": ("bob", "s3cret-pass"),
                      "no_project": ("carol", "s3cret-pass"),
                      "empty_password": ("bob", "")}[case]
    if case == "disabled":
        accounts.set_disabled(db, "bob")
    with pytest.raises(ApiError) as err:
        Api(dsn).rpc("login", username=user, password=password)
    assert err.value.status == 401 and err.value.sqlstate == "PT401"
    assert err.value.message == REFUSAL


def test_tokens_die_when_the_account_is_disabled_and_live_again_when_enabled(
    db: Conn, dsn: str
) -> None:
    make_project(db, "acme", "north")
    accounts.create(db, "dave", "long enough", "acme/north")
    claims = Api(dsn).rpc("login", username="dave", password="long enough")["claims"]
    api = Api(dsn, "reviewer", claims)
    assert api.rpc("me")["subject"] == "dave"
    accounts.set_disabled(db, "dave")
    with pytest.raises(ApiError) as err:
        api.rpc("me")
    assert err.value.status == 401 and err.value.message == "account disabled"
    accounts.set_disabled(db, "dave", False)
    assert api.rpc("me")["subject"] == "dave"


def test_an_account_in_several_projects_names_one(db: Conn, dsn: str) -> None:
    a = make_project(db, "acme", "north")
    b = make_project(db, "acme", "south")
    accounts.create(db, "erin", "password1", "acme/north", "reviewer")
    accounts.grant(db, "erin", "acme/south", "project_admin")
    with pytest.raises(ApiError) as err:
        Api(dsn).rpc("login", username="erin", password="password1")
    assert err.value.status == 400
    assert err.value.message == "choose a project: this account belongs to several"
    assert err.value.hint == "Sign in naming one of: acme/north, acme/south"
    south = Api(dsn).rpc("login", username="erin", password="password1", project="acme/south")
    assert south["claims"]["project_id"] == b and south["claims"]["role"] == "project_admin"
    by_id = Api(dsn).rpc("login", username="erin", password="password1", project=a)
    assert by_id["claims"]["project_id"] == a and by_id["claims"]["role"] == "reviewer"
    # A project the account does not belong to: refused without naming other tenants' data.
    make_project(db, "globex", "west")
    with pytest.raises(ApiError) as err:
        Api(dsn).rpc("login", username="erin", password="password1", project="globex/west")
    assert err.value.message == 'this account has no single project "globex/west"'


def test_only_administrators_manage_accounts(db: Conn, dsn: str) -> None:
    pid = make_project(db, "acme", "north")
    admin = Api(dsn).as_("project_admin", project_id=pid, sub="boss")
    for stmt in ("SELECT core.create_account('x1', 'password1')",
                 "SELECT core.set_account_password('x1', 'password1')",
                 "SELECT core.disable_account('x1')"):
        with pytest.raises(ApiError) as err:
            admin.request("POST", "/", sql.SQL(stmt))
        assert err.value.status == 403 and "permission denied for function" in err.value.message
    with pytest.raises(ApiError) as err:
        admin.request("GET", "/", sql.SQL("SELECT password_hash FROM core.accounts"))
    assert "permission denied for table accounts" in err.value.message


@pytest.mark.parametrize("stmt, action", [
    ("SELECT core.create_account('x1', 'password1')", "create accounts"),
    ("SELECT core.set_account_password('x1', 'password1')", "change passwords"),
    ("SELECT core.disable_account('x1')", "disable accounts"),
    ("SELECT core.create_project('acme', 'south')", "create projects"),
])
def test_a_superuser_session_acting_for_claims_is_no_administrator(db: Conn, stmt: str,
                                                                   action: str) -> None:
    """Even where EXECUTE is held, the functions themselves refuse a non-administrator."""
    db.execute("SELECT set_config('request.jwt.claims', '{\"role\": \"project_admin\"}', true)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match=f"only an administrator can {action}"):
        db.execute(stmt)
    db.rollback()


def test_account_input_errors_name_the_fix(db: Conn) -> None:
    make_project(db, "acme", "north")
    with pytest.raises(UserError, match="a password needs 8 to 72 characters"):
        accounts.create(db, "frank", "short")
    with pytest.raises(UserError, match='user name "no spaces" is not valid'):
        accounts.create(db, "no spaces", "long enough")
    accounts.create(db, "frank", "long enough")
    with pytest.raises(UserError, match='account "frank" exists already'):
        accounts.create(db, "frank", "long enough")
    with pytest.raises(NotFound, match="no account 'ghost'"):
        accounts.set_password(db, "ghost", "long enough")
    with pytest.raises(UserError, match="is not an account role"):
        accounts.create(db, "gina", "long enough", "acme/north", "superuser")
    assert db.execute("SELECT count(*) AS n FROM core.accounts WHERE username = 'gina'"
                      ).fetchone() == {"n": 0}


def test_accounts_from_the_command_line(db: Conn, dsn: str) -> None:
    make_project(db, "acme", "north")
    made = secinf(dsn, "create", "henry", "-p", "acme/north", "--password-stdin", "--json",
                  stdin="first password\n")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["role"] == "reviewer"
    assert Api(dsn).rpc("login", username="henry", password="first password")["claims"]
    assert secinf(dsn, "passwd", "henry", "--password", "second password").returncode == 0
    with pytest.raises(ApiError):
        Api(dsn).rpc("login", username="henry", password="first password")
    assert Api(dsn).rpc("login", username="henry", password="second password")["claims"]
    listed = json.loads(secinf(dsn, "list", "--json").stdout)
    assert [(a["username"], a["projects"]) for a in listed] == [("henry", "acme/north:reviewer")]
    assert "password_hash" not in listed[0]
    assert secinf(dsn, "disable", "henry").returncode == 0
    with pytest.raises(ApiError) as err:
        Api(dsn).rpc("login", username="henry", password="second password")
    assert err.value.message == REFUSAL
    missing = secinf(dsn, "disable", "ghost")
    assert missing.returncode == 2 and "no account 'ghost'" in missing.stderr
    assert "Traceback" not in missing.stderr
