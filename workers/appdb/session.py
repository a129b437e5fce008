"""The review app's database session: every query runs the way PostgREST runs a request.

The app logs in as `authenticator` (never a superuser). Per call: one transaction,
`SET LOCAL ROLE <claims.role>`, `set_config('request.jwt.claims', claims, true)`,
`SELECT api.pre_request()`, then the query against `api`; RLS decides what the caller sees.
Sign-in goes through `api.exchange_key` (API key) or `api.login` (local account), as `anon`.
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

from workers.db.queries import query
from workers.errors import AuthError, DatabaseUnavailable, NotFound, SecinfError, UserError
from workers.settings import Settings, load_settings

Row = dict[str, Any]
# The roles a signed-in person may act as (claims naming any other role are refused).
APP_ROLES = frozenset({"customer", "reviewer", "analyst", "project_admin"})


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


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{text} ({diag.message_hint})" if diag.message_hint else text


def _pgrst(exc: psycopg.Error) -> tuple[str | None, str, str | None]:
    """A SQLSTATE PGRST error (PostgREST's error with a status and headers, e.g. the rate
    limit's 429) as (code, message with hint, Retry-After); anything else unchanged."""
    diag = exc.diag
    try:
        body = json.loads(diag.message_primary or "")
        meta = json.loads(diag.message_detail or "{}")
    except ValueError:
        return diag.sqlstate, _message(exc), None
    if not isinstance(body, dict) or not isinstance(meta, dict):
        return diag.sqlstate, _message(exc), None
    text = str(body.get("message", ""))
    hint = body.get("hint")
    retry = (meta.get("headers") or {}).get("Retry-After")
    return (str(body.get("code") or "PGRST"), f"{text} ({hint})" if hint else text,
            None if retry is None else str(retry))


def translate(exc: psycopg.Error, *, signing_in: bool = False) -> SecinfError:
    """A database error as the exception the app shows (message and hint, no traceback)."""
    state = exc.diag.sqlstate
    msg = _message(exc)
    if state == "PGRST":
        state, msg, retry = _pgrst(exc)
        if state == "PT429":
            return ApiCallError(f"too many requests: {msg}"
                                + (f"; try again in {retry} s" if retry else ""))
    if isinstance(exc, psycopg.OperationalError) and state is None:
        return DatabaseUnavailable(f"cannot reach the database: {msg}")
    if state in ("PT401", "28P01", "28000"):
        return AuthError(msg) if signing_in else SessionEnded(f"signed out: {msg}")
    if state == "PT409":
        return DecisionConflict(msg)
    if state == "42501":
        return NotAllowed(msg)
    if state == "P0002":
        return NotFound(msg)
    if state == "57014":
        return ApiCallError(f"the request took too long and was cancelled: {msg}")
    if state is not None and (state[:2] in ("22", "23", "P0") or state.startswith("PT")):
        return ApiCallError(msg)
    return SecinfError(msg)


class AppDB:
    """A pool of `authenticator` connections; each call is one PostgREST-style request."""

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 4,
                 timeout: float = 10.0) -> None:
        self.conninfo = conninfo
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            conninfo, connection_class=psycopg.Connection[DictRow],
            kwargs={"row_factory": dict_row}, min_size=min_size, max_size=max_size,
            timeout=timeout, name="secinf-app", open=True,
            check=ConnectionPool.check_connection,
        )
        # Each role's own settings (statement_timeout caps, migration 0010), read once per
        # role as PostgREST reads them at start-up, then applied to every request.
        self._role_settings: dict[str, list[tuple[str, str]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AppDB:
        return cls(authenticator_conninfo(settings))

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------------ requests
    def request(self, role: str, claims: Mapping[str, Any], stmt: sql.SQL | sql.Composed,
                params: Mapping[str, Any] | None = None, *, method: str = "POST",
                path: str = "/rpc", signing_in: bool = False) -> list[Row]:
        """Run one statement as `role` with `claims`, PostgREST's way, in one transaction."""
        if role != "anon" and role not in APP_ROLES:
            raise NotAllowed(f"role {role!r} cannot use the app")
        try:
            with self._pool.connection() as conn, conn.transaction():
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
            raise translate(exc, signing_in=signing_in) from exc

    def call(self, ident: Identity, name: str, params: Mapping[str, Any] | None = None,
             *, path: str | None = None) -> list[Row]:
        """Run the named query `name` of workers/queries/app.sql as the signed-in caller."""
        if ident.expired():
            raise SessionEnded("signed out: your session expired, sign in again")
        return self.request(ident.role, ident.claims, query("app", name), params,
                            path=path or f"/rpc/{name}")

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
