-- 0026 rollback: the monitoring schema (and the views of sql/92_monitoring*.sql in it) and
-- the queue's monitoring index go. The role is cluster-wide and may serve other databases:
-- only this database's grants go with the schema; DROP ROLE secinf_monitor by hand.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP SCHEMA IF EXISTS monitoring CASCADE;
DROP INDEX IF EXISTS jobs.jobs_monitor_idx;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'secinf_monitor') THEN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM secinf_monitor', current_database());
  END IF;
END
$$;
