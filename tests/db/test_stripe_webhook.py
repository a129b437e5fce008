"""POST /stripe/webhook (issue 18) over real HTTP: the file service on a loopback port,
the events signed with Stripe's own scheme (tests/support/stripe_recorder.sign: t=…,
v1=HMAC-SHA256 of "t.body", what stripe.Webhook.construct_event verifies) and posted to
the real webhook code, which applies them with billing.apply_stripe_event as `pipeline`.
Stripe's servers are unreachable here: nothing is fetched from Stripe, events are made up
in the shape Stripe sends them."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.factories import make_project
from tests.support.file_service import Clock, Reply, Service, serving
from tests.support.stripe_recorder import sign
from workers.billing.config import StripeConfig
from workers.billing.db import BillingDB
from workers.billing.routes import BillingService
from workers.files.app import create_app
from workers.files.service_db import ServiceDB
from workers.storage import LocalStorage

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]
SECRET = "whsec_test_0123456789abcdef"
T0 = 1_780_000_000  # Stripe's `created` of the first event of each story
_ids = itertools.count(1)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def service(dsn: str, tmp_path: Path) -> Iterator[Service]:
    billing = BillingService(StripeConfig(webhook_secret=SECRET), BillingDB(dsn))
    app = create_app(LocalStorage(tmp_path / "objects"), ServiceDB(dsn, max_size=2),
                     clock=Clock(), billing=billing)
    with serving(app) as svc:
        yield svc


@pytest.fixture
def org(db: Conn) -> dict[str, Any]:
    """An organization with two projects; plans team and enterprise sold at Stripe prices."""
    first = make_project(db, "acme", "north")
    second = make_project(db, "acme", "south")
    row = db.execute("SELECT org_id FROM core.projects WHERE project_id = %s",
                     (first,)).fetchone()
    assert row is not None
    db.execute("UPDATE core.plans SET stripe_price_id = 'price_team' WHERE plan_id = 'team'")
    db.execute("UPDATE core.plans SET stripe_price_id = 'price_ent' WHERE plan_id = 'enterprise'")
    db.commit()
    return {"org_id": str(row["org_id"]), "projects": [first, second]}


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None
          ) -> dict[str, Any]:
    return {"id": event_id or f"evt_test{next(_ids):06d}", "object": "event", "type": kind,
            "created": created, "livemode": False, "api_version": "2025-03-31.basil",
            "data": {"object": obj}}


def subscription(sub_id: str, price: str, status: str = "active",
                 customer: str = "cus_acme1", **extra: Any) -> dict[str, Any]:
    return {"id": sub_id, "object": "subscription", "customer": customer, "status": status,
            "cancel_at_period_end": False,
            "items": {"object": "list", "data": [{
                "id": "si_1", "price": {"id": price, "object": "price"},
                "current_period_start": T0, "current_period_end": T0 + 30 * 86400}]},
            "metadata": {}, **extra}


def checkout(org_id: str, customer: str = "cus_acme1") -> dict[str, Any]:
    return {"id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
            "client_reference_id": org_id, "customer": customer,
            "subscription": "sub_acme1", "customer_details": {"email": "billing@acme.test"},
            "metadata": {"org_id": org_id}}


def post(svc: Service, doc: dict[str, Any] | bytes, secret: str = SECRET,
         at: int | None = None, signature: str | None = None) -> Reply:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = {"Content-Type": "application/json",
               "Stripe-Signature": signature if signature is not None
               else sign(body, secret, at)}
    return svc.request("POST", "/stripe/webhook", body, headers)


def stored(db: Conn) -> list[tuple[str, str]]:
    db.commit()
    return [(r["event_id"], r["result"]) for r in db.execute(
        "SELECT event_id, result FROM billing.stripe_events ORDER BY received_at, event_id")]


def plan(db: Conn, org_id: str) -> str:
    db.commit()
    row = db.execute("SELECT plan_id FROM core.organizations WHERE org_id = %s",
                     (org_id,)).fetchone()
    assert row is not None
    return str(row["plan_id"])


def sub_row(db: Conn, sub_id: str) -> dict[str, Any] | None:
    db.commit()
    return db.execute("SELECT status, plan_id, stripe_price_id, stripe_updated"
                      " FROM billing.subscriptions WHERE stripe_subscription_id = %s",
                      (sub_id,)).fetchone()


# ---------------------------------------------------------------------- refusals
def test_an_unsigned_event_is_refused_and_stores_nothing(service: Service, db: Conn,
                                                         org: dict[str, Any]) -> None:
    reply = post(service, event("checkout.session.completed", checkout(org["org_id"]), T0),
                 signature="")
    assert reply.status == 400
    assert reply.json()["error"] == "missing_signature"
    assert "webhook endpoint" in reply.json()["hint"]
    assert stored(db) == []


def test_a_tampered_event_is_refused(service: Service, db: Conn, org: dict[str, Any]) -> None:
    body = json.dumps(event("checkout.session.completed", checkout(org["org_id"]), T0)).encode()
    header = sign(body, SECRET)
    forged = body.replace(org["org_id"].encode(), b"00000000-0000-0000-0000-000000000000")
    for reply in (post(service, forged, signature=header),              # body changed
                  post(service, body, secret="whsec_someone_else"),     # wrong secret
                  post(service, body, at=int(time.time()) - 600),       # replayed late
                  post(service, body, signature="t=1,v1=deadbeef")):    # made up
        assert reply.status == 400, reply.body
        assert reply.json()["error"] == "bad_signature"
        assert "SECINF_STRIPE_WEBHOOK_SECRET" in reply.json()["hint"]
    assert stored(db) == []
    assert db.execute("SELECT count(*) AS n FROM billing.customers").fetchone() == {"n": 0}


def test_without_a_signing_secret_the_webhook_answers_503_naming_it(
        dsn: str, tmp_path: Path) -> None:
    app = create_app(LocalStorage(tmp_path), ServiceDB(dsn, max_size=1), clock=Clock(),
                     billing=BillingService(StripeConfig(), BillingDB(dsn)))
    with serving(app) as svc:
        reply = post(svc, {"id": "evt_x"})
    assert reply.status == 503
    assert reply.json()["error"] == "stripe_not_configured"
    assert "SECINF_STRIPE_WEBHOOK_SECRET" in reply.json()["hint"]


def test_a_signed_body_that_is_not_an_event_is_a_400(service: Service, db: Conn) -> None:
    reply = post(service, {"hello": "world"})
    assert reply.status == 400
    assert reply.json()["error"] == "bad_event"
    assert "evt_" in reply.json()["message"]
    assert stored(db) == []


# ---------------------------------------------------------------------- subscriptions
def test_the_plan_follows_the_subscription_and_is_audited_per_project(
        service: Service, db: Conn, org: dict[str, Any]) -> None:
    linked = post(service, event("checkout.session.completed", checkout(org["org_id"]), T0))
    assert linked.status == 200, linked.body
    assert linked.json()["result"] == "applied"
    assert db.execute("SELECT org_id::text, email FROM billing.customers"
                      " WHERE stripe_customer_id = 'cus_acme1'").fetchone() == {
        "org_id": org["org_id"], "email": "billing@acme.test"}

    created = post(service, event("customer.subscription.created",
                                  subscription("sub_acme1", "price_team"), T0 + 1))
    assert created.json()["result"] == "applied"
    assert plan(db, org["org_id"]) == "team"
    upgraded = post(service, event("customer.subscription.updated",
                                   subscription("sub_acme1", "price_ent"), T0 + 2))
    assert upgraded.json()["result"] == "applied"
    assert plan(db, org["org_id"]) == "enterprise"
    deleted = post(service, event("customer.subscription.deleted",
                                  subscription("sub_acme1", "price_ent", status="canceled"),
                                  T0 + 3))
    assert deleted.json()["result"] == "applied"
    assert plan(db, org["org_id"]) == "free"
    assert sub_row(db, "sub_acme1")["status"] == "canceled"  # type: ignore[index]

    changes = db.execute("SELECT project_id::text, actor, details FROM audit.log"
                         " WHERE action = 'plan.change' ORDER BY audit_id").fetchall()
    assert [(c["details"]["from"], c["details"]["to"]) for c in changes] == [
        ("free", "team"), ("free", "team"), ("team", "enterprise"), ("team", "enterprise"),
        ("enterprise", "free"), ("enterprise", "free")]
    assert {c["project_id"] for c in changes} == set(org["projects"])
    assert {c["actor"] for c in changes} == {"stripe"}


def test_the_same_event_twice_changes_nothing(service: Service, db: Conn,
                                              org: dict[str, Any]) -> None:
    post(service, event("checkout.session.completed", checkout(org["org_id"]), T0))
    once = event("customer.subscription.created", subscription("sub_acme1", "price_team"),
                 T0 + 1)
    first = post(service, once)
    audits = db.execute("SELECT count(*) AS n FROM audit.log").fetchone()
    before = sub_row(db, "sub_acme1")
    again = post(service, once)
    assert (first.status, again.status) == (200, 200)
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert again.json()["result"] == first.json()["result"] == "applied"
    assert sub_row(db, "sub_acme1") == before
    assert db.execute("SELECT count(*) AS n FROM audit.log").fetchone() == audits
    assert [r for _, r in stored(db)] == ["applied", "applied"]
    raw = db.execute("SELECT payload, received_at FROM billing.stripe_events"
                     " WHERE event_id = %s", (once["id"],)).fetchone()
    assert raw is not None and raw["payload"] == once  # the raw event, kept once
    # After a newer event, the replay is still answered from the record, not re-applied
    # (re-applied, it would be stale now and the record rewritten).
    post(service, event("customer.subscription.updated", subscription("sub_acme1", "price_ent"),
                        T0 + 2))
    late = post(service, once)
    assert (late.json()["result"], late.json()["replayed"]) == ("applied", True)
    assert db.execute("SELECT payload, received_at FROM billing.stripe_events"
                      " WHERE event_id = %s", (once["id"],)).fetchone() == raw
    assert plan(db, org["org_id"]) == "enterprise"


def test_concurrent_deliveries_of_one_event_store_it_once(service: Service, db: Conn,
                                                          org: dict[str, Any]) -> None:
    post(service, event("checkout.session.completed", checkout(org["org_id"]), T0))
    once = event("customer.subscription.created", subscription("sub_acme1", "price_team"),
                 T0 + 1)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: post(service, once), range(8)))
    assert [r.status for r in replies] == [200] * 8
    assert sorted(r.json()["replayed"] for r in replies) == [False] + [True] * 7
    assert len(stored(db)) == 2
    assert db.execute("SELECT count(*) AS n FROM audit.log WHERE action = 'plan.change'"
                      ).fetchone() == {"n": 2}  # one change, one row per project


def test_events_out_of_order_resolve_to_the_newest_state(service: Service, db: Conn,
                                                         org: dict[str, Any]) -> None:
    post(service, event("checkout.session.completed", checkout(org["org_id"]), T0))
    newer = post(service, event("customer.subscription.updated",
                                subscription("sub_acme1", "price_ent"), T0 + 20))
    older = post(service, event("customer.subscription.updated",
                                subscription("sub_acme1", "price_team"), T0 + 10))
    first = post(service, event("customer.subscription.created",
                                subscription("sub_acme1", "price_team", status="incomplete"),
                                T0 + 5))
    old_delete = post(service, event("customer.subscription.deleted",
                                     subscription("sub_acme1", "price_team",
                                                  status="canceled"), T0 + 15))
    assert [r.status for r in (newer, older, first, old_delete)] == [200] * 4
    assert [r.json()["result"] for r in (newer, older, first, old_delete)] == [
        "applied", "stale", "stale", "stale"]
    assert "newer event" in older.json()["detail"]
    row = sub_row(db, "sub_acme1")
    assert row is not None
    assert (row["status"], row["plan_id"], row["stripe_price_id"]) == (
        "active", "enterprise", "price_ent")
    assert int(row["stripe_updated"].timestamp()) == T0 + 20
    assert plan(db, org["org_id"]) == "enterprise"
    # A newer deletion still wins.
    late = post(service, event("customer.subscription.deleted",
                               subscription("sub_acme1", "price_ent", status="canceled"),
                               T0 + 30))
    assert late.json()["result"] == "applied"
    assert plan(db, org["org_id"]) == "free"


def test_a_subscription_before_its_checkout_is_applied_when_the_customer_is_linked(
        service: Service, db: Conn, org: dict[str, Any]) -> None:
    early = post(service, event("customer.subscription.created",
                                subscription("sub_acme1", "price_team"), T0 + 1))
    assert (early.status, early.json()["result"]) == (200, "failed")
    assert "cus_acme1" in early.json()["detail"]
    assert plan(db, org["org_id"]) == "free"
    linked = post(service, event("checkout.session.completed", checkout(org["org_id"]), T0 + 2))
    assert "1 earlier events applied again" in linked.json()["detail"]
    assert plan(db, org["org_id"]) == "team"
    assert [r for _, r in stored(db)] == ["applied", "applied"]


def test_a_subscription_naming_its_org_in_metadata_needs_no_link(
        service: Service, db: Conn, org: dict[str, Any]) -> None:
    reply = post(service, event("customer.subscription.created",
                                subscription("sub_acme2", "price_team", customer="cus_new1",
                                             metadata={"org_id": org["org_id"]}), T0))
    assert reply.json()["result"] == "applied"
    assert plan(db, org["org_id"]) == "team"


# ---------------------------------------------------------------------- invoices, others
def invoice(status: str, paid: int) -> dict[str, Any]:
    return {"id": "in_acme1", "object": "invoice", "customer": "cus_acme1",
            "number": "ACME-0001", "status": status, "currency": "eur", "amount_due": 4900,
            "amount_paid": paid, "period_start": T0, "period_end": T0 + 30 * 86400,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acme1",
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": "sub_acme1", "metadata": {}}}}


def test_invoices_are_mirrored_newest_state_first(service: Service, db: Conn,
                                                  org: dict[str, Any]) -> None:
    post(service, event("checkout.session.completed", checkout(org["org_id"]), T0))
    finalized = event("invoice.finalized", invoice("open", 0), T0 + 10)
    assert post(service, finalized).json()["result"] == "applied"
    failed = post(service, event("invoice.payment_failed", invoice("open", 0), T0 + 20))
    paid = post(service, event("invoice.paid", invoice("paid", 4900), T0 + 30))
    late = post(service, event("invoice.payment_failed", invoice("open", 0), T0 + 25))
    assert [r.json()["result"] for r in (failed, paid, late)] == ["applied", "applied", "stale"]
    assert post(service, finalized).json()["replayed"] is True
    db.commit()
    row = db.execute("SELECT org_id::text, stripe_subscription_id, number, status, currency,"
                     " amount_due, amount_paid, hosted_invoice_url FROM billing.invoices"
                     ).fetchall()
    assert row == [{"org_id": org["org_id"], "stripe_subscription_id": "sub_acme1",
                    "number": "ACME-0001", "status": "paid", "currency": "eur",
                    "amount_due": 4900, "amount_paid": 4900,
                    "hosted_invoice_url": "https://invoice.stripe.com/i/acme1"}]


def test_an_unknown_event_type_is_ignored_with_200(service: Service, db: Conn) -> None:
    doc = event("customer.created", {"id": "cus_acme9", "object": "customer"}, T0)
    reply = post(service, doc)
    assert (reply.status, reply.json()["result"]) == (200, "ignored")
    assert stored(db) == [(doc["id"], "ignored")]


def test_the_webhook_answers_503_when_the_database_is_down(tmp_path: Path,
                                                           dsn: str) -> None:
    """Our own failure: a 5xx, so Stripe delivers the event again later."""
    down = "host=127.0.0.1 port=1 dbname=secinf user=postgres connect_timeout=2"
    app = create_app(LocalStorage(tmp_path), ServiceDB(dsn, max_size=1), clock=Clock(),
                     billing=BillingService(StripeConfig(webhook_secret=SECRET),
                                            BillingDB(down, connect_timeout=2)))
    with serving(app) as svc:
        reply = post(svc, event("customer.created", {"id": "cus_x"}, T0))
    assert reply.status == 503
    assert reply.json()["error"] == "database_unavailable"
