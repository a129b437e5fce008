-- secinf: run-as superuser
-- pg_cron schedule of auto-accept (events.promote, sql/504_review_promote.sql). Like
-- 800_cron.sql: only where pg_cron lives (cron.database_name), a named job updated in place,
-- run as role `pipeline` in a background worker.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    -- Every minute: candidates above the project's thresholds become events.
    PERFORM cron.schedule_in_database('secinf-review-promote', '* * * * *',
                                      'SELECT events.promote()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
