-- secinf: run-as superuser
-- pg_cron schedule of the analytics refresh (see 800_cron.sql for how pg_cron is set up:
-- only in the database named by cron.database_name, so nothing here in test copies).
-- The job runs as `pipeline`, which may only EXECUTE analytics.refresh(): that function is
-- SECURITY DEFINER and owned by secinf_owner, the owner of the views, the only role
-- Postgres lets refresh them. CONCURRENTLY: readers are never blocked. pg_cron never starts
-- a job while its previous run is still going; a manual refresh at the same time waits for
-- the views' locks. Failures show in cron.job_run_details.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    -- Every 5 minutes.
    PERFORM cron.schedule_in_database('secinf-analytics-refresh', '*/5 * * * *',
                                      'SELECT count(*) FROM analytics.refresh()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
