-- 0026 · monitoring (issue 19, metrics): the `monitoring` schema of aggregate views that
-- Prometheus's postgres_exporter reads (sql/92_monitoring.sql, docs/operations.md "Metrics
-- and alerts"), its login `secinf_monitor`, and an index that keeps the queue's depth and
-- dead-letter counts an index-only scan at any size of jobs.jobs.
-- Runs as a superuser (CREATE ROLE); the schema and the index are created as the owner.
-- depends: 0025_ingest_loader

SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- ======================================================================= role
-- LOGIN without a password: on the local cluster it connects over the socket (trust);
-- elsewhere set one (ALTER ROLE secinf_monitor PASSWORD …). It is no member of pg_monitor:
-- pg_read_all_stats would show it every session's query text, which holds tenants' literals.
-- What it may read is granted in sql/99_grants_monitoring.sql. Roles are cluster-wide.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'secinf_monitor') THEN
    CREATE ROLE secinf_monitor LOGIN NOINHERIT CONNECTION LIMIT 5;
  END IF;
END
$$;

SET ROLE secinf_owner;

CREATE SCHEMA monitoring;

-- ======================================================================= queue depth
-- The live and dead jobs by state and kind (monitoring.queue_depth, dead_letters): an
-- index-only scan over the few live rows and the dead letters, never over the succeeded
-- history. jobs.jobs is the queue's table; its writes wait for this build (seconds at
-- millions of rows): CREATE INDEX CONCURRENTLY cannot run in a migration's transaction.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX jobs_monitor_idx ON jobs.jobs (state, kind)
  INCLUDE (run_after, finished_at, priority)
  WHERE state IN ('queued', 'running', 'dead');

RESET ROLE;
