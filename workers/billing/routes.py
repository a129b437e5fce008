"""The Stripe routes of the file service (`secinf serve`), mounted by workers/files/app.py.

    POST /stripe/webhook            Stripe's events, verified with the endpoint's signing
                                    secret (Stripe-Signature) and applied in one call of
                                    billing.apply_stripe_event; 200 for every event we
                                    stored (applied, stale, ignored, failed: Stripe need
                                    not send it again), 5xx only for our own failures
                                    (Stripe retries those)
    POST /billing/checkout-session  a Stripe Checkout Session (mode subscription) for a plan
                                    upgrade, for a project_admin's API token: {url, id}

Refusals are the service's JSON {"error", "message", "hint"}; see docs/billing.md, "Stripe".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import stripe
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from workers.billing.config import StripeConfig
from workers.billing.db import BillingDB
from workers.billing.refusals import (
    BadBody,
    BadEvent,
    BadSignature,
    BillingRefused,
    Forbidden,
    MissingSignature,
    NotConfigured,
    StripeUnavailable,
    Unauthenticated,
)
from workers.settings import Settings, load_settings

log = logging.getLogger("secinf.billing")
MAX_EVENT_BYTES = 1 << 20
"""Stripe's events are far smaller; a larger body is refused unread."""


@dataclass(frozen=True)
class BillingService:
    """The Stripe side of the service: its settings and database calls."""

    config: StripeConfig
    db: BillingDB | None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> BillingService:
        s = settings or load_settings()
        return cls(StripeConfig.from_settings(s),
                   BillingDB(s.conninfo(), authenticator_password=s.authenticator_password))


# ---------------------------------------------------------------------- bodies
class WebhookOutcome(BaseModel):
    """What the event did (billing.stripe_events keeps it with the raw event)."""

    event_id: str
    type: str
    result: Literal["applied", "stale", "ignored", "failed"]
    detail: str | None
    replayed: bool
    """True when this event id was received before (nothing changed again)."""


class CheckoutRequest(BaseModel):
    """The plan to subscribe the caller's organization to."""

    model_config = ConfigDict(extra="forbid")
    plan: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$", description="core.plans.plan_id")


class CheckoutSession(BaseModel):
    """Stripe's hosted checkout page: send the customer's browser to `url`."""

    id: str
    url: str


