-- Grants for Stripe (sql/260_billing_stripe.sql). 974_grants_billing.sql revoked EXECUTE on
-- billing's functions from PUBLIC first; each is granted here to the role that calls it.
-- API roles never write the mirror: the webhook (file service, role pipeline) does,
-- through billing.apply_stripe_event.

-- ---------------------------------------------------------------- the file service
-- The webhook's events, and the bearer token of a checkout session (the secret stays in
-- the database).
GRANT EXECUTE ON FUNCTION billing.apply_stripe_event(jsonb), billing.verify_token(text)
  TO pipeline;

-- ---------------------------------------------------------------- checkout sessions
-- Run as the caller (the service logs in as authenticator, like PostgREST): the functions
-- check project_admin of the token's project themselves.
GRANT EXECUTE ON FUNCTION billing.checkout_context(text), billing.checkout_created(text, text)
  TO project_admin;

-- ---------------------------------------------------------------- usage reports
-- pg_cron's hourly job and the report_usage worker (both role pipeline).
GRANT EXECUTE ON FUNCTION billing.queue_usage_reports(interval),
  billing.pending_usage_reports(bigint, bigint),
  billing.record_usage_report(bigint, bigint, text, text, text)
  TO pipeline;
-- Helpers the functions above call as their owner; readable by the workers too.
GRANT EXECUTE ON FUNCTION billing.stripe_id(jsonb), billing.stripe_time(jsonb) TO pipeline;
