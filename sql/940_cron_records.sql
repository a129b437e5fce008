-- secinf: run-as superuser
-- pg_cron schedule of retention (records.run_retention, sql/780_records_retention.sql). Like
-- 800_cron.sql: only where pg_cron lives (cron.database_name), a named job updated in place,
-- run as role `pipeline` in a background worker; each unit of a run commits on its own.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    -- Nightly at 02:41 UTC: what each project's retention lets expire, holds spared.
    PERFORM cron.schedule_in_database('secinf-records-retention', '41 2 * * *',
                                      'CALL records.run_retention()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
