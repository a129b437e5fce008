"""The review app's database session: every query runs the way PostgREST runs a request.

The app logs in as `authenticator` (never a superuser). Per call: one transaction,
`SET LOCAL ROLE <claims.role>`, `set_config('request.jwt.claims', claims, true)`,
`SELECT api.pre_request()`, then the query against `api`; RLS decides what the caller sees.
Sign-in goes through `api.exchange_key` (API key) or `api.login` (local account), as `anon`.
With SECINF_READ_DSN, the reads (READ_QUERIES, and the pages' read calls) go to the replica
in READ ONLY transactions (as PostgREST runs GETs); sign-in and decisions to the primary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from workers.db import errors as db_errors
from workers.db.connect import READ_ONLY_STATE, read_only_refusal
from workers.db.errors import DbFailure, Make
from workers.db.queries import query
from workers.errors import AuthError, DatabaseUnavailable, NotFound, SecinfError, UserError
from workers.settings import Settings, load_settings

Row = dict[str, Any]
# The roles a signed-in person may act as (claims naming any other role are refused).
APP_ROLES = frozenset({"customer", "reviewer", "analyst", "project_admin"})
# The queries of workers/queries/app.sql that only read: `AppDB.call` sends them to the read
# replica when there is one. Any other (decisions, second opinions, sign-in) goes to the
# primary, so a new query is a write until it is listed here.
READ_QUERIES = frozenset({
    "me", "projects", "review_queue", "review_counts", "review_reasons", "candidate_detail",
    "second_opinions_for_me", "reviewer_stats", "agreement_by_type", "project_metrics",
    "project_models", "model_activations", "example_counts", "example_invalid_reasons",
    "blind_candidates",
})


class SessionEnded(AuthError):
    """Your session has ended (key revoked or expired): sign in again."""


class DecisionConflict(UserError):
    """Someone else decided this candidate first."""


class NotAllowed(UserError):
    """Your role may not do this in this project."""


class ApiCallError(UserError):
    """The database refused the request."""


@dataclass(frozen=True)
class Identity:
    """Who is signed in: the claims exactly as api.exchange_key / api.login issued them."""

    claims: dict[str, Any]
    method: Literal["key", "account"]
    expires_at: datetime | None = None
    token: str | None = field(default=None, repr=False)
    owner: str | None = None
    """The person an API key belongs to (the grant's `person`); None for a machine key."""

    @property
    def role(self) -> str:
        return str(self.claims.get("role", "anon"))

    @property
    def subject(self) -> str:
        return str(self.claims.get("sub", ""))

    @property
    def person(self) -> str:
        """Who the review records: a key's owner, else the subject (review.person())."""
        return self.owner or self.subject

    @property
    def project_id(self) -> str | None:
        value = self.claims.get("project_id")
        return str(value) if value is not None else None

    def expired(self, now: datetime | None = None) -> bool:
        """True once the token's `exp` (or expires_at) has passed."""
        now = now or datetime.now(UTC)
        exp = self.claims.get("exp")
        if isinstance(exp, int | float) and now.timestamp() >= float(exp):
            return True
        return self.expires_at is not None and now >= self.expires_at

    @classmethod
    def from_grant(cls, grant: Mapping[str, Any], method: Literal["key", "account"]) -> Identity:
        """Build from the {token, claims, expires_at} document of a sign-in function."""
        claims = grant.get("claims")
        if not isinstance(claims, dict) or claims.get("role") not in APP_ROLES:
            raise AuthError("the sign-in answer carries no usable role: ask a project admin")
        expires = grant.get("expires_at")
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires)
        person = grant.get("person")
        return cls(claims=dict(claims), method=method,
                   expires_at=expires if isinstance(expires, datetime) else None,
                   token=str(grant["token"]) if grant.get("token") else None,
                   owner=str(person) if person else None)


