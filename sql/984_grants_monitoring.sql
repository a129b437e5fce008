-- secinf: run-as superuser
-- Grants of the monitoring login secinf_monitor (migration 0026; docs/operations.md,
-- "Metrics and alerts"). It reads the monitoring views and what postgres_exporter's default
-- collectors need, and nothing of a tenant: no schema of ours but `monitoring`, no table.
-- It is not a member of pg_monitor (pg_read_all_stats shows every session's query text,
-- which quotes tenants' data). 961_analyst_limits.sql closed the database-wide statistics to
-- PUBLIC; the exporter's pg_stat_database and pg_database_size metrics get them back for
-- this role only: database-wide sums, no table's or tenant's numbers. Runs as a superuser:
-- pg_catalog's objects belong to the bootstrap superuser.

REVOKE ALL ON SCHEMA monitoring FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA monitoring FROM PUBLIC;
GRANT USAGE ON SCHEMA monitoring TO secinf_monitor;
GRANT SELECT ON monitoring.pipeline_sources, monitoring.queue_depth, monitoring.dead_letters,
                monitoring.cron_jobs, monitoring.review_backlog, monitoring.replication
  TO secinf_monitor;
GRANT EXECUTE ON FUNCTION monitoring.pipeline_source_stats(), monitoring.queue_depth_stats(),
                          monitoring.dead_letter_stats(), monitoring.cron_job_runs(),
                          monitoring.review_backlog_stats(), monitoring.replication_stats()
  TO secinf_monitor;

-- CONNECT here (98's auth.lock_down_database() leaves it: it revokes PUBLIC's only).
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO secinf_monitor', current_database());
END
$$;

-- postgres_exporter 0.11's default metrics: pg_stat_database(_conflicts) and
-- pg_database_size. pg_stat_activity, pg_locks, pg_stat_bgwriter, pg_settings and the
-- replication views stay as PUBLIC has them (other roles' sessions without their state
-- or query).
GRANT SELECT ON pg_catalog.pg_stat_database, pg_catalog.pg_stat_database_conflicts
  TO secinf_monitor;
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname ~ '^pg_stat_get_db_' OR p.proname = 'pg_database_size')
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO secinf_monitor', f);
  END LOOP;
END
$$;
