-- secinf: run-as superuser
-- pg_cron schedule of the analyst watchdog (auth.analyst_watchdog, sql/961_analyst_limits.sql).
-- Like 800_cron.sql: only where pg_cron lives (cron.database_name), a named job updated in
-- place, run as role `pipeline` in a background worker. pg_cron 1.4 schedules by the
-- minute, so each run checks every 5 s for 55 s: a cap holds within about 5 s.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    PERFORM cron.schedule_in_database('secinf-analyst-watchdog', '* * * * *',
                                      'CALL auth.analyst_watchdog_run()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
