-- secinf: run-as superuser
-- pg_cron schedule of the analysts' connection limits (auth.apply_analyst_connection_limits,
-- sql/960_analyst_connections.sql): a plan that changes (a Stripe subscription) changes its
-- analysts' CONNECTION LIMIT within 5 minutes. Like 800_cron.sql: only where pg_cron lives,
-- a named job updated in place, run as role `pipeline`.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    PERFORM cron.schedule_in_database('secinf-analyst-connection-limits', '*/5 * * * *',
                                      'SELECT auth.apply_analyst_connection_limits()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
