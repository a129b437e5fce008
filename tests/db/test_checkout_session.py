"""POST /billing/checkout-session (issue 18) over real HTTP: the file service on a loopback
port, the caller's API token from api.exchange_key, and the stripe client pointed at a
local recorder (tests/support/stripe_recorder.py: Stripe's servers are unreachable here),
which records the request Stripe would get and answers a canned Checkout Session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest

from tests.support.factories import make_key, make_project
from tests.support.file_service import Clock, Reply, Service, serving
from tests.support.postgrest import Api
from tests.support.stripe_recorder import StripeRecorder, closed_port, recorder
from workers.billing.config import StripeConfig
from workers.billing.db import BillingDB
from workers.billing.routes import BillingService
from workers.files.app import create_app
from workers.files.service_db import ServiceDB
from workers.storage import LocalStorage

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
SUCCESS = "https://app.example.test/billing/done?session={CHECKOUT_SESSION_ID}"


@pytest.fixture
def stripe_rec() -> Iterator[StripeRecorder]:
    with recorder() as rec:
        yield rec


def start(dsn: str, tmp_path: Path, api_base: str, **config: Any) -> Any:
    cfg = StripeConfig(**{"secret_key": "sk_test_123", "api_base": api_base,
                          "success_url": SUCCESS, **config})
    app = create_app(LocalStorage(tmp_path / "objects"), ServiceDB(dsn, max_size=2),
                     clock=Clock(), billing=BillingService(cfg, BillingDB(dsn)))
    return serving(app)


@pytest.fixture
def service(dsn: str, tmp_path: Path, stripe_rec: StripeRecorder) -> Iterator[Service]:
    with start(dsn, tmp_path, stripe_rec.base_url) as svc:
        yield svc


@pytest.fixture
def project(db: Conn) -> dict[str, Any]:
    pid = make_project(db, "acme", "north")
    row = db.execute("SELECT org_id::text FROM core.projects WHERE project_id = %s",
                     (pid,)).fetchone()
    assert row is not None
    db.execute("UPDATE core.plans SET stripe_price_id = 'price_team' WHERE plan_id = 'team'")
    db.commit()
    return {"project_id": pid, "org_id": row["org_id"]}


def token(dsn: str, db: Conn, project_id: str, role: str = "project_admin") -> str:
    key = make_key(db, project_id, role)
    return str(Api(dsn).rpc("exchange_key", api_key=key["api_key"])["token"])


def checkout(svc: Service, bearer: str | None, body: bytes = b'{"plan": "team"}') -> Reply:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return svc.request("POST", "/billing/checkout-session", body, headers)


# ---------------------------------------------------------------------- the session
def test_a_project_admin_gets_a_checkout_session_of_the_plan_price(
        service: Service, stripe_rec: StripeRecorder, db: Conn, dsn: str,
        project: dict[str, Any]) -> None:
    reply = checkout(service, token(dsn, db, project["project_id"]))
    assert reply.status == 200, reply.body
    assert reply.json() == {"id": "cs_test_0001",
                            "url": "https://checkout.stripe.com/c/pay/cs_test_0001"}
    [call] = stripe_rec.calls("/v1/checkout/sessions")
    assert call.headers["authorization"] == "Bearer sk_test_123"
    assert call.form == {
        "mode": "subscription", "line_items[0][price]": "price_team",
        "line_items[0][quantity]": "1", "client_reference_id": project["org_id"],
        "success_url": SUCCESS, "cancel_url": SUCCESS,
        "metadata[org_id]": project["org_id"], "metadata[project_id]": project["project_id"],
        "metadata[plan]": "team", "subscription_data[metadata][org_id]": project["org_id"],
        "subscription_data[metadata][plan]": "team"}
    audit = db.execute("SELECT project_id::text, actor, target, details FROM audit.log"
                       " WHERE action = 'billing.checkout'").fetchall()
    assert len(audit) == 1
    assert audit[0]["project_id"] == project["project_id"]
    assert audit[0]["actor"].startswith("key:sik_")  # the caller, as the database saw it
    assert audit[0]["target"] == "cs_test_0001"
    assert audit[0]["details"]["plan"] == "team"


def test_a_linked_organization_checks_out_as_its_customer(
        service: Service, stripe_rec: StripeRecorder, db: Conn, dsn: str,
        project: dict[str, Any]) -> None:
    db.execute("INSERT INTO billing.customers (org_id, stripe_customer_id) VALUES (%s, %s)",
               (project["org_id"], "cus_acme1"))
    db.commit()
    assert checkout(service, token(dsn, db, project["project_id"])).status == 200
    [call] = stripe_rec.calls("/v1/checkout/sessions")
    assert call.form["customer"] == "cus_acme1"


# ---------------------------------------------------------------------- refusals
def test_callers_without_a_valid_project_admin_token_are_refused(
        service: Service, stripe_rec: StripeRecorder, db: Conn, dsn: str,
        project: dict[str, Any]) -> None:
    none = checkout(service, None)
    assert (none.status, none.json()["error"]) == (401, "unauthenticated")
    assert "Bearer" in none.json()["hint"]
    garbage = checkout(service, "not-a-token")
    assert (garbage.status, garbage.json()["message"]) == (401, "the bearer token is not a JWT")
    good = token(dsn, db, project["project_id"])
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, "someone-elses-secret-of-32-bytes-or-more", algorithm="HS256")
    assert checkout(service, forged).json()["message"] == \
        "the bearer token's signature is not valid"
    secret = db.execute("SELECT auth.active_secret() AS s").fetchone()
    assert secret is not None
    expired = jwt.encode({**claims, "exp": 1}, secret["s"], algorithm="HS256")
    reply = checkout(service, expired)
    assert reply.status == 401 and "expired" in reply.json()["message"]

    customer = checkout(service, token(dsn, db, project["project_id"], "customer"))
    assert (customer.status, customer.json()["error"]) == (403, "forbidden")
    assert "project_admin" in customer.json()["message"]
    # A revoked key's token dies with it: api.pre_request, as PostgREST runs it.
    key = make_key(db, project["project_id"], "project_admin")
    revoked = Api(dsn).rpc("exchange_key", api_key=key["api_key"])["token"]
    db.execute("UPDATE core.api_keys SET revoked_at = now() WHERE key_id = %s",
               (key["key_id"],))
    db.commit()
    reply = checkout(service, revoked)
    assert (reply.status, reply.json()["message"]) == (401, "API key revoked or expired")
    assert stripe_rec.calls("/v1/checkout/sessions") == []


def test_a_plan_that_cannot_be_bought_is_a_400_naming_the_plans(
        service: Service, stripe_rec: StripeRecorder, db: Conn, dsn: str,
        project: dict[str, Any]) -> None:
    bearer = token(dsn, db, project["project_id"])
    unknown = checkout(service, bearer, b'{"plan": "platinum"}')
    assert (unknown.status, unknown.json()["message"]) == (400, 'unknown plan "platinum"')
    assert unknown.json()["hint"] == "Plans sold through Stripe: team."
    free = checkout(service, bearer, b'{"plan": "free"}')
    assert free.status == 400 and "no stripe_price_id" in free.json()["message"]
    malformed = checkout(service, bearer, b'{"tier": "team"}')
    assert (malformed.status, malformed.json()["error"]) == (400, "bad_request")
    assert "plan" in malformed.json()["message"]
    assert stripe_rec.calls("/v1/checkout/sessions") == []


def test_stripe_down_is_a_502_and_nothing_is_audited(dsn: str, tmp_path: Path, db: Conn,
                                                     project: dict[str, Any]) -> None:
    with start(dsn, tmp_path, f"http://127.0.0.1:{closed_port()}") as svc:
        reply = checkout(svc, token(dsn, db, project["project_id"]))
    assert (reply.status, reply.json()["error"]) == (502, "stripe_unavailable")
    assert db.execute("SELECT count(*) AS n FROM audit.log WHERE action = 'billing.checkout'"
                      ).fetchone() == {"n": 0}


def test_without_stripe_settings_checkout_answers_503_naming_them(
        dsn: str, tmp_path: Path, db: Conn, project: dict[str, Any]) -> None:
    with start(dsn, tmp_path, "http://127.0.0.1:1", secret_key=None) as svc:
        reply = checkout(svc, token(dsn, db, project["project_id"]))
    assert (reply.status, reply.json()["error"]) == (503, "stripe_not_configured")
    assert "SECINF_STRIPE_SECRET_KEY" in reply.json()["hint"]
