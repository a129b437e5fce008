-- Grants for analytics (85x_analytics*.sql, 860_cron_analytics.sql).
-- The materialized views are granted to nobody: they carry no RLS. People read them only
-- through the api.metrics_* functions, which filter on the caller's projects; the cron job
-- (role pipeline) may only run the refresh.

REVOKE ALL ON ALL TABLES IN SCHEMA analytics FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA analytics FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
  api.metrics_events_over_time(timestamptz, timestamptz, bigint[], text),
  api.metrics_dwell_histogram(timestamptz, timestamptz, bigint[], double precision),
  api.metrics_follow_rate(timestamptz, timestamptz, bigint[]),
  api.metrics_route_shares(timestamptz, timestamptz, bigint[]),
  api.metrics_reaction_latency(timestamptz, timestamptz, bigint[], double precision),
  api.metrics_class_balance(timestamptz, timestamptz, bigint[]),
  api.project_metrics(timestamptz, timestamptz, bigint[])
  FROM PUBLIC;

GRANT USAGE ON SCHEMA analytics TO pipeline;
GRANT EXECUTE ON FUNCTION analytics.refresh(boolean) TO pipeline;

GRANT EXECUTE ON FUNCTION
  api.metrics_events_over_time(timestamptz, timestamptz, bigint[], text),
  api.metrics_dwell_histogram(timestamptz, timestamptz, bigint[], double precision),
  api.metrics_follow_rate(timestamptz, timestamptz, bigint[]),
  api.metrics_route_shares(timestamptz, timestamptz, bigint[]),
  api.metrics_reaction_latency(timestamptz, timestamptz, bigint[], double precision),
  api.metrics_class_balance(timestamptz, timestamptz, bigint[]),
  api.project_metrics(timestamptz, timestamptz, bigint[])
  TO customer, reviewer, analyst, project_admin;
