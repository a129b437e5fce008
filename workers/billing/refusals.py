"""The refusals of the Stripe routes: an HTTP status, a code and a hint naming the fix; the
body is the file service's {"error", "message", "hint"}."""

from __future__ import annotations

from workers.files.signing import FileRefused


class BillingRefused(FileRefused):
    """The request was refused (status, code and hint as every refusal of the service)."""


class NotConfigured(BillingRefused):
    """Stripe is not configured on this service."""

    status = 503
    code = "stripe_not_configured"


class MissingSignature(BillingRefused):
    """The request has no Stripe-Signature header."""

    code = "missing_signature"
    hint = ("Only Stripe posts here: add this URL as a webhook endpoint in Stripe's dashboard "
            "(or `stripe listen --forward-to …`), which signs every event.")


class BadSignature(BillingRefused):
    """The Stripe-Signature header does not verify."""

    code = "bad_signature"
    hint = ("Set SECINF_STRIPE_WEBHOOK_SECRET to the signing secret (whsec_…) of this "
            "endpoint in Stripe's dashboard; a replay older than 5 minutes is refused too.")


class BadEvent(BillingRefused):
    """The body is not a Stripe event."""

    code = "bad_event"
    hint = "Post only what Stripe sends to the webhook endpoint."


class Unauthenticated(BillingRefused):
    """The request carries no valid API token."""

    status = 401
    code = "unauthenticated"
    hint = ("Send Authorization: Bearer <token>, the token of a project_admin API key "
            "(POST /rpc/exchange_key on the API).")


class Forbidden(BillingRefused):
    """The token's role may not do this."""

    status = 403
    code = "forbidden"
    hint = "Use an API key of the project with role project_admin."


class BadBody(BillingRefused):
    """The request's body is malformed."""

    code = "bad_request"


class BadPlan(BillingRefused):
    """The plan cannot be bought."""

    code = "bad_plan"


class StripeUnavailable(BillingRefused):
    """Stripe did not answer or refused the request."""

    status = 502
    code = "stripe_unavailable"
    hint = "Try again shortly; the operator should check SECINF_STRIPE_SECRET_KEY and " \
           "Stripe's status page."


class DatabaseDown(BillingRefused):
    """The service cannot reach its database."""

    status = 503
    code = "database_unavailable"
    hint = "Try again shortly (Stripe retries webhook deliveries by itself); the operator " \
           "should check `secinf db status`."
