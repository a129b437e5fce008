"""The one table of SQLSTATE → exception and the boundary that uses it (no database: psycopg
errors built here, with the fields a server would have sent)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from workers import tenancy
from workers.appdb import session
from workers.billing import db as billing_db
from workers.billing.refusals import BadEvent, BadPlan, Forbidden, Unauthenticated
from workers.db.errors import SQLSTATES, DbFailure, translate, wrap_db_errors
from workers.errors import AuthError, DatabaseUnavailable, NotFound, SecinfError, UserError
from workers.queue import client
from workers.records import REFUSALS, Held
from workers.rules import store


def server_error(sqlstate: str | None, message: str | None, hint: str | None = None,
                 detail: str | None = None,
                 base: type[psycopg.Error] = psycopg.DatabaseError) -> psycopg.Error:
    """An error as the server sends it: its SQLSTATE, message, hint and detail in `diag`."""
    fields = SimpleNamespace(sqlstate=sqlstate, message_primary=message, message_hint=hint,
                             message_detail=detail)

    class ServerError(base):  # type: ignore[misc, valid-type]
        @property
        def diag(self) -> Any:
            return fields

    return ServerError(message or "")


UNKNOWN = ["40P01", "40001", "XX000", "57P01", "53300", "08006", "42P01", "P0004"]


# ---------------------------------------------------------------- the table
@pytest.mark.parametrize(("state", "cls"), [
    ("P0002", NotFound), ("P0001", UserError), ("P0003", UserError), ("42501", UserError),
    ("55000", UserError), ("22023", UserError), ("22P02", UserError), ("23505", UserError),
    ("23514", UserError), ("PT402", UserError), ("PT423", UserError), ("PT401", AuthError),
    ("28P01", AuthError)])
def test_refusals_our_sql_raises_are_the_users_with_message_and_hint(
        state: str, cls: type[SecinfError]) -> None:
    err = translate(server_error(state, "unknown project \"x\"", "Name it as org/project."))
    assert type(err) is cls and err.exit_code == 2  # type: ignore[attr-defined]
    assert str(err) == 'unknown project "x" (Name it as org/project.)'


@pytest.mark.parametrize("state", UNKNOWN)
def test_any_other_state_is_not_translated(state: str) -> None:
    exc = server_error(state, "deadlock detected")
    assert translate(exc) is exc
    with pytest.raises(psycopg.Error) as raised, wrap_db_errors():
        raise exc
    assert raised.value is exc


def test_a_real_deadlock_and_a_lost_connection_propagate() -> None:
    for exc in (psycopg.errors.DeadlockDetected("deadlock detected"),
                psycopg.errors.SerializationFailure("could not serialize access"),
                psycopg.OperationalError("server closed the connection unexpectedly")):
        with pytest.raises(type(exc)) as raised, wrap_db_errors():
            raise exc
        assert raised.value is exc and not isinstance(raised.value, SecinfError)


def test_the_table_holds_only_user_errors() -> None:
    assert all(issubclass(cls, UserError) for cls in SQLSTATES.values())
    assert not any(state.startswith(("40", "XX", "08", "53", "57")) for state in SQLSTATES)


def test_without_a_server_message_the_first_line_of_the_error() -> None:
    exc = server_error("23505", None)
    exc.args = ("duplicate key value\nDETAIL:  Key (slug)=(x) already exists.",)
    assert DbFailure.of(exc).message == "duplicate key value"
    assert DbFailure.of(server_error("23505", None)).message == "ServerError"


# ---------------------------------------------------------------- the boundary
def test_the_boundary_raises_from_the_database_error_and_rolls_back() -> None:
    rolled: list[bool] = []
    conn: Any = SimpleNamespace(closed=False, rollback=lambda: rolled.append(True))
    exc = server_error("P0002", "job 7 does not exist")
    with pytest.raises(NotFound, match=r"^job 7 does not exist$") as raised, \
            wrap_db_errors(rollback=conn):
        raise exc
    assert raised.value.__cause__ is exc and rolled == [True]


def test_context_goes_before_the_message() -> None:
    err = translate(server_error("PT402", "quota exceeded", "Raise it with `secinf quotas set`."),
                    context="ingest of t.csv failed and nothing was stored: ")
    assert str(err) == ("ingest of t.csv failed and nothing was stored: quota exceeded "
                        "(Raise it with `secinf quotas set`.)")


def test_overrides_layer_on_the_table_by_the_longest_prefix() -> None:
    class Conflict(UserError):
        pass

    overrides = {"23": Conflict, "23514": lambda f: NotFound(f"checked: {f.message}")}
    assert type(translate(server_error("23505", "dup"), overrides)) is Conflict
    assert str(translate(server_error("23514", "no", "h"), overrides)) == "checked: no"
    assert type(translate(server_error("22023", "bad"), overrides)) is UserError
    exc = server_error("22023", "bad")
    assert translate(exc, {"22": None}) is exc  # None: not translated here


def test_an_empty_prefix_keeps_only_the_overrides() -> None:
    only = {"22023": UserError, "": None}
    exc = server_error("P0002", "gone")
    assert translate(exc, only) is exc
    assert type(translate(server_error("22023", "bad"), only)) is UserError


def test_a_fallback_takes_what_the_table_does_not_name() -> None:
    err = translate(server_error("40P01", "deadlock detected"),
                    fallback=lambda f: SecinfError(f"failed: {f.text}"))
    assert type(err) is SecinfError and str(err) == "failed: deadlock detected"
    assert err.exit_code == 1


def test_a_pgrst_error_is_read_from_its_json() -> None:
    exc = server_error("PGRST", json.dumps({"code": "PT429", "message": "rate limit",
                                            "hint": "slow down"}),
                       detail=json.dumps({"status": 429, "headers": {"Retry-After": "3"}}))
    failure = DbFailure.of(exc)
    assert (failure.sqlstate, failure.text, failure.retry_after) == (
        "PT429", "rate limit (slow down)", "3")
    assert DbFailure.of(server_error("PGRST", "not json")).sqlstate == "PGRST"


# ---------------------------------------------------------------- subsystems on top
def test_the_app_session_layers_its_subclasses() -> None:
    pgrst = server_error("PGRST", json.dumps({"code": "PT429", "message": "slow"}),
                         detail=json.dumps({"headers": {"Retry-After": "5"}}))
    err = session.translate(pgrst)
    assert type(err) is session.ApiCallError
    assert str(err) == "too many requests: slow; try again in 5 s"
    assert type(session.translate(server_error("PT409", "taken"))) is session.DecisionConflict
    assert type(session.translate(server_error("42501", "no"))) is session.NotAllowed
    assert type(session.translate(server_error("22023", "bad"))) is session.ApiCallError
    assert str(session.translate(server_error("57014", "canceling statement"))) == (
        "the request took too long and was cancelled: canceling statement")
    revoked = server_error("PT401", "key revoked")
    assert type(session.translate(revoked)) is session.SessionEnded
    assert str(session.translate(revoked)) == "signed out: key revoked"
    assert type(session.translate(revoked, signing_in=True)) is AuthError
    deadlock = session.translate(server_error("40P01", "deadlock detected"))
    assert type(deadlock) is SecinfError and str(deadlock) == "deadlock detected"
    down = session.translate(psycopg.OperationalError("connection refused"))
    assert type(down) is DatabaseUnavailable


def test_billing_refusals_carry_the_hint_apart_and_the_rest_propagates() -> None:
    err = translate(server_error("42501", "no single project", "Use a project key."),
                    billing_db.CALLER_REFUSALS)
    assert type(err) is Forbidden and (str(err), err.hint) == (
        "no single project", "Use a project key.")
    assert type(translate(server_error("PT401", "not a JWT"),
                          billing_db.CALLER_REFUSALS)) is Unauthenticated
    assert type(translate(server_error("22023", "unknown plan"),
                          billing_db.CALLER_REFUSALS)) is BadPlan
    assert type(translate(server_error("22023", "no type"),
                          billing_db.EVENT_REFUSALS)) is BadEvent
    for overrides in (billing_db.CALLER_REFUSALS, billing_db.EVENT_REFUSALS):
        exc = server_error("23505", "duplicate key")  # ours: the route answers 5xx
        assert translate(exc, overrides) is exc


def test_records_name_a_legal_hold() -> None:
    assert type(translate(server_error("PT423", "held"), REFUSALS)) is Held
    assert type(translate(server_error("PT410", "expired"), REFUSALS)) is UserError


class FailingConn:
    """A connection whose every statement fails with `exc`."""

    closed = False

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.rolled_back = 0

    def execute(self, *_: Any) -> Any:
        raise self.exc

    def rollback(self) -> None:
        self.rolled_back += 1


def test_a_stale_attempt_keeps_its_message_without_the_hint() -> None:
    conn: Any = FailingConn(server_error(
        "JB001", "stale attempt: job 7 attempt 1 no longer holds the lease",
        "Abandon this attempt: the attempt that holds the lease does the work."))
    with pytest.raises(client.StaleAttempt) as stale:
        client.heartbeat(conn, 7, 1)
    assert str(stale.value) == "stale attempt: job 7 attempt 1 no longer holds the lease"
    assert (stale.value.job_id, stale.value.attempt) == (7, 1)


# ---------------------------------------------------------------- the bugs of issue 21
def test_resolve_project_on_a_lost_connection_is_no_not_found() -> None:
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    conn: Any = FailingConn(lost)
    with pytest.raises(psycopg.OperationalError) as raised:
        tenancy.resolve_project(conn, "acme/plaza")
    assert raised.value is lost and conn.rolled_back == 1
    conn = FailingConn(server_error("P0002", 'unknown project "x"', "Name it as org/project."))
    with pytest.raises(NotFound, match=r'^unknown project "x" \(Name it as org/project.\)$'):
        tenancy.resolve_project(conn, "x")


def test_resolve_project_exists_once() -> None:
    assert not hasattr(store, "resolve_project")
