"""Stripe's settings (SECINF_STRIPE_*, workers/settings.py) and the client built from them.

The client is a `stripe.StripeClient` of its own (no module-level state), pointed at
SECINF_STRIPE_API_BASE when set: the tests' local recorder, a proxy, or Stripe's mock."""

from __future__ import annotations

from dataclasses import dataclass, field

import stripe

from workers.errors import UserError
from workers.settings import Settings, load_settings

DEFAULT_API_BASE = "https://api.stripe.com"
NETWORK_RETRIES = 2
"""The library's own retries of a failed connection or a 409/429/5xx, with the same
idempotency key (so Stripe never applies a request twice)."""


class BadMeters(UserError):
    """SECINF_STRIPE_METERS is not a comma-separated list of metric=event_name pairs."""


def parse_meters(text: str) -> dict[str, str]:
    """`metric=event_name,…` as a mapping; BadMeters naming the bad pair."""
    meters: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        metric, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or not metric or not name or len(name) > 100:
            raise BadMeters(f"SECINF_STRIPE_METERS: {pair!r} is not metric=event_name "
                            "(e.g. points_ingested=secinf_points)")
        meters[metric] = name
    return meters


@dataclass(frozen=True)
class StripeConfig:
    """What the webhook, checkout sessions and usage reports need; None: not configured."""

    webhook_secret: str | None = None
    secret_key: str | None = None
    api_base: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    meters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> StripeConfig:
        s = settings or load_settings()
        return cls(webhook_secret=s.stripe_webhook_secret, secret_key=s.stripe_secret_key,
                   api_base=s.stripe_api_base, success_url=s.stripe_success_url,
                   cancel_url=s.stripe_cancel_url, meters=parse_meters(s.stripe_meters))

    def meter_name(self, metric: str) -> str:
        """The meter event name of a metric's usage reports."""
        return self.meters.get(metric, f"secinf_{metric}")

    def client(self) -> stripe.StripeClient:
        """A client of SECINF_STRIPE_SECRET_KEY at SECINF_STRIPE_API_BASE."""
        if not self.secret_key:
            raise UserError("SECINF_STRIPE_SECRET_KEY is not set: set it to the Stripe API "
                            "key (sk_… or a restricted rk_…) of the account")
        base = (self.api_base or DEFAULT_API_BASE).rstrip("/")
        return stripe.StripeClient(self.secret_key, base_addresses={"api": base},
                                   max_network_retries=NETWORK_RETRIES)
