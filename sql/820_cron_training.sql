-- secinf: run-as superuser
-- pg_cron schedule of project-model training (sql/710_scoring_examples.sql): every ten
-- minutes, bring review examples up to date and queue a train_model job for each project
-- that has gathered its train_min_new_examples. A worker runs the job (docs/scoring.md).
-- Like sql/800_cron.sql, this does nothing in a database pg_cron does not serve.

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    PERFORM cron.schedule_in_database('secinf-train-due', '*/10 * * * *',
                                      'SELECT scoring.enqueue_due_training()',
                                      pg_catalog.current_database(), 'pipeline', true);
  END IF;
END
$$;
