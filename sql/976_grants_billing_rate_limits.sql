-- Grants for rate limits and API request metering (sql/25x_billing_rate_limits*.sql).
-- api.pre_request runs as the request's role and calls billing.admit_request, which reads
-- the caller's claims itself; the shared-memory wrappers stay the owner's
-- (sql/250_billing_rate_limits.sql). The flush is the pipeline's (pg_cron).

-- Anonymous requests reach billing.admit_request too (sign-ins, key exchanges).
GRANT USAGE ON SCHEMA billing TO anon;

-- ---------------------------------------------------------------- the request path
GRANT EXECUTE ON FUNCTION billing.admit_request(), billing.admit_key_exchange(text)
  TO anon, customer, reviewer, analyst, project_admin;

-- ---------------------------------------------------------------- the flush
GRANT EXECUTE ON FUNCTION billing.flush_request_counts(), billing.request_flush_job(),
  billing.requests_today(uuid)
  TO pipeline;
