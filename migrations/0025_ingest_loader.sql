-- 0025 · ingest_loader (issue 17): the role a worker's file ingest COPYs appended points as.
-- PostgreSQL refuses COPY FROM into a table whose row-level security applies to the role,
-- so the ingest_file job (role pipeline) had to stage every row and merge it, while the
-- administrator's CLI COPYs straight into the hypertable. ingest_loader BYPASSes RLS and
-- holds nothing but INSERT on ingest.track_points (sql/99_grants_ingest.sql): no SELECT, no
-- other table, no function, no login. pipeline, its only member, may already insert points
-- for every project (its policy is USING (true)), so the role adds no reach; it switches to
-- it only around an append COPY (workers/ingest/stream.py). Runs as a superuser (only a
-- superuser can create a BYPASSRLS role); roles are cluster-wide, created once.
-- depends: 0024_billing

SET lock_timeout = '10s';
SET statement_timeout = '5min';

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ingest_loader') THEN
    CREATE ROLE ingest_loader NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
END
$$;
GRANT ingest_loader TO pipeline;
