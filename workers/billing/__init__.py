"""Stripe's side of billing (issue 18): the webhook and checkout sessions of `secinf serve`
(routes.py), the report_usage job that sends usage as meter events (report_usage.py), and
the Stripe client they share (config.py). The database side is sql/260_billing_stripe.sql;
see docs/billing.md, "Stripe"."""