def stripe_router(billing: BillingService | None,
                  error_body: type[BaseModel]) -> APIRouter:
    """The routes over `billing` (None: every route answers 503, naming the settings);
    refusals are `error_body`s (the service's ErrorBody)."""
    router = APIRouter()
    config = billing.config if billing is not None else StripeConfig()
    db = billing.db if billing is not None else None

    def doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
        text = {400: "no or bad Stripe-Signature, or not an event; a malformed body",
                401: "no valid API token", 403: "the token's role is not project_admin",
                500: "our failure applying the event (Stripe retries)",
                502: "Stripe refused or did not answer", 503: "Stripe not configured, or "
                "the database unavailable"}
        return {s: {"model": error_body, "description": text[s]} for s in statuses}

    def refuse(exc: BillingRefused) -> JSONResponse:
        return JSONResponse(error_body(error=exc.code, message=str(exc), hint=exc.hint)
                            .model_dump(), status_code=exc.status)

    # ------------------------------------------------------------------ webhook
    @router.post("/stripe/webhook", response_model=WebhookOutcome, responses=doc(400, 500, 503),
                 openapi_extra={
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"type": "object"}}}},
                     # Read from the request: a missing one is our 400, not FastAPI's 422.
                     "parameters": [{
                         "name": "stripe-signature", "in": "header", "required": True,
                         "schema": {"type": "string"},
                         "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of 't.body'> "
                                        "(Stripe signs every event)"}]})
    async def webhook(request: Request) -> Response:
        """Apply one event Stripe sends (signed with this endpoint's secret)."""
        stripe_signature = request.headers.get("stripe-signature")
        try:
            if not config.webhook_secret or db is None:
                raise NotConfigured(
                    "the Stripe webhook is not configured on this service",
                    "Set SECINF_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret "
                    "(whsec_…, Stripe dashboard → Developers → Webhooks) and restart "
                    "`secinf serve`.")
            if not stripe_signature:
                raise MissingSignature("the request has no Stripe-Signature header")
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
                raise BadEvent(f"the body is {declared} bytes, over the {MAX_EVENT_BYTES} a "
                               "Stripe event can be")
            payload = await request.body()
            event = verify_event(payload, stripe_signature, config.webhook_secret)
            outcome = await run_in_threadpool(db.apply_event, event)
        except BillingRefused as exc:
            if exc.status >= 500:
                log.warning("stripe webhook: %s", exc)
            return refuse(exc)
        except psycopg.Error as exc:
            log.exception("stripe webhook: applying the event failed")
            return JSONResponse(error_body(
                error="internal_error", message="the event could not be applied: "
                f"{(exc.diag.message_primary or str(exc))[:300]}",
                hint="Stripe delivers it again later; the operator should read the file "
                     "service's log.").model_dump(), status_code=500)
        log.info("stripe event %s %s: %s", outcome.get("event_id"), outcome.get("type"),
                 outcome.get("result"))
        return JSONResponse(WebhookOutcome.model_validate(outcome).model_dump())

    # ------------------------------------------------------------------ checkout
    @router.post("/billing/checkout-session", response_model=CheckoutSession,
                 responses=doc(400, 401, 403, 502, 503),
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/json": {"schema": _schema(CheckoutRequest)}}}})
    async def checkout_session(
        request: Request,
        authorization: str | None = Header(
            None, description="Bearer <token> of a project_admin API key (api.exchange_key)"),
    ) -> Response:
        """Start a Stripe Checkout of a plan for the caller's organization (project_admin)."""
        body = await request.body()
        try:
            if db is None or not config.secret_key or not config.success_url:
                raise NotConfigured(
                    "Stripe checkout is not configured on this service",
                    "Set SECINF_STRIPE_SECRET_KEY (sk_… or rk_…) and SECINF_STRIPE_SUCCESS_URL "
                    "(and optionally SECINF_STRIPE_CANCEL_URL) and restart `secinf serve`.")
            token = bearer(authorization)
            session = await run_in_threadpool(create_checkout, config, db, token, body)
        except BillingRefused as exc:
            return refuse(exc)
        return JSONResponse(session.model_dump())

    return router


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


# ---------------------------------------------------------------------- steps
def verify_event(payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    """The event of a body whose Stripe-Signature verifies (stripe.Webhook.construct_event:
    HMAC-SHA256 of "t.body" with the secret, t within 5 minutes), as the raw JSON object."""
    try:
        stripe.Webhook.construct_event(payload, signature, secret)  # type: ignore[no-untyped-call]
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(f"the Stripe-Signature header does not verify: {exc}"[:300]) \
            from exc
    except ValueError as exc:  # signed, but not JSON (or not UTF-8)
        raise BadEvent(f"the body is not a JSON event: {exc}"[:300]) from exc
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise BadEvent("the body is not a JSON object")
    return event


def bearer(authorization: str | None) -> str:
    """The token of `Authorization: Bearer <token>`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the request has no Authorization: Bearer <token> header")
    return token.strip()


def create_checkout(config: StripeConfig, db: BillingDB, token: str,
                    body: bytes) -> CheckoutSession:
    """Verify the caller, create the session at Stripe, audit it."""
    claims = db.verify_token(token)
    if claims.get("role") != "project_admin":
        raise Forbidden(f"a {claims.get('role', 'roleless')} token cannot start a checkout: "
                        "it needs role project_admin")
    try:
        plan = CheckoutRequest.model_validate_json(body or b"{}").plan
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                             for e in exc.errors())
        raise BadBody(f"the body is not {{\"plan\": \"<plan id>\"}}: {problems}"[:300],
                       'Send JSON like {"plan": "team"}.') from exc
    ctx = db.as_caller(claims, "checkout_context", {"plan": plan})["context"]
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": ctx["price_id"], "quantity": 1}],
        "client_reference_id": ctx["org_id"],
        "success_url": config.success_url,
        "cancel_url": config.cancel_url or config.success_url,
        "metadata": {"org_id": ctx["org_id"], "project_id": ctx["project_id"], "plan": plan},
        # The subscription names its organization, so its events find it even before
        # checkout.session.completed links the customer.
        "subscription_data": {"metadata": {"org_id": ctx["org_id"], "plan": plan}},
    }
    if ctx.get("customer_id"):
        params["customer"] = ctx["customer_id"]
    try:
        session = config.client().v1.checkout.sessions.create(params)  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"Stripe refused the checkout session: "
                                f"{exc.user_message or exc}"[:300]) from exc
    if not session.id or not session.url:
        raise StripeUnavailable("Stripe's answer has no session id or url")
    db.as_caller(claims, "checkout_created", {"plan": plan, "session_id": session.id})
    return CheckoutSession(id=session.id, url=session.url)
