-- Grants for metering and quotas (0024, sql/240_billing_usage.sql). API roles never write
-- billing tables: counts and refusals happen inside the SECURITY DEFINER functions of the
-- work they meter; members read their project's usage and quotas (RLS, 900_policies.sql).

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing FROM PUBLIC;
GRANT USAGE ON SCHEMA billing TO customer, reviewer, analyst, project_admin, pipeline;

-- ---------------------------------------------------------------- reading
GRANT SELECT ON billing.metrics, billing.plan_quotas, billing.rate_limits
  TO customer, reviewer, analyst, project_admin, pipeline;
GRANT SELECT ON billing.usage, billing.quota_overrides
  TO customer, reviewer, analyst, project_admin, pipeline;
GRANT EXECUTE ON FUNCTION billing.hour_of(timestamptz), billing.period_bounds(text, timestamptz)
  TO customer, reviewer, analyst, project_admin, pipeline;

-- ---------------------------------------------------------------- the workers' counts
-- Workers (role pipeline) count the work they do in its own transaction, and check quotas
-- of the work they take in (the ingest_file job's load).
GRANT EXECUTE ON FUNCTION billing.count(uuid, text, bigint, text),
  billing.check_quota(uuid, text, bigint), billing.quota(uuid, text),
  billing.used(uuid, text, timestamptz), billing.quota_status(uuid, timestamptz),
  billing.add_response_header(text, text)
  TO pipeline;
