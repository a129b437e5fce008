"""The database calls of the Stripe routes, on short-lived connections (webhook deliveries
and checkouts are rare next to file requests).

Two logins: `pipeline` applies webhook events and verifies bearer tokens (the signing
secret never leaves the database); a checkout runs as its caller the way PostgREST runs a
request — logged in as `authenticator`, `SET LOCAL ROLE`, the verified claims, then
`api.pre_request()` — so the database's own checks (revoked keys, changed memberships,
auth.require) decide, not a copy of them here."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workers.billing.refusals import (
    BadEvent,
    BadPlan,
    BillingRefused,
    DatabaseDown,
    Forbidden,
    Unauthenticated,
)
from workers.db.errors import Make, wrap_db_errors
from workers.db.queries import query
from workers.queue.worker import with_role

CALLER_ROLES = frozenset({"customer", "reviewer", "analyst", "project_admin"})
"""Roles a token may name (the API's; never pipeline or the owner)."""
CALLER_HINT = ("Checkout sessions log in as `authenticator`, like PostgREST: set "
               "SECINF_AUTHENTICATOR_PASSWORD on the file service (docker/.env's "
               "AUTHENTICATOR_PASSWORD).")


def _refusal(cls: type[BillingRefused]) -> Make:
    """A refusal of the route, with the server's hint in its own field of the body."""
    return lambda f: cls(f.message, f.hint)


# On top of the one table (workers/db/errors.py), as HTTP refusals; every other database
# error is our own failure (the route answers 5xx, and Stripe retries a webhook).
CALLER_REFUSALS: dict[str, Make | None] = {
    "PT401": _refusal(Unauthenticated), "42501": _refusal(Forbidden),
    "22023": _refusal(BadPlan), "": None}
EVENT_REFUSALS: dict[str, Make | None] = {
    "22023": lambda f: BadEvent(f.message), "": None}


class BillingDB:
    """Connections of the Stripe routes: `pipeline`, and `authenticator` for callers."""

    def __init__(self, conninfo: str, *, authenticator_password: str | None = None,
                 connect_timeout: int = 5) -> None:
        self._pipeline = with_role(conninfo, "pipeline")
        params = {k: v for k, v in conninfo_to_dict(conninfo).items() if v is not None}
        params["user"] = "authenticator"
        params.pop("password", None)
        if authenticator_password:
            params["password"] = authenticator_password
        self._caller = make_conninfo(**params)  # type: ignore[arg-type]
        self._timeout = connect_timeout

    def _connect(self, conninfo: str, autocommit: bool,
                 hint: str | None = None) -> psycopg.Connection[dict[str, Any]]:
        try:
            return psycopg.connect(conninfo, row_factory=dict_row, autocommit=autocommit,
                                   connect_timeout=self._timeout)
        except psycopg.OperationalError as exc:
            raise DatabaseDown("the service cannot reach the database: "
                               f"{str(exc).strip()[:200]}", hint) from exc

    # ------------------------------------------------------------------ webhook
    def apply_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """billing.apply_stripe_event: {event_id, type, result, detail, replayed}. Our own
        failures raise (the route answers 5xx, and Stripe retries)."""
        with self._connect(self._pipeline, True) as conn:
            try:
                with wrap_db_errors(EVENT_REFUSALS):
                    row = conn.execute(query("billing_stripe", "apply_stripe_event"),
                                       {"event": Jsonb(event)}).fetchone()
            except psycopg.OperationalError as exc:
                raise DatabaseDown(f"the database failed: {str(exc).strip()[:200]}") from exc
        assert row is not None
        outcome: dict[str, Any] = row["outcome"]
        return outcome

    # ------------------------------------------------------------------ callers
    def verify_token(self, token: str) -> dict[str, Any]:
        """The claims of an API token signed with the database's active secret."""
        with self._connect(self._pipeline, True) as conn:
            try:
                with wrap_db_errors(CALLER_REFUSALS):
                    row = conn.execute(query("billing_stripe", "verify_token"),
                                       {"token": token}).fetchone()
            except psycopg.OperationalError as exc:
                raise DatabaseDown(f"the database failed: {str(exc).strip()[:200]}") from exc
        assert row is not None
        claims: dict[str, Any] = row["claims"]
        return claims

    def as_caller(self, claims: dict[str, Any], name: str,
                  params: dict[str, Any]) -> dict[str, Any]:
        """Run query `name` of billing_stripe.sql as the caller of these (verified) claims,
        in one transaction, the way PostgREST runs a request; its one row."""
        role = claims.get("role")
        if role not in CALLER_ROLES:
            raise Forbidden(f"a token of role {role!r} cannot do this")
        with self._connect(self._caller, False, CALLER_HINT) as conn:
            try:
                with wrap_db_errors(CALLER_REFUSALS), conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                    conn.execute(query("billing_stripe", "as_caller"),
                                 {"claims": json.dumps(claims)})
                    row = conn.execute(query("billing_stripe", name), params).fetchone()
            except psycopg.OperationalError as exc:
                raise DatabaseDown(f"the database failed: {str(exc).strip()[:200]}") from exc
        assert row is not None
        return dict(row)
