"""The `report_usage` job: send a project's pending usage reports to Stripe as meter events.

pg_cron's hourly billing.queue_usage_reports fills the outbox billing.usage_reports (one
row per project, metric and completed hour, with a stable identifier) and queues one job
per project with pending rows. The handler sends each row with
`meter_events.create(identifier=…)` and the identifier as idempotency key, then records it
`sent` in a fenced write-back (billing.record_usage_report → jobs.fence). On a Stripe error
the row stays `pending` (attempts, last_error) and the job fails, to be retried with
backoff; a dead job's rows are taken by the next hour's job. A worker killed between the
send and the record sends the row again with the same identifier, which Stripe dedupes
(uniqueness of a meter event's identifier over a rolling 24 hours at least), so an outage
delays a report but never loses or doubles it. A worker plug-in
(workers.job_kinds.MODULES); see docs/billing.md, "Stripe".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from pydantic import BaseModel, ConfigDict, Field

from workers.billing.config import StripeConfig
from workers.db.queries import query
from workers.errors import SecinfError
from workers.queue.registry import JobContext, JsonResult, register_kind

REPORT_USAGE = "report_usage"
STRIPE_MAX_AGE = timedelta(days=35)
"""Stripe refuses meter events older than 35 days: such a report is marked failed."""


class ReportUsagePayload(BaseModel):
    """What billing.queue_usage_reports queues (the job's project is the scope)."""

    model_config = ConfigDict(extra="forbid")
    batch: int = Field(default=200, ge=1, le=5000)
    """Reports read per round; rounds continue until none is pending."""


class UsageNotSent(SecinfError):
    """Stripe did not accept every usage report: they stay pending and are sent again."""


def job_config() -> StripeConfig:
    """The worker's Stripe settings (SECINF_STRIPE_*)."""
    return StripeConfig.from_settings()


def _record(ctx: JobContext, identifier: str, state: str, error: str | None) -> None:
    with ctx.write_back() as conn:
        conn.execute(query("billing_stripe", "record_usage_report"), {
            "job_id": ctx.job.job_id, "attempt": ctx.job.attempt, "identifier": identifier,
            "state": state, "error": error})


def send_report(client: stripe.StripeClient, config: StripeConfig,
                row: dict[str, Any]) -> None:
    """One report as a meter event; the identifier is also the idempotency key."""
    client.v1.billing.meter_events.create(
        {"event_name": config.meter_name(row["metric"]),
         "payload": {"stripe_customer_id": row["stripe_customer_id"],
                     "value": str(row["amount"])},
         "identifier": row["identifier"],
         "timestamp": int(row["hour"].timestamp())},
        {"idempotency_key": row["identifier"]})


def run_report_usage(payload: ReportUsagePayload, ctx: JobContext) -> JsonResult:
    config = job_config()
    if not config.secret_key:
        raise UsageNotSent("SECINF_STRIPE_SECRET_KEY is not set on this worker: set it to "
                           "the Stripe API key; the reports stay pending until then")
    client = config.client()
    sent = expired = 0
    while True:
        with ctx.connection() as conn:
            rows = conn.execute(query("billing_stripe", "pending_usage_reports"),
                                {"job_id": ctx.job.job_id, "limit": payload.batch}).fetchall()
            conn.commit()
        if not rows:
            break
        for row in rows:
            ctx.check()
            if row["hour"] < datetime.now(UTC) - STRIPE_MAX_AGE:
                _record(ctx, row["identifier"], "failed",
                        "older than the 35 days Stripe accepts meter events for")
                expired += 1
                continue
            try:
                send_report(client, config, row)
            except stripe.StripeError as exc:
                error = f"{type(exc).__name__}: {exc.user_message or exc}"[:1000]
                _record(ctx, row["identifier"], "pending", error)
                raise UsageNotSent(f"Stripe did not accept usage report {row['identifier']} "
                                   f"({error}); it and the project's other pending reports "
                                   "are sent again when this job is retried") from exc
            _record(ctx, row["identifier"], "sent", None)
            sent += 1
    return {"sent": sent, "expired": expired}


register_kind(REPORT_USAGE, ReportUsagePayload, run_report_usage, timeout_s=900,
              description="send a project's pending usage reports to Stripe as meter events "
                          "(billing.queue_usage_reports)")

__all__ = ["REPORT_USAGE", "run_report_usage", "send_report"]