def authenticator_conninfo(settings: Settings | None = None,
                           admin_conninfo: str | None = None) -> str:
    """The `authenticator` login: the admin conninfo (settings', or a shard's) with the user
    swapped and its password dropped; SECINF_AUTHENTICATOR_PASSWORD supplies one for a
    server of your own."""
    settings = settings or load_settings()
    params = conninfo_to_dict(admin_conninfo or settings.conninfo())
    params["user"] = "authenticator"
    params.pop("password", None)
    if settings.authenticator_password:
        params["password"] = settings.authenticator_password
    params.setdefault("application_name", "secinf-app")
    return make_conninfo(**params)  # type: ignore[arg-type]


def read_authenticator_conninfo(settings: Settings | None = None) -> str | None:
    """The `authenticator` login on the read replica (SECINF_READ_DSN); None without one."""
    settings = settings or load_settings()
    if settings.read_dsn is None:
        return None
    params = conninfo_to_dict(settings.read_conninfo(user="authenticator"))
    params.pop("password", None)
    if settings.authenticator_password:
        params["password"] = settings.authenticator_password
    params.setdefault("application_name", "secinf-app")
    return make_conninfo(**params)  # type: ignore[arg-type]


def _too_many(f: DbFailure) -> ApiCallError:
    return ApiCallError(f"too many requests: {f.text}"
                        + (f"; try again in {f.retry_after} s" if f.retry_after else ""))


# The app's subclasses on top of the one table; P0002 is named again because the app's
# "P0" (every PL/pgSQL refusal is a refused call) would otherwise take it.
_APP: dict[str, Make | None] = {
    "PT429": _too_many,
    "PT409": DecisionConflict,
    "42501": NotAllowed,
    "P0002": NotFound,
    "57014": lambda f: ApiCallError(f"the request took too long and was cancelled: {f.text}"),
    "22": ApiCallError, "23": ApiCallError, "P0": ApiCallError, "PT": ApiCallError,
}
_SIGNING_IN: dict[str, Make | None] = {
    **_APP, **dict.fromkeys(("PT401", "28P01", "28000"), AuthError)}
_SIGNED_IN: dict[str, Make | None] = {
    **_APP, **dict.fromkeys(("PT401", "28P01", "28000"),
                            lambda f: SessionEnded(f"signed out: {f.text}"))}


def translate(exc: psycopg.Error, *, signing_in: bool = False) -> BaseException:
    """A database error as the exception the app shows (message and hint, no traceback):
    the one table (workers/db/errors.py) with the app's own subclasses on top; what it does
    not name is shown as a failure of ours, a lost connection as DatabaseUnavailable."""
    def fallback(f: DbFailure) -> SecinfError:
        if isinstance(exc, psycopg.OperationalError) and f.sqlstate is None:
            return DatabaseUnavailable(f"cannot reach the database: {f.text}")
        return SecinfError(f.text)
    return db_errors.translate(exc, _SIGNING_IN if signing_in else _SIGNED_IN,
                               fallback=fallback)


def _open_pool(conninfo: str, name: str, min_size: int, max_size: int, timeout: float
               ) -> ConnectionPool[psycopg.Connection[DictRow]]:
    return ConnectionPool(
        conninfo, connection_class=psycopg.Connection[DictRow],
        kwargs={"row_factory": dict_row}, min_size=min_size, max_size=max_size,
        timeout=timeout, name=name, open=True, check=ConnectionPool.check_connection,
    )


