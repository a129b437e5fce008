-- secinf: run-as superuser
-- pg_cron schedules of the pipeline. pg_cron lives only in the database named by
-- cron.database_name (`secinf`), so this does nothing in test copies. A named job is
-- updated in place when this file is re-applied. Jobs run as role `pipeline` in background
-- workers (cron.use_background_workers = on); failures show in cron.job_run_details and,
-- per source, in pipeline.runs.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    -- Every minute: ticks until idle (at most 50 s). A failing source is backed off and
    -- named in a WARNING (the server log) and in pipeline.status; the run itself succeeds
    -- (cron.job_run_details says CALL), so alert on pipeline.status, not on cron.
    PERFORM cron.schedule_in_database('secinf-pipeline-tick', '* * * * *',
                                      'CALL pipeline.run_scheduled()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