class AppDB:
    """A pool of `authenticator` connections (and one on the read replica, when given);
    each call is one PostgREST-style request."""

    def __init__(self, conninfo: str, *, read_conninfo: str | None = None,
                 min_size: int = 1, max_size: int = 4, timeout: float = 10.0) -> None:
        self.conninfo = conninfo
        self.read_conninfo = read_conninfo if read_conninfo != conninfo else None
        self._pool = _open_pool(conninfo, "secinf-app", min_size, max_size, timeout)
        self._read_pool = (None if self.read_conninfo is None else
                           _open_pool(self.read_conninfo, "secinf-app-read", min_size,
                                      max_size, timeout))
        # Each role's own settings (statement_timeout caps, migration 0010), read once per
        # role as PostgREST reads them at start-up, then applied to every request.
        self._role_settings: dict[str, list[tuple[str, str]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AppDB:
        return cls(authenticator_conninfo(settings),
                   read_conninfo=read_authenticator_conninfo(settings))

    def close(self) -> None:
        self._pool.close()
        if self._read_pool is not None:
            self._read_pool.close()

    # ------------------------------------------------------------------ requests
    def request(self, role: str, claims: Mapping[str, Any], stmt: sql.SQL | sql.Composed,
                params: Mapping[str, Any] | None = None, *, method: str = "POST",
                path: str = "/rpc", signing_in: bool = False,
                read_only: bool = False) -> list[Row]:
        """Run one statement as `role` with `claims`, PostgREST's way, in one transaction:
        READ ONLY and on the read replica (if any) with `read_only`."""
        if role != "anon" and role not in APP_ROLES:
            raise NotAllowed(f"role {role!r} cannot use the app")
        pool = (self._read_pool or self._pool) if read_only else self._pool
        try:
            with pool.connection() as conn, conn.transaction():
                if read_only:
                    conn.execute("SET TRANSACTION READ ONLY")
                if role not in self._role_settings:
                    self._role_settings[role] = [
                        (r["key"], r["value"])
                        for r in conn.execute(query("app", "role_settings"), {"role": role})]
                for key, value in self._role_settings[role]:
                    conn.execute("SELECT set_config(%s, %s, true)", (key, value))
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                conn.execute(query("app", "set_request"),
                             {"claims": json.dumps(dict(claims), default=str),
                              "method": method, "path": path})
                conn.execute(query("app", "pre_request"))
                cur = conn.execute(stmt, dict(params or {}))
                return list(cur.fetchall()) if cur.description else []
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"cannot reach the database as `authenticator`: {exc}. Start it with "
                "`secinf db up`, or set SECINF_AUTHENTICATOR_PASSWORD for a server of your own."
            ) from exc
        except psycopg.Error as exc:
            if exc.sqlstate == READ_ONLY_STATE:
                raise read_only_refusal(
                    self.read_conninfo or self.conninfo, self.conninfo,
                    replica=read_only and self.read_conninfo is not None,
                    detail=exc.diag.message_primary or "") from exc
            raise translate(exc, signing_in=signing_in) from exc

    def call(self, ident: Identity, name: str, params: Mapping[str, Any] | None = None,
             *, path: str | None = None) -> list[Row]:
        """Run the named query `name` of workers/queries/app.sql as the signed-in caller."""
        if ident.expired():
            raise SessionEnded("signed out: your session expired, sign in again")
        return self.request(ident.role, ident.claims, query("app", name), params,
                            path=path or f"/rpc/{name}", read_only=name in READ_QUERIES)

    def one(self, ident: Identity, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """The single value of a one-row, one-column answer (an RPC returning jsonb)."""
        rows = self.call(ident, name, params)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise SecinfError(f"{name}: expected one value, got {len(rows)} row(s)")
        return next(iter(rows[0].values()))

    # ------------------------------------------------------------------ sign-in
    def _grant(self, name: str, params: Mapping[str, Any]) -> Row:
        rows = self.request("anon", {"role": "anon"}, query("app", name), params,
                            path=f"/rpc/{name}", signing_in=True)
        grant = rows[0]["answer"] if rows else None
        if not isinstance(grant, dict):
            raise AuthError("sign-in returned nothing: ask a project admin")
        return grant

    def sign_in_key(self, api_key: str) -> Identity:
        """Exchange an API key (sik_…) for claims; AuthError on a wrong/revoked/expired key."""
        key = api_key.strip()
        if not key:
            raise AuthError("enter an API key (sik_…)")
        return Identity.from_grant(self._grant("exchange_key", {"api_key": key}), "key")

    def sign_in_account(self, username: str, password: str,
                        project: str | None = None) -> Identity:
        """Sign in with a local account; AuthError on a wrong password or a disabled account."""
        if not username.strip() or not password:
            raise AuthError("enter your user name and password")
        grant = self._grant("login", {"username": username.strip(), "password": password,
                                      "project": (project or "").strip() or None})
        return Identity.from_grant(grant, "account")
